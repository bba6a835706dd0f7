#include "accel/tracking/hub.hpp"

#include <cxxabi.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <exception>
#include <set>
#include <thread>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/journal_sync.hpp"
#include "accel/tracking/key_rules.hpp"
#include "accel/tracking/registry.hpp"
#include "accel/tracking/warnings.hpp"
#include "common/init_kwargs.hpp"
#include "common/secrets.hpp"
#include "hub/signal_relay.hpp"
#include "hub/tracker_channel.hpp"
#include "hub/tracker_selection.hpp"

namespace accel {

namespace detail {
// The background delivery of an earlier run's journals (sync_leftover_journals).
struct LeftoverSync {
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
};
}  // namespace detail

namespace {

using json = nlohmann::json;

// What get_tracker returns for a tracker this process does not run (non-main ranks).
class NoOpTracker final : public GeneralTracker {
 public:
  explicit NoOpTracker(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  bool requires_logging_directory() const override { return false; }
  bool main_process_only() const override { return true; }
  void store_init_configuration(const json&) override {}
  void log(const Values&, std::optional<int64_t>) override {}

 private:
  std::string name_;
};

bool is_blank(std::string_view key) {
  return std::all_of(key.begin(), key.end(),
                     [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
}

void validate_values(const Values& values) {
  for (const auto& [key, value] : values) {
    if (key.empty() || std::isspace(static_cast<unsigned char>(key.front()))) {
      if (is_blank(key)) validate_key(key);
    }
    if (value.is_scalar() || value.get_if<std::string>()) continue;
    if (const auto* image = value.get_if<Image>()) {
      image->validate(key);
    } else if (const auto* histogram = value.get_if<Histogram>()) {
      if (histogram->bucket_limits.size() != histogram->bucket_counts.size()) {
        throw InvalidValue(
            fmt::format("log: histogram '{}' has {} bucket limits and {} counts; use "
                        "Histogram::from_bins or from_samples",
                        key, histogram->bucket_limits.size(), histogram->bucket_counts.size()));
      }
      if (histogram->count() == 0 && histogram->samples.empty() && !histogram->is_binned()) {
        throw InvalidValue(
            fmt::format("log: histogram '{}' is empty; give at least one sample", key));
      }
    } else if (const auto* table = value.get_if<Table>()) {
      for (std::size_t r = 0; r < table->rows.size(); ++r) {
        if (table->rows[r].size() != table->columns.size()) {
          throw InvalidValue(
              fmt::format("log: table '{}' has {} columns but row {} has {} cells; "
                          "give every row one cell per column",
                          key, table->columns.size(), r, table->rows[r].size()));
        }
      }
    } else if (const auto* group = value.get_if<ScalarGroup>()) {
      for (const auto& [series, x] : group->series) {
        if (is_blank(series)) {
          throw InvalidValue(
              fmt::format("log: scalar group '{}' has a series with an empty name; "
                          "name every series",
                          key));
        }
      }
    }
  }
}

}  // namespace

namespace {

// Who a journal belongs to: what `accel-launch sync` needs to recreate the tracker (no secrets).
json journal_identity(const GeneralTracker& tracker, std::string_view project,
                      const std::filesystem::path& logging_dir, const json& init_kwargs,
                      const std::string& run_id, int rank) {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return json{{"tracker", tracker.name()},
              {"project", std::string(project)},
              {"logging_dir", logging_dir.string()},
              {"init_kwargs", without_secrets(init_kwargs)},
              {"hub_run_id", run_id},
              {"rank", rank},
              {"host", host},
              {"pid", static_cast<int64_t>(::getpid())}};
}

// init_trackers' project name and init_kwargs (see hub.hpp).
void check_init_arguments(std::string_view project_name, const json& init_kwargs) {
  if (is_blank(project_name)) {
    throw InvalidValue(fmt::format("init_trackers: project name '{}' is empty; give the run a name",
                                   project_name));
  }
  detail::check_init_kwargs(init_kwargs);
}

// Unique per init_trackers call in this process, and across processes (TrackerInit::run_id).
std::string new_run_id() {
  static std::atomic<uint64_t> runs{0};
  return fmt::format("{}-{}-{}", ::getpid(),
                     std::chrono::system_clock::now().time_since_epoch().count(),
                     runs.fetch_add(1));
}

// What every channel of the hub shares: queue size, retry delays, strict mode, the error slot.
detail::ChannelSettings channel_settings(const TrackerHubOptions& options,
                                         std::shared_ptr<detail::ErrorSlot> errors) {
  detail::ChannelSettings settings;
  settings.queue_bytes = options.queue_bytes;
  settings.retry_initial_delay = options.retry_initial_delay;
  settings.retry_max_delay = options.retry_max_delay;
  settings.strict = options.strict;
  settings.errors = std::move(errors);
  return settings;
}

// "<tracker>-rank<r>-<pid>-<ms>.journal": find_leftover_journals tells ranks apart by "-rank<r>-".
std::string journal_file_name(const std::string& tracker, int rank, int64_t stamp) {
  return fmt::format("{}-rank{}-{}-{}.journal", sanitize_path_component(tracker), rank, ::getpid(),
                     stamp);
}

// The configuration record each tracker gets first (store_init_configuration).
detail::HubRecord config_record(std::shared_ptr<const json> config,
                                std::chrono::system_clock::time_point now) {
  detail::HubRecord record;
  record.kind = RecordKind::config;
  record.bytes = detail::HubRecord::memory_bytes(*config);
  record.config = std::move(config);
  record.time = now;
  return record;
}

void warn_undelivered(const TrackerDelivery& t) {
  if (t.undelivered == 0 && t.error.empty()) return;
  std::string text = fmt::format(
      "end_training: tracker '{}': {} of {} log records were not "
      "delivered{}",
      t.name, t.undelivered, t.logged, t.error.empty() ? "" : " (" + t.error + ")");
  if (t.journaled > 0 || !t.journal.empty()) {
    text += fmt::format("; {} are kept in the journal '{}': deliver them with `{}`", t.journaled,
                        t.journal.string(), t.sync_command);
  }
  if (t.lost > 0) {
    text += fmt::format("; {} could not be kept anywhere and are lost (see the warnings above)",
                        t.lost);
  }
  warn(text);
}

}  // namespace

bool EndTrainingReport::complete() const {
  return std::all_of(trackers.begin(), trackers.end(), [](const TrackerDelivery& t) {
    return t.undelivered == 0 && t.error.empty() && !t.timed_out;
  });
}

namespace {
TrackerHubOptions resolved(TrackerHubOptions options) {
  if (options.collectives) {
    options.rank = options.collectives->rank();
    options.world_size = options.collectives->world_size();
    options.is_main_process = options.rank == 0;
  }
  options.progress_bar.is_main_process =
      options.progress_bar.is_main_process && options.is_main_process;
  return options;
}
}  // namespace

TrackerHub::TrackerHub(TrackerHubOptions options)
    : options_(resolved(std::move(options))),
      errors_(std::make_shared<detail::ErrorSlot>()),
      aggregator_(AggregatorOptions{.log_every_n_steps = options_.log_every_n_steps}),
      progress_bar_(std::make_unique<ProgressBar>(options_.progress_bar)) {
  if (options_.queue_bytes == 0) {
    throw InvalidValue(
        "TrackerHubOptions: queue_bytes = 0; give the queue room for at least one "
        "record (default 64 MiB)");
  }
}

TrackerHub::~TrackerHub() {
  bool active;
  {
    std::lock_guard lock(state_mutex_);
    active = state_ == State::active;
  }
  if (active) {
    try {
      end_training(std::uncaught_exceptions() > 0 ? RunStatus::failed : RunStatus::finished);
    } catch (...) {
      // A destructor must not throw; end_training already printed what went wrong.
    }
  }
  if (signals_attached_) detail::detach_signal_subscriber(this);
  std::lock_guard lock(state_mutex_);
  for (auto& channel : channels_) channel->release_worker();
}

std::filesystem::path TrackerHub::logging_dir() const {
  return options_.logging_dir.empty() ? options_.project_dir : options_.logging_dir;
}

std::filesystem::path TrackerHub::journal_dir() const {
  if (!options_.journal_dir.empty()) return options_.journal_dir;
  if (!logging_dir().empty()) return logging_dir() / ".accel_journal";
  return std::filesystem::temp_directory_path() / "accel_journal";
}

void TrackerHub::init_trackers(std::string_view project_name, const json& config,
                               const LogWith& log_with, const json& init_kwargs) {
  std::unique_lock lock(state_mutex_);
  if (state_ != State::created) {
    throw UsageError("init_trackers was already called on this hub; call it once per run");
  }
  check_init_arguments(project_name, init_kwargs);
  const std::filesystem::path dir = logging_dir();
  const std::string run_id = new_run_id();
  detail::TrackerSelection selection(TrackerInit{std::string(project_name), dir, {}, run_id},
                                     init_kwargs, options_.is_main_process);
  std::vector<std::shared_ptr<GeneralTracker>> selected = selection.select(log_with);

  const auto now = std::chrono::system_clock::now();
  const auto stamp =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  auto shared_config = std::make_shared<const json>(config);
  for (auto& tracker : selected) {
    detail::ChannelSettings settings = channel_settings(options_, errors_);
    settings.identity = journal_identity(*tracker, project_name, dir,
                                         detail::tracker_kwargs(init_kwargs, tracker->name()),
                                         run_id, options_.rank);
    settings.journal_path =
        journal_dir() / journal_file_name(tracker->name(), options_.rank, stamp);
    auto channel =
        std::make_shared<detail::TrackerChannel>(std::move(tracker), std::move(settings));
    channel->push(config_record(shared_config, now));
    channel->start_worker();
    channels_.push_back(std::move(channel));
  }
  std::vector<std::filesystem::path> ours;
  for (auto& channel : channels_) ours.push_back(channel->journal_path());
  find_leftover_journals(ours);
  state_ = State::active;
  // Not under state_mutex_: the signal relay calls on_signal (which takes it) under its own lock.
  lock.unlock();
  if (options_.handle_signals && !signals_attached_) {
    detail::attach_signal_subscriber(this, [this] { on_signal(); });
    signals_attached_ = true;
  }
}

void TrackerHub::find_leftover_journals(const std::vector<std::filesystem::path>& ours) {
  const std::filesystem::path dir = journal_dir();
  const std::string rank_tag = fmt::format("-rank{}-", options_.rank);
  std::vector<std::filesystem::path> leftovers;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const auto& path = entry.path();
    if (path.extension() != ".journal" ||
        path.filename().string().find(rank_tag) == std::string::npos ||
        std::find(ours.begin(), ours.end(), path) != ours.end()) {
      continue;
    }
    leftovers.push_back(path);
  }
  if (leftovers.empty()) return;
  std::sort(leftovers.begin(), leftovers.end());
  if (!options_.sync_leftover_journals) {
    warn(
        fmt::format("found {} journal(s) that an earlier run left in '{}' with records it never "
                    "delivered; deliver them with `accel-launch sync {}` (or set "
                    "sync_leftover_journals to deliver them at init_trackers)",
                    leftovers.size(), dir.string(), dir.string()));
    return;
  }
  warn(fmt::format("delivering {} journal(s) that an earlier run left in '{}' (in the background)",
                   leftovers.size(), dir.string()));
  auto job = std::make_shared<detail::LeftoverSync>();
  SyncOptions sync_options;
  sync_options.timeout = options_.end_training_timeout;
  sync_options.retry_initial_delay = options_.retry_initial_delay;
  sync_options.retry_max_delay = options_.retry_max_delay;
  std::thread([job, leftovers, sync_options] {
    for (const auto& journal : leftovers) {
      try {
        warn(fmt::format("leftover journal: {}", describe(sync_journal(journal, sync_options))));
      } catch (const std::exception& e) {
        warn(
            fmt::format("leftover journal '{}' was not delivered: {}", journal.string(), e.what()));
      }
    }
    std::lock_guard lock(job->mutex);
    job->done = true;
    job->cv.notify_all();
  }).detach();
  leftover_sync_ = std::move(job);
}

void TrackerHub::wait_leftover_sync(std::chrono::steady_clock::time_point deadline) {
  if (!leftover_sync_) return;
  std::unique_lock lock(leftover_sync_->mutex);
  if (!leftover_sync_->cv.wait_until(lock, deadline, [&] { return leftover_sync_->done; })) {
    warn(
        "end_training: the delivery of an earlier run's journals is still going on; what it has "
        "not delivered stays in those journals");
  }
}

void TrackerHub::rethrow_pending_error() {
  if (!errors_->pending.load(std::memory_order_relaxed)) return;
  std::exception_ptr error;
  std::string tracker, message;
  {
    std::lock_guard lock(errors_->mutex);
    if (!errors_->pending) return;
    errors_->pending = false;
    error = errors_->error;
    tracker = errors_->tracker;
    message = errors_->message;
  }
  TrackerError wrapped(fmt::format("tracker '{}' failed (strict mode): {}", tracker, message));
  if (!error) throw wrapped;
  try {
    std::rethrow_exception(error);
  } catch (...) {
    std::throw_with_nested(wrapped);
  }
}

void TrackerHub::log(const Values& values, std::optional<int64_t> step) {
  validate_values(values);
  if (values.empty()) return;
  enqueue(std::make_shared<const Values>(values), step);
}

void TrackerHub::log(Values&& values, std::optional<int64_t> step) {
  validate_values(values);
  if (values.empty()) return;
  enqueue(std::make_shared<const Values>(std::move(values)), step);
}

void TrackerHub::enqueue(std::shared_ptr<const Values> values, std::optional<int64_t> step) {
  rethrow_pending_error();
  std::lock_guard lock(state_mutex_);
  if (state_ != State::active) {
    if (ended_by_signal_) return;  // the process is ending; nothing more can be delivered
    throw UsageError(
        state_ == State::created
            ? "log was called before init_trackers; call init_trackers(project, config, "
              "log_with) first"
            : "log was called after end_training; the run is over, start a new hub "
              "for a new run");
  }
  detail::HubRecord record;
  record.kind = RecordKind::log;
  record.step = step;
  record.bytes = detail::HubRecord::memory_bytes(*values);
  record.time = std::chrono::system_clock::now();
  record.values = std::move(values);
  for (std::size_t i = 0; i + 1 < channels_.size(); ++i) channels_[i]->push(record);
  if (!channels_.empty()) channels_.back()->push(std::move(record));
}

void TrackerHub::log(std::string_view name, double value, const LogOptions& options, Phase phase) {
  aggregator_.log(name, value, options, phase);
}

void TrackerHub::log_dict(const Values& values, const LogOptions& options, Phase phase) {
  aggregator_.log_dict(values, options, phase);
}

void TrackerHub::step_end(int64_t global_step) {
  last_global_step_ = global_step;
  Values due = aggregator_.step_values(global_step, options_.collectives);
  if (!due.empty()) log(std::move(due), global_step);
  if (progress_bar_->enabled()) {
    if (progress_bar_->redraw_due()) progress_bar_->set_metrics(aggregator_.prog_bar_values());
    progress_bar_->update(1);
  }
}

void TrackerHub::start_epoch(int64_t epoch, std::optional<int64_t> total_steps) {
  progress_bar_->start_epoch(epoch, total_steps);
}

void TrackerHub::epoch_end(std::optional<int64_t> step) {
  Values values = aggregator_.epoch_end(options_.collectives);
  if (!values.empty()) log(std::move(values), step ? step : last_global_step_);
  if (progress_bar_->enabled()) {
    progress_bar_->set_metrics(aggregator_.prog_bar_values());
    progress_bar_->refresh();
  }
}

bool TrackerHub::flush() {
  rethrow_pending_error();
  std::vector<std::shared_ptr<detail::TrackerChannel>> channels;
  {
    std::lock_guard lock(state_mutex_);
    if (state_ == State::created) {
      throw UsageError("flush was called before init_trackers; call init_trackers first");
    }
    channels = channels_;
  }
  // A backend known to be down is not waited for: what it has not got is made durable instead.
  std::vector<std::shared_ptr<detail::TrackerChannel>> waiting;
  bool all = true;
  for (auto& channel : channels) {
    if (channel->backend_down()) {
      channel->persist();
      all = false;
    } else {
      channel->request_flush();
      waiting.push_back(channel);
    }
  }
  const auto deadline = detail::TrackerChannel::Clock::now() + options_.flush_timeout;
  for (auto& channel : waiting) all = channel->wait_flushed(deadline) && all;
  rethrow_pending_error();
  return all;
}

EndTrainingReport TrackerHub::end_training(RunStatus status) {
  std::vector<std::shared_ptr<detail::TrackerChannel>> channels;
  bool closing_from_signal = false;
  {
    std::unique_lock lock(state_mutex_);
    if (state_ == State::ending) {  // another thread (the signal helper) is ending the run
      ended_cv_.wait(lock, [&] { return state_ == State::ended; });
      return last_report_;
    }
    if (state_ == State::ended) {
      throw UsageError("end_training was already called; the run is over");
    }
    if (state_ == State::created) {
      state_ = State::ended;
      return {};
    }
    state_ = State::ending;
    closing_from_signal = ended_by_signal_;
    channels = channels_;
    const auto now = std::chrono::system_clock::now();
    for (auto& channel : channels) {
      detail::HubRecord record;
      record.kind = RecordKind::finish;
      record.status = status;
      record.time = now;
      channel->push(std::move(record));
    }
  }
  if (!closing_from_signal) progress_bar_->close();  // the bar belongs to the training thread
  if (closing_from_signal) {
    // The process may be killed for good soon (a scheduler's grace period): first make everything
    // durable, then try to deliver; a backend known to be down is not waited for at all.
    for (auto& channel : channels) channel->persist();
  }
  const auto now = detail::TrackerChannel::Clock::now();
  const auto deadline = now + options_.end_training_timeout;
  EndTrainingReport report;
  for (auto& channel : channels) {
    const bool wait = !(closing_from_signal && channel->backend_down());
    if (!channel->wait_exited(wait ? deadline : now)) channel->abandon();
    report.trackers.push_back(channel->report());
    channel->release_worker();
  }
  for (const auto& t : report.trackers) warn_undelivered(t);
  wait_leftover_sync(deadline);
  {
    std::lock_guard lock(state_mutex_);
    state_ = State::ended;
    last_report_ = report;
  }
  ended_cv_.notify_all();
  if (signals_attached_) {
    detail::detach_signal_subscriber(this);
    signals_attached_ = false;
  }
  rethrow_pending_error();
  return report;
}

void TrackerHub::on_signal() {
  {
    std::lock_guard lock(state_mutex_);
    if (state_ != State::active && state_ != State::ending) return;
    ended_by_signal_ = true;
  }
  try {
    end_training(RunStatus::killed);
  } catch (...) {
    // Strict-mode errors have nowhere to go now; end_training already printed them.
  }
}

void TrackerHub::checkpoint_saved(const std::filesystem::path& dir, bool best) {
  std::vector<std::shared_ptr<detail::TrackerChannel>> channels;
  {
    std::lock_guard lock(state_mutex_);
    if (state_ != State::active) return;
    channels = channels_;
  }
  for (const auto& channel : channels) {
    try {
      channel->tracker().checkpoint_saved(dir, best);
    } catch (const std::exception& e) {
      std::lock_guard lock(state_mutex_);
      if (checkpoint_warned_.insert(channel->name()).second) {
        warn(fmt::format("tracker '{}': checkpoint_saved('{}') failed: {}", channel->name(),
                         dir.string(), e.what()));
      }
    }
  }
}

GeneralTracker& TrackerHub::get_tracker(std::string_view name) {
  std::lock_guard lock(state_mutex_);
  for (auto& channel : channels_) {
    if (channel->name() == name) return channel->tracker();
  }
  if (!options_.is_main_process) {
    auto it = no_op_trackers_.find(name);
    if (it == no_op_trackers_.end()) {
      it = no_op_trackers_
               .emplace(std::string(name), std::make_unique<NoOpTracker>(std::string(name)))
               .first;
    }
    return *it->second;
  }
  if (state_ == State::created) {
    throw UsageError(fmt::format("get_tracker('{}') was called before init_trackers", name));
  }
  std::vector<std::string> started;
  for (auto& channel : channels_) started.push_back(channel->name());
  throw InvalidValue(
      fmt::format("get_tracker: no tracker named '{}' was started; started trackers: "
                  "[{}]",
                  name, fmt::join(started, ", ")));
}

namespace detail {

namespace {
// The type's name as written in C++ (the compiler's own name when it cannot be demangled).
std::string readable_type_name(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> name(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), &std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(type.name());
}
}  // namespace

void throw_wrong_tracker_handle(std::string_view name, const std::type_info& held,
                                const std::type_info& wanted) {
  std::string held_name = readable_type_name(held);
  std::string message =
      fmt::format("get_tracker<{0}>('{1}'): the '{1}' tracker's handle has type {2}, not {0}*",
                  readable_type_name(wanted), name, held_name);
  if (!held_name.ends_with('*')) {
    message += fmt::format(
        " (a handle held by value: read it with std::any_cast<{}>(get_tracker(\"{}\")"
        ".tracker()))",
        held_name, name);
  }
  throw InvalidValue(message);
}

}  // namespace detail

std::vector<GeneralTracker*> TrackerHub::trackers() {
  std::lock_guard lock(state_mutex_);
  std::vector<GeneralTracker*> out;
  for (auto& channel : channels_) out.push_back(&channel->tracker());
  return out;
}

}  // namespace accel
