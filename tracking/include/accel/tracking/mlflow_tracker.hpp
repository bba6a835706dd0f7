#pragma once
// Moved to <accel/tracking/trackers/mlflow/mlflow_tracker.hpp>; this path keeps existing includes compiling.
#include "accel/tracking/trackers/mlflow/mlflow_tracker.hpp"
