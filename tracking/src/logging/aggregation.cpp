#include "accel/tracking/aggregation.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace accel {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

bool is_blank(std::string_view name) {
  return std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return std::isspace(c) != 0; });
}

std::string_view yes_no(bool b) {
  return b ? "true" : "false";
}

// The options of one metric for one epoch, with the phase defaults applied.
struct BoundOptions {
  bool on_step = false;
  bool on_epoch = true;
  ReduceFx reduce_fx;
  bool sync_dist = false;
  bool prog_bar = false;
  bool logger = true;
  bool rank_zero_only = false;

  bool forked() const { return on_step && on_epoch; }
  // rank_zero_only metrics are logged by rank 0 alone: syncing them would deadlock.
  bool synchronised() const { return sync_dist && !rank_zero_only; }
};

// What a reduction needs of one process's values; the same shape for an epoch and for one step, so
// both can be packed into the same all-reduce buffers.
struct Partial {
  // mean: sum(value * weight); sum: sum(value); max/min: extreme of non-NaN values
  double value = 0;
  double weight = 0;  // mean: sum(weight)
  bool nan = false;   // max/min: a NaN was seen (mean and sum carry NaN in `value` by arithmetic)

  void reset(ReduceFx::Kind kind) {
    value = kind == ReduceFx::Kind::max ? -kInf : kind == ReduceFx::Kind::min ? kInf : 0.0;
    weight = 0;
    nan = false;
  }

  void add(ReduceFx::Kind kind, double v, double w) {
    switch (kind) {
      case ReduceFx::Kind::mean:
        value += v * w;
        weight += w;
        break;
      case ReduceFx::Kind::sum:
        value += v;
        break;
      case ReduceFx::Kind::max:
      case ReduceFx::Kind::min:
        if (std::isnan(v)) {
          nan = true;
        } else {
          value = kind == ReduceFx::Kind::max ? std::max(value, v) : std::min(value, v);
        }
        break;
      case ReduceFx::Kind::custom:
        break;
    }
  }

  double result(ReduceFx::Kind kind) const {
    switch (kind) {
      case ReduceFx::Kind::mean:
        return value / weight;
      case ReduceFx::Kind::sum:
        return value;
      case ReduceFx::Kind::max:
      case ReduceFx::Kind::min:
        return nan ? kNaN : value;
      case ReduceFx::Kind::custom:
        break;
    }
    return kNaN;
  }
};

struct Metric {
  std::string name;
  Phase phase = Phase::train;
  BoundOptions options;
  std::string step_name;   // name + "_step" when forked
  std::string epoch_name;  // name + "_epoch" when forked
  bool bound = false;      // logged in the current epoch of its phase: options are fixed

  // Epoch accumulation.
  int64_t epoch_updates = 0;
  Partial epoch;
  std::vector<double> custom_values;  // custom reduce_fx only
  std::vector<double> custom_weights;

  // A step value (last_step, step_weight) is pending until step_values takes it; `step` holds it
  // while it is synchronised.
  bool step_pending = false;
  double step_weight = 1;
  Partial step;

  // Last known values, for the progress bar and callback_metrics.
  std::optional<double> last_step;
  std::optional<double> last_epoch;
  bool last_is_epoch = false;

  void bind(const BoundOptions& bound_options) {
    options = bound_options;
    bound = true;
    step_name = options.forked() ? name + "_step" : name;
    epoch_name = options.forked() ? name + "_epoch" : name;
  }

  void reset_epoch() {
    bound = false;
    epoch_updates = 0;
    epoch.reset(options.reduce_fx.kind());
    custom_values.clear();
    custom_weights.clear();
  }
};

