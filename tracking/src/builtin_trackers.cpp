// The built-in trackers log_with may name. One line per tracker: add yours to the list.
#include "accel/tracking/csv_tracker.hpp"
#include "accel/tracking/jsonl_tracker.hpp"
#include "accel/tracking/mlflow_tracker.hpp"
#include "accel/tracking/registry.hpp"
#include "accel/tracking/tensorboard_tracker.hpp"

namespace accel::detail {

std::vector<TrackerRegistration> builtin_trackers() {
  return {
      CsvTracker::registration(),
      JsonlTracker::registration(),
      TensorBoardTracker::registration(),
      MlflowTracker::registration(),
  };
}

}  // namespace accel::detail
