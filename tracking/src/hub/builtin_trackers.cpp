// The built-in trackers log_with may name: those this build has (ACCEL_TRACKER_<NAME> options).
// One line per tracker: add yours to the list.
#include "accel/tracking/registry.hpp"
#if ACCEL_TRACKER_CSV
#include "accel/tracking/trackers/csv_tracker.hpp"
#endif
#if ACCEL_TRACKER_JSONL
#include "accel/tracking/trackers/jsonl_tracker.hpp"
#endif
#if ACCEL_TRACKER_TENSORBOARD
#include "accel/tracking/trackers/tensorboard/tensorboard_tracker.hpp"
#endif
#if ACCEL_TRACKER_MLFLOW
#include "accel/tracking/trackers/mlflow/mlflow_tracker.hpp"
#endif
#if ACCEL_TRACKER_WANDB
#include "accel/tracking/trackers/wandb/wandb_tracker.hpp"
#endif
#if ACCEL_TRACKER_COMET
#include "accel/tracking/trackers/comet/comet_tracker.hpp"
#endif

namespace accel::detail {

std::vector<TrackerRegistration> builtin_trackers() {
  return {
#if ACCEL_TRACKER_CSV
    CsvTracker::registration(),
#endif
#if ACCEL_TRACKER_JSONL
        JsonlTracker::registration(),
#endif
#if ACCEL_TRACKER_TENSORBOARD
        TensorBoardTracker::registration(),
#endif
#if ACCEL_TRACKER_MLFLOW
        MlflowTracker::registration(),
#endif
#if ACCEL_TRACKER_WANDB
        WandbTracker::registration(),
#endif
#if ACCEL_TRACKER_COMET
        CometTracker::registration(),
#endif
  };
}

}  // namespace accel::detail