// Describes how `options` differ from what `metric` was bound to, or "" when they agree.
std::string option_differences(const BoundOptions& a, const BoundOptions& b) {
  std::string out;
  auto field = [&out](std::string_view what, std::string_view before, std::string_view now) {
    if (before == now) return;
    if (!out.empty()) out += ", ";
    out += fmt::format("{}: {} before, {} now", what, before, now);
  };
  field("on_step", yes_no(a.on_step), yes_no(b.on_step));
  field("on_epoch", yes_no(a.on_epoch), yes_no(b.on_epoch));
  if (!(a.reduce_fx == b.reduce_fx)) field("reduce_fx", a.reduce_fx.name(), b.reduce_fx.name());
  field("sync_dist", yes_no(a.sync_dist), yes_no(b.sync_dist));
  field("prog_bar", yes_no(a.prog_bar), yes_no(b.prog_bar));
  field("logger", yes_no(a.logger), yes_no(b.logger));
  field("rank_zero_only", yes_no(a.rank_zero_only), yes_no(b.rank_zero_only));
  return out;
}

bool same_options(const BoundOptions& a, bool on_step, bool on_epoch, const LogOptions& b) {
  return a.on_step == on_step && a.on_epoch == on_epoch && a.reduce_fx == b.reduce_fx &&
         a.sync_dist == b.sync_dist && a.prog_bar == b.prog_bar && a.logger == b.logger &&
         a.rank_zero_only == b.rank_zero_only;
}

// One metric's partial result taking part in a synchronisation.
struct SyncItem {
  std::string key;  // "<phase>/<name>#<reduce_fx>": identical on every rank that logged it
  ReduceFx::Kind kind;
  Partial* partial;
};

// 32-bit FNV-1a over the sorted keys; small enough to be exact in a double.
double fingerprint(const std::vector<SyncItem>& items) {
  uint32_t hash = 2166136261u;
  auto mix = [&hash](unsigned char c) {
    hash ^= c;
    hash *= 16777619u;
  };
  for (const auto& item : items) {
    for (char c : item.key) mix(static_cast<unsigned char>(c));
    mix(0);
  }
  return static_cast<double>(hash);
}

// Reduces every item across ranks with at most two collective calls (see aggregation.hpp).
void synchronise(std::vector<SyncItem>& items, Collectives& collectives, std::string_view what) {
  if (items.empty()) return;
  std::sort(items.begin(), items.end(),
            [](const SyncItem& a, const SyncItem& b) { return a.key < b.key; });
  const double print = fingerprint(items);

  // 1. max: [fingerprint, -fingerprint, extremes (min negated), NaN flags].
  std::vector<double> max_buffer{print, -print};
  std::vector<SyncItem*> extremes;
  for (auto& item : items) {
    if (item.kind == ReduceFx::Kind::max || item.kind == ReduceFx::Kind::min) {
      extremes.push_back(&item);
    }
  }
  for (const auto* item : extremes) {
    const Partial& p = *item->partial;
    // With NaN seen, the extreme may still be ±inf (only NaN logged); the flag decides the result.
    max_buffer.push_back(item->kind == ReduceFx::Kind::max ? p.value : -p.value);
  }
  for (const auto* item : extremes) max_buffer.push_back(item->partial->nan ? 1.0 : 0.0);
  collectives.allreduce_max(max_buffer);
  if (max_buffer[0] != -max_buffer[1]) {
    std::string names;
    for (const auto& item : items) names += (names.empty() ? "" : ", ") + item.key;
    throw DistributedError(fmt::format(
        "sync_dist at {}: the ranks logged different sync_dist metrics (this rank {} of {}: {}); "
        "every rank must log the same sync_dist metrics with the same reduce_fx in an epoch — "
        "log rank-specific values with sync_dist=false or rank_zero_only=true",
        what, collectives.rank(), collectives.world_size(), names));
  }
  for (std::size_t i = 0; i < extremes.size(); ++i) {
    Partial& p = *extremes[i]->partial;
    const double v = max_buffer[2 + i];
    p.value = extremes[i]->kind == ReduceFx::Kind::max ? v : -v;
    p.nan = max_buffer[2 + extremes.size() + i] > 0;
  }

  // 2. sum: [weighted sum, weight] per mean, [sum] per sum.
  std::vector<double> sum_buffer;
  for (const auto& item : items) {
    if (item.kind == ReduceFx::Kind::mean) {
      sum_buffer.push_back(item.partial->value);
      sum_buffer.push_back(item.partial->weight);
    } else if (item.kind == ReduceFx::Kind::sum) {
      sum_buffer.push_back(item.partial->value);
    }
  }
  if (sum_buffer.empty()) return;
  collectives.allreduce_sum(sum_buffer);
  std::size_t at = 0;
  for (auto& item : items) {
    if (item.kind == ReduceFx::Kind::mean) {
      item.partial->value = sum_buffer[at++];
      item.partial->weight = sum_buffer[at++];
    } else if (item.kind == ReduceFx::Kind::sum) {
      item.partial->value = sum_buffer[at++];
    }
  }
}

