#pragma once
// Options of one Lightning-style log call: accel::LogOptions, accel::Phase and accel::ReduceFx.
// Same names and defaults as LightningModule.log; see MetricAggregator (aggregation.hpp) for what
// they do and docs/logging.md for the model.
//
// Defaults per phase (as in Lightning's training_step / validation_step / test_step):
//   Phase::train       on_step = true,  on_epoch = false
//   Phase::validation  on_step = false, on_epoch = true
//   Phase::test        on_step = false, on_epoch = true
//   Phase::predict     logging is refused (Lightning does not log in predict_step either)
// Thread-safety: value types.
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace accel {

enum class Phase { train, validation, test, predict };
// "train", "validation", "test", "predict".
std::string_view to_string(Phase phase);

// A reduction over one metric's values of one epoch. Called with this process's values and their
// weights (the batch_size of each log call, 1 when none was given), in log order; both spans have
// the same length >= 1. Returns the epoch value.
using ReduceFunction =
    std::function<double(std::span<const double> values, std::span<const double> weights)>;

// How the values of one epoch become the epoch value.
//   "mean" (default; "avg" is accepted): sum(value * batch_size) / sum(batch_size)
//   "sum": sum(value)   "max": max(value)   "min": min(value)     (NaN propagates through all four)
//   a ReduceFunction: custom; keeps every value of the epoch in memory and cannot be combined with
//   sync_dist (MetricAggregator::log throws accel::InvalidValue), because it cannot be expressed as
//   an all-reduce. Two custom reductions count as the same option when their names are equal.
class ReduceFx {
 public:
  enum class Kind { mean, sum, max, min, custom };

  ReduceFx() = default;  // mean
  // Throws accel::InvalidValue naming the string and listing the allowed ones (case-insensitive).
  ReduceFx(
      std::string_view name);  // NOLINT: implicit, so LogOptions{.reduce_fx = "sum"} reads well
  ReduceFx(const char* name) : ReduceFx(std::string_view(name)) {}         // NOLINT
  ReduceFx(const std::string& name) : ReduceFx(std::string_view(name)) {}  // NOLINT
  // A custom reduction. Throws accel::InvalidValue when function is empty.
  ReduceFx(ReduceFunction function, std::string name = "custom");  // NOLINT

  Kind kind() const { return kind_; }
  // "mean", "sum", "max", "min", or the custom reduction's name.
  const std::string& name() const { return name_; }
  // The custom function; empty unless kind() == Kind::custom.
  const ReduceFunction& function() const { return function_; }

  // Same kind, and for custom reductions the same name.
  friend bool operator==(const ReduceFx& a, const ReduceFx& b) {
    return a.kind_ == b.kind_ && (a.kind_ != Kind::custom || a.name_ == b.name_);
  }

 private:
  Kind kind_ = Kind::mean;
  std::string name_ = "mean";
  ReduceFunction function_;
};

// Options of MetricAggregator::log, the fields and meaning of LightningModule.log.
struct LogOptions {
  // Emit the value of each step (subject to log_every_n_steps). nullopt: the phase default above.
  std::optional<bool> on_step{};
  // Accumulate over the epoch and emit the reduced value at epoch_end. nullopt: the phase default.
  // When both on_step and on_epoch are true the names get "_step" / "_epoch" suffixes.
  std::optional<bool> on_epoch{};
  ReduceFx reduce_fx{};
  // Reduce across processes (in one batched all-reduce per epoch / per logging step, see
  // MetricAggregator). Every rank must then log the same sync_dist metrics.
  bool sync_dist = false;
  // Show in the progress bar (ProgressBar) through MetricAggregator::prog_bar_values.
  bool prog_bar = false;
  // Send to the trackers. false: only progress bar and callback_metrics see it.
  bool logger = true;
  // The value is logged on rank 0 only: it is never synchronised (as in Lightning, where syncing it
  // would deadlock), even when sync_dist is true.
  bool rank_zero_only = false;
  // Weight of this value in "mean". nullopt: 1. Must be >= 1 (accel::InvalidValue otherwise).
  std::optional<int64_t> batch_size{};
};

}  // namespace accel
