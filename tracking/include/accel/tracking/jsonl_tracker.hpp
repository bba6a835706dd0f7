#pragma once
// Moved to <accel/tracking/trackers/jsonl_tracker.hpp>; this path keeps existing includes compiling.
#include "accel/tracking/trackers/jsonl_tracker.hpp"