bool distributed(const Collectives* collectives) {
  return collectives != nullptr && collectives->world_size() > 1;
}

std::string sync_key(const Metric& metric) {
  return fmt::format("{}/{}#{}", to_string(metric.phase), metric.name,
                     metric.options.reduce_fx.name());
}

void check_phase(std::string_view name, Phase phase) {
  if (phase == Phase::predict) {
    throw UsageError(fmt::format(
        "log('{}') in the predict phase: logging is not supported while predicting (as in "
        "Lightning); log in train, validation or test",
        name));
  }
}

// The weight of the value in the epoch mean: the batch size (default 1).
double batch_weight(std::string_view name, const LogOptions& options) {
  const int64_t batch_size = options.batch_size.value_or(1);
  if (batch_size < 1) {
    throw InvalidValue(fmt::format(
        "log('{}'): batch_size = {}; the batch size weights the value in the epoch mean and must "
        "be at least 1",
        name, batch_size));
  }
  return static_cast<double>(batch_size);
}

// The checks of a metric's options when it is (re)bound: at its first log in an epoch. known: the
// metric was logged before (its name was checked then).
void check_options(std::string_view name, bool known, bool on_step, bool on_epoch,
                   const LogOptions& options) {
  if (!known && is_blank(name)) {
    throw InvalidValue(fmt::format(
        "log('{}'): a metric name must contain a non-whitespace character; give the metric a "
        "name such as \"train/loss\"",
        name));
  }
  if (!on_step && !on_epoch) {
    throw InvalidValue(fmt::format(
        "log('{}', on_step=false, on_epoch=false) would never emit the value; set on_step and/or "
        "on_epoch to true",
        name));
  }
  const bool synchronised = options.sync_dist && !options.rank_zero_only;
  if (synchronised && options.reduce_fx.kind() == ReduceFx::Kind::custom) {
    throw InvalidValue(fmt::format(
        "log('{}'): the custom reduce_fx '{}' cannot be used with sync_dist=true, because it "
        "cannot be computed by an all-reduce; use reduce_fx \"mean\", \"sum\", \"max\" or "
        "\"min\", or gather the values yourself and log the result with sync_dist=false",
        name, options.reduce_fx.name()));
  }
}

}  // namespace

struct MetricAggregator::State {
  AggregatorOptions options;
  std::vector<Metric> metrics;  // first-log order
  std::array<std::unordered_map<std::string, std::size_t, StringHash, std::equal_to<>>, 4> index;
  std::vector<std::size_t> pending_steps;  // metrics with step_pending, in log order

  Metric* find(std::string_view name, Phase phase) {
    auto& phase_index = index[static_cast<std::size_t>(phase)];
    auto found = phase_index.find(name);
    return found == phase_index.end() ? nullptr : &metrics[found->second];
  }

