#pragma once
// Moved to <accel/tracking/trackers/csv_tracker.hpp>; this path keeps existing includes compiling.
#include "accel/tracking/trackers/csv_tracker.hpp"
