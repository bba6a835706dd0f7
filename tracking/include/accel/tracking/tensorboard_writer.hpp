#pragma once
// Moved to <accel/tracking/trackers/tensorboard/tensorboard_writer.hpp>; this path keeps existing includes compiling.
#include "accel/tracking/trackers/tensorboard/tensorboard_writer.hpp"