  // The slow path of log: the first log of the metric in the epoch (metric: nullptr when never
  // logged), or options that differ from the bound ones (an error within an epoch).
  Metric& bind(Metric* metric, std::string_view name, Phase phase, bool on_step, bool on_epoch,
               const LogOptions& options) {
    check_options(name, metric != nullptr, on_step, on_epoch, options);
    BoundOptions bound{on_step,          on_epoch,       options.reduce_fx,     options.sync_dist,
                       options.prog_bar, options.logger, options.rank_zero_only};
    if (metric != nullptr && metric->bound) {
      throw InvalidValue(fmt::format(
          "log('{}') in the {} phase with different options than earlier in this epoch ({}); a "
          "metric keeps its options for a whole epoch — log it under another name, or change the "
          "options after epoch_end",
          name, to_string(phase), option_differences(metric->options, bound)));
    }
    if (metric == nullptr) {
      index[static_cast<std::size_t>(phase)].emplace(std::string(name), metrics.size());
      metric = &metrics.emplace_back();
      metric->name = std::string(name);
      metric->phase = phase;
    }
    metric->reset_epoch();
    metric->bind(bound);
    metric->epoch.reset(bound.reduce_fx.kind());
    return *metric;
  }

  // Takes one value of a bound metric: as its pending step value and into its epoch reduction.
  void add(Metric& metric, double value, double weight) {
    if (metric.options.on_step) {
      if (!metric.step_pending) {
        metric.step_pending = true;
        pending_steps.push_back(static_cast<std::size_t>(&metric - metrics.data()));
      }
      metric.last_step = value;
      metric.step_weight = weight;
      metric.last_is_epoch = false;
    }
    if (metric.options.on_epoch) {
      const auto kind = metric.options.reduce_fx.kind();
      if (kind == ReduceFx::Kind::custom) {
        metric.custom_values.push_back(value);
        metric.custom_weights.push_back(weight);
      } else {
        metric.epoch.add(kind, value, weight);
      }
    }
    ++metric.epoch_updates;
  }

  // Reduces, emits and resets the epoch of the metrics of `phase` (all phases when nullopt).
  Values end_epoch(std::optional<Phase> phase, Collectives* collectives) {
    auto ending = [phase](const Metric& m) { return !phase || m.phase == *phase; };
    std::vector<SyncItem> items;
    for (auto& m : metrics) {
      if (ending(m) && m.epoch_updates > 0 && m.options.on_epoch && m.options.synchronised()) {
        items.push_back({sync_key(m), m.options.reduce_fx.kind(), &m.epoch});
      }
    }
    if (distributed(collectives)) synchronise(items, *collectives, "epoch_end");
    Values out;
    for (auto& m : metrics) {
      if (!ending(m)) continue;
      if (m.epoch_updates > 0 && m.options.on_epoch) {
        const auto kind = m.options.reduce_fx.kind();
        const double value = kind == ReduceFx::Kind::custom
                                 ? m.options.reduce_fx.function()(m.custom_values, m.custom_weights)
                                 : m.epoch.result(kind);
        m.last_epoch = value;
        m.last_is_epoch = true;
        if (m.options.logger) out.set(m.epoch_name, value);
      }
      m.reset_epoch();
    }
    return out;
  }
};

MetricAggregator::MetricAggregator(AggregatorOptions options) : state_(std::make_unique<State>()) {
  if (options.log_every_n_steps < 0) {
    throw InvalidValue(
        fmt::format("log_every_n_steps = {} is negative; use a positive number of "
                    "steps, or 0 to disable step values",
                    options.log_every_n_steps));
  }
  state_->options = options;
}

MetricAggregator::~MetricAggregator() = default;
MetricAggregator::MetricAggregator(MetricAggregator&&) noexcept = default;
MetricAggregator& MetricAggregator::operator=(MetricAggregator&&) noexcept = default;

int64_t MetricAggregator::log_every_n_steps() const {
  return state_->options.log_every_n_steps;
}

