#pragma once
// accel::MetricAggregator: Lightning's logging model (LightningModule.log / log_dict with on_step,
// on_epoch, reduce_fx, sync_dist, prog_bar, logger, rank_zero_only, batch_size) behind an
// Accelerate-style API. It turns log calls into the accel::Values a TrackerHub sends to trackers.
//
//   for each batch:  agg.log("loss", loss, {.prog_bar = true, .batch_size = n});
//                    hub.log(agg.step_values(global_step), global_step);   // empty on most steps
//   after the epoch: hub.log(agg.epoch_end(&collectives), last_global_step);
//
// Names: a metric logged with on_step and on_epoch both true is emitted as "<name>_step" by
// step_values and as "<name>_epoch" by epoch_end; otherwise under its own name.
//
// Step values (step_values): the last value of each on_step metric logged since the previous
// step_values call, emitted only when (global_step + 1) % log_every_n_steps == 0 (Lightning's rule:
// with the default 50 and steps counted from 0, steps 49, 99, ...), or when force is true.
// Values of the steps in between are not sent to trackers (they still count for the epoch value).
//
// Epoch values (epoch_end): every on_epoch metric logged in the epoch, reduced with its reduce_fx;
// "mean" is weighted by batch_size. Metrics not logged in the epoch are not emitted.
//
// sync_dist: at epoch_end ALL synchronised metrics of the epoch are reduced together, in at most
// two collective calls, whatever their number (Lightning makes one all-reduce per metric and per
// log call):
//   1. collectives->allreduce_max over [fingerprint, -fingerprint, max values, -min values,
//      NaN flags] — always made when this rank has a sync_dist metric to reduce. The fingerprint
//      (a hash of the sorted names and reductions) lets every rank detect, identically, that ranks
//      logged different sync_dist metrics; they then all throw accel::DistributedError.
//   2. collectives->allreduce_sum over [sum(value * batch_size) and sum(batch_size) of each mean,
//      sum(value) of each sum] — made when there is at least one mean or sum metric.
// "mean" across ranks is therefore the global batch-size-weighted mean (the union of all ranks'
// values), not a mean of per-rank means. step_values syncs sync_dist on_step metrics the same way,
// once per emitted step. Requirement (as in Lightning): every rank logs the same sync_dist metrics
// (names and reduce_fx) in the epoch and calls epoch_end / step_values with the same arguments;
// rank_zero_only metrics are never synchronised. A null Collectives (or world size 1) means: this
// process only.
//
// NaN and Inf are kept: a NaN in an epoch makes that epoch value NaN for every reduction, also
// across ranks. Callers may filter them for backends that reject them.
//
// Thread-safety: none; one aggregator belongs to the training thread. log() is the hot path: after
// a metric's first log call of an epoch it does no allocation.
#include <cstdint>
#include <memory>
#include <string_view>

#include "accel/tracking/collectives.hpp"
#include "accel/tracking/errors.hpp"
#include "accel/tracking/log_options.hpp"
#include "accel/tracking/values.hpp"

namespace accel {

struct AggregatorOptions {
  // Emit step values every n steps (see above). 0 disables step values. Negative:
  // accel::InvalidValue.
  int64_t log_every_n_steps = 50;
};

class MetricAggregator {
 public:
  explicit MetricAggregator(AggregatorOptions options = {});
  ~MetricAggregator();
  MetricAggregator(MetricAggregator&&) noexcept;
  MetricAggregator& operator=(MetricAggregator&&) noexcept;

  // Records one value. Throws accel::InvalidValue, naming the metric, for: an empty or whitespace
  // name; on_step and on_epoch both false; batch_size < 1; a custom reduce_fx with sync_dist; a
  // name already logged in this phase and epoch with different options (batch_size may differ).
  // Throws accel::UsageError for Phase::predict.
  void log(std::string_view name, double value, const LogOptions& options = {},
           Phase phase = Phase::train);
  // log() for each entry, in order. Every value must be a scalar (int or float), otherwise
  // accel::InvalidValue naming the key and its kind; nothing is logged then.
  void log_dict(const Values& values, const LogOptions& options = {}, Phase phase = Phase::train);

  // True when step_values(global_step) emits: log_every_n_steps > 0 and
  // (global_step + 1) % log_every_n_steps == 0.
  bool should_log_step(int64_t global_step) const;
  // The step values to send to trackers with step = global_step (empty when none are due), see
  // above. Clears the pending step values in every case. Only metrics with logger = true.
  // Collective (see sync_dist) when it emits a sync_dist metric.
  Values step_values(int64_t global_step, Collectives* collectives = nullptr, bool force = false);

  // Ends the epoch of every phase (or of one phase): returns the epoch values (logger = true only)
  // and resets the accumulators, so that the next epoch may also change a metric's options.
  // Lightning logs these with step = the last global step of the epoch. Collective (see sync_dist).
  Values epoch_end(Collectives* collectives = nullptr);
  Values epoch_end(Phase phase, Collectives* collectives = nullptr);

  // Last known value of every prog_bar metric (the latest step value of on_step metrics as
  // "<name>" or "<name>_step", the last epoch value of on_epoch metrics), in first-log order.
  // Step values here are this process's own (not synchronised). Includes logger = false metrics.
  Values prog_bar_values() const;
  // Lightning's trainer.callback_metrics: for Phase::train the latest step values (under "<name>"
  // and "<name>_step"), for every phase the last epoch values (under "<name>" and "<name>_epoch");
  // "<name>" holds whichever came last. Includes logger = false metrics.
  Values callback_metrics() const;

  int64_t log_every_n_steps() const;
  // Forgets every metric, value and option.
  void reset();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace accel