void MetricAggregator::log(std::string_view name, double value, const LogOptions& options,
                           Phase phase) {
  check_phase(name, phase);
  const bool default_on_step = phase == Phase::train;
  const bool on_step = options.on_step.value_or(default_on_step);
  const bool on_epoch = options.on_epoch.value_or(!default_on_step);
  const double weight = batch_weight(name, options);
  Metric* metric = state_->find(name, phase);
  if (metric == nullptr || !metric->bound ||
      !same_options(metric->options, on_step, on_epoch, options)) {
    metric = &state_->bind(metric, name, phase, on_step, on_epoch, options);
  }
  state_->add(*metric, value, weight);
}

void MetricAggregator::log_dict(const Values& values, const LogOptions& options, Phase phase) {
  for (const auto& [key, value] : values) {
    if (!value.is_scalar()) {
      throw InvalidValue(
          fmt::format("log_dict: '{}' is a {}, but only int and float values can be "
                      "aggregated; log it with the tracker's log(Values) instead",
                      key, value.kind()));
    }
  }
  for (const auto& [key, value] : values) log(key, value.as_double(), options, phase);
}

bool MetricAggregator::should_log_step(int64_t global_step) const {
  const int64_t n = state_->options.log_every_n_steps;
  return n > 0 && (global_step + 1) % n == 0;
}

Values MetricAggregator::step_values(int64_t global_step, Collectives* collectives, bool force) {
  Values out;
  auto& pending = state_->pending_steps;
  if (!force && !should_log_step(global_step)) {
    for (std::size_t i : pending) state_->metrics[i].step_pending = false;
    pending.clear();
    return out;
  }
  std::sort(pending.begin(), pending.end());  // first-log order
  if (distributed(collectives)) {
    std::vector<SyncItem> items;
    for (std::size_t i : pending) {
      Metric& m = state_->metrics[i];
      if (m.options.logger && m.options.synchronised()) {
        const auto kind = m.options.reduce_fx.kind();  // never custom: rejected with sync_dist
        m.step.reset(kind);
        m.step.add(kind, *m.last_step, m.step_weight);
        items.push_back({sync_key(m), kind, &m.step});
      }
    }
    synchronise(items, *collectives, fmt::format("step {}", global_step));
  }
  for (std::size_t i : pending) {
    Metric& m = state_->metrics[i];
    m.step_pending = false;
    if (!m.options.logger) continue;
    const bool synchronised = distributed(collectives) && m.options.synchronised();
    out.set(m.step_name, synchronised ? m.step.result(m.options.reduce_fx.kind()) : *m.last_step);
  }
  pending.clear();
  return out;
}

Values MetricAggregator::epoch_end(Collectives* collectives) {
  return state_->end_epoch(std::nullopt, collectives);
}

Values MetricAggregator::epoch_end(Phase phase, Collectives* collectives) {
  return state_->end_epoch(phase, collectives);
}

Values MetricAggregator::prog_bar_values() const {
  Values out;
  for (const auto& m : state_->metrics) {
    if (!m.options.prog_bar) continue;
    if (m.options.on_step && m.last_step) out.set(m.step_name, *m.last_step);
    if (m.options.on_epoch && m.last_epoch) out.set(m.epoch_name, *m.last_epoch);
  }
  return out;
}

Values MetricAggregator::callback_metrics() const {
  Values out;
  for (const auto& m : state_->metrics) {
    const bool step_visible = m.phase == Phase::train && m.last_step.has_value();
    std::optional<double> latest;
    if (m.last_is_epoch && m.last_epoch)
      latest = m.last_epoch;
    else if (step_visible)
      latest = m.last_step;
    else
      latest = m.last_epoch;
    if (!latest) continue;
    out.set(m.name, *latest);
    if (m.options.forked()) {
      if (step_visible) out.set(m.step_name, *m.last_step);
      if (m.last_epoch) out.set(m.epoch_name, *m.last_epoch);
    }
  }
  return out;
}

void MetricAggregator::reset() {
  AggregatorOptions options = state_->options;
  state_ = std::make_unique<State>();
  state_->options = options;
}

}  // namespace accel
