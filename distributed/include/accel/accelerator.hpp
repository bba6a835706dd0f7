#pragma once
// accel::Accelerator: the front door of a training loop, the C++ twin of Hugging Face Accelerate's
// `Accelerator`. One object per process gives the loop device placement, gradient synchronisation
// across processes (a Reducer per prepared model), gradient accumulation, mixed precision (autocast +
// fp16 GradScaler), data sharding, gathering for metrics, checkpoints and experiment tracking.
//
//   accel::Accelerator acc({.mixed_precision = "bf16", .gradient_accumulation_steps = 2,
//                           .log_with = {"csv"}, .project_dir = "runs/digits"});
//   auto [model, opt, train] = acc.prepare(net, adamw, train_loader);
//   acc.init_trackers("digits");
//   for (const auto& batch : train) {
//     auto sync = acc.accumulate();             // RAII instead of `with accelerator.accumulate(model):`
//     auto amp = acc.autocast();
//     auto loss = torch::nll_loss(model->forward(batch.data), batch.target);
//     acc.backward(loss);
//     opt.step(); opt.zero_grad();              // act only on synchronising micro-batches
//     acc.log({{"train/loss", loss}}, step);    // 0-d tensor: no device sync on this thread
//   }
//   acc.end_training();
//
// Options come from AcceleratorOptions; a field left unset is read from the environment that
// accel-launch / `accelerate launch` set (ACCELERATE_MIXED_PRECISION, ACCELERATE_USE_CPU,
// ACCELERATE_GRADIENT_ACCUMULATION_STEPS, ACCELERATE_SPLIT_BATCHES, ACCELERATE_EVEN_BATCHES,
// ACCELERATE_SEED, ACCELERATE_PROJECT_DIR, ACCELERATE_LOG_WITH), then from the defaults.
// Invalid values throw accel::InvalidValue naming the value and the allowed ones.
//
// Collectives: methods marked "collective" must be called by every process, in the same order.
// Thread-safety: an Accelerator belongs to the training thread.
// Errors: accel::InvalidValue (bad argument), accel::UsageError (call at the wrong time),
// accel::CheckpointError, accel::DistributedError (a collective failed).
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <any>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "accel/checkpoint.hpp"
#include "accel/data.hpp"
#include "accel/gradient_state.hpp"
#include "accel/log_value.hpp"
#include "accel/mixed_precision.hpp"
#include "accel/optimizer.hpp"
#include "accel/reducer.hpp"
#include "accel/scheduler.hpp"
#include "accel/tracking/general_tracker.hpp"
#include "accel/tracking/hub.hpp"
#include "accel/tracking/log_options.hpp"
#include "accel/tracking/log_with.hpp"

namespace accel {

class ProcessGroup;

// Where checkpoints and logs go (Accelerate's ProjectConfiguration).
struct ProjectConfiguration {
  std::filesystem::path project_dir{};  // default: AcceleratorOptions::project_dir, else "."
  std::filesystem::path logging_dir{};  // default: project_dir
  // The run's directory name: <project_dir>/<project>/<run_name>. Empty (default): version_<N>, the
  // next free number (Lightning's version_N). A named run that exists is continued (docs/runs.md).
  // Default: AcceleratorOptions::run_name.
  std::string run_name{};
  // save_state() without a directory writes run_dir()/checkpoints/checkpoint_<iteration>;
  // load_state() without one reads the newest of them (of this run, or else of the newest run).
  bool automatic_checkpoint_naming = false;
  std::optional<int64_t> total_limit{};  // keep at most this many automatic checkpoints (>= 1)
  int64_t iteration = 0;                 // index of the next automatic checkpoint
};

struct AcceleratorOptions {
  std::optional<std::string> mixed_precision{};          // "no" | "fp16" | "bf16"
  std::optional<int64_t> gradient_accumulation_steps{};  // >= 1
  std::optional<bool> cpu{};                             // force the CPU even when a GPU is present
  bool device_placement = true;                          // move models and batches to device()
  std::optional<bool> split_batches{};                   // batch_size is the global batch
  std::optional<bool> even_batches{};  // pad so every process gets as many batches
  LogWith log_with{};                  // names ("csv", "all", ...) and/or objects
  std::filesystem::path project_dir{};
  std::optional<ProjectConfiguration> project_config{};
  std::string run_name{};  // see ProjectConfiguration::run_name
  bool step_scheduler_with_optimizer = true;
  std::optional<uint64_t> seed{};  // torch::manual_seed on every process
  int64_t log_every_n_steps = 50;  // Lightning-style log(name, value, options)
  GradScalerOptions scaler{};      // fp16 only
  ReducerOptions reducer{};
};

class Accelerator {
 public:
  // Discovers the process (State), resolves the options, seeds, and creates the process groups
  // (collective when there are several processes).
  explicit Accelerator(AcceleratorOptions options = {});
  ~Accelerator();
  Accelerator(const Accelerator&) = delete;
  Accelerator& operator=(const Accelerator&) = delete;

  // ---- who and where -------------------------------------------------------------------------
  int num_processes() const { return world_size_; }
  int process_index() const { return rank_; }
  int local_process_index() const { return local_rank_; }
  bool is_main_process() const { return rank_ == 0; }
  bool is_local_main_process() const { return local_rank_ == 0; }
  torch::Device device() const { return device_; }
  MixedPrecision mixed_precision() const { return mixed_precision_; }
  int64_t gradient_accumulation_steps() const { return gradient_state_->num_steps; }
  bool split_batches() const { return split_batches_; }
  bool even_batches() const { return even_batches_; }
  const ProjectConfiguration& project_configuration() const { return project_; }
  ProjectConfiguration& project_configuration() { return project_; }
  // The directory of this run, <project_dir>/<project>/<version_N or run_name> (docs/runs.md): the
  // file-based trackers, the automatic checkpoints and what the program saves at the end go there.
  // Decided at the first of init_trackers, save_state(), load_state() and run_dir(): rank 0 creates
  // it and broadcasts it, so that first call is collective. <project> is the name given to
  // init_trackers, or "accel_logs" when the directory is needed before init_trackers. load_state of
  // a checkpoint of a run under this project_dir continues that run in its directory.
  // Throws accel::InvalidValue on every process when the directory cannot be created or written.
  std::filesystem::path run_dir();
  // The run's name: run_name when given, else "<project>/version_<N>" (also the MLflow run name).
  // Empty before the run directory is decided.
  const std::string& run_name() const { return run_label_; }
  // Accelerate's `accelerator.step`: micro-batches seen by accumulate() (saved with the RNG states).
  int64_t step() const { return step_; }

  // ---- prepare -------------------------------------------------------------------------------
  // Moves the model to device() and, with several processes, attaches a Reducer (collective:
  // checks the model is the same everywhere and broadcasts rank 0's parameters).
  void prepare_model(std::shared_ptr<torch::nn::Module> model);
  // Wraps the optimizer (kept by reference: it must outlive the Accelerator).
  AcceleratedOptimizer& prepare_optimizer(torch::optim::Optimizer& optimizer);
  // Shards the loader for this process and places its batches on device().
  DataLoader& prepare_data_loader(DataLoader& loader);
  // Makes scheduler.step() follow the optimizer steps (see scheduler.hpp).
  LRScheduler& prepare_scheduler(LRScheduler& scheduler);

  // Prepares any mix of models (ModuleHolder or shared_ptr<Module>), optimizers, DataLoaders and
  // LRSchedulers — models first, then optimizers, loaders and schedulers, whatever the argument
  // order — and returns them in argument order: a model as itself, an optimizer as its
  // AcceleratedOptimizer&, loaders and schedulers as references. One argument: returned alone.
  template <class... Objects>
  decltype(auto) prepare(Objects&... objects);

  // A DataLoader over dataset (prepare it, or pass it to prepare()).
  DataLoader data_loader(TensorDataset dataset, DataLoaderOptions options = {}) const;

  // ---- the step ------------------------------------------------------------------------------
  // loss / gradient_accumulation_steps, scaled for fp16, then backward (gradients are all-reduced
  // by the Reducer on synchronising micro-batches).
  void backward(const torch::Tensor& loss);

  // RAII: while alive, gradient synchronisation is what accumulate() / no_sync() decided.
  class [[nodiscard]] SyncGuard {
   public:
    ~SyncGuard();
    SyncGuard(SyncGuard&&) noexcept;
    SyncGuard(const SyncGuard&) = delete;
    SyncGuard& operator=(const SyncGuard&) = delete;
    SyncGuard& operator=(SyncGuard&&) = delete;

   private:
    friend class Accelerator;
    SyncGuard() = default;
    std::vector<std::pair<Reducer*, bool>> restore_;
  };
  // Gradient accumulation: counts the micro-batch, decides sync_gradients (every
  // gradient_accumulation_steps-th micro-batch, and always on the last batch of a data loader
  // pass) and disables all-reduce of the given models (all prepared models when none) otherwise.
  SyncGuard accumulate();
  SyncGuard accumulate(const std::shared_ptr<torch::nn::Module>& model);
  // The same for a TORCH_MODULE holder (`acc.accumulate(model)`, as for `prepare`).
  template <class Holder>
  requires requires(const Holder& holder) { holder.ptr(); }
  SyncGuard accumulate(const Holder& model) {
    return accumulate(std::shared_ptr<torch::nn::Module>(model.ptr()));
  }
  // No gradient all-reduce for the model while alive (gradients accumulate locally).
  SyncGuard no_sync(const std::shared_ptr<torch::nn::Module>& model);
  template <class Holder>
  requires requires(const Holder& holder) { holder.ptr(); }
  SyncGuard no_sync(const Holder& model) {
    return no_sync(std::shared_ptr<torch::nn::Module>(model.ptr()));
  }
  bool sync_gradients() const { return gradient_state_->sync_gradients; }
  const GradientState& gradient_state() const { return *gradient_state_; }

  // Autocast for the configured mixed precision on device() ("no": a guard that does nothing).
  AutocastGuard autocast() const;
  // True when the last synchronising optimizer step was skipped by the fp16 scaler (inf/NaN).
  bool optimizer_step_was_skipped() const;
  // The fp16 scaler, or nullptr when mixed_precision is not fp16.
  GradScaler* scaler() { return scaler_.get(); }

  // Unscale the fp16 gradients (all prepared optimizers, or one) — once per step, before clipping.
  void unscale_gradients();
  void unscale_gradients(AcceleratedOptimizer& optimizer);
  // Unscales, then clips; returns the total norm as a 0-d tensor (no device sync).
  torch::Tensor clip_grad_norm_(const std::vector<torch::Tensor>& parameters, double max_norm,
                                double norm_type = 2.0);
  void clip_grad_value_(const std::vector<torch::Tensor>& parameters, double clip_value);

  // ---- collectives ---------------------------------------------------------------------------
  // Concatenation along dim 0 of every process's tensor, in rank order (a 0-d tensor counts as one
  // row). Sizes along dim 0 may differ. Collective.
  torch::Tensor gather(const torch::Tensor& tensor);
  // gather() minus the duplicates the distributed sampler padded in: pass the per-batch outputs of
  // the active loader's current batch, or the concatenated outputs of a whole pass. Collective.
  torch::Tensor gather_for_metrics(const torch::Tensor& tensor);
  // "sum" | "mean" | "max" | "min" over processes, times scale; returns a new tensor. Collective.
  torch::Tensor reduce(const torch::Tensor& tensor, std::string_view reduction = "sum",
                       double scale = 1.0);
  // Pads dim `dim` to the largest size across processes with pad_value. Collective.
  torch::Tensor pad_across_processes(const torch::Tensor& tensor, int64_t dim = 0,
                                     double pad_value = 0, bool pad_first = false);
  // Every process receives process `from_process`'s tensor (in place; returned). Collective.
  torch::Tensor broadcast(const torch::Tensor& tensor, int from_process = 0);
  // This process's contiguous share (the first len % n processes get one more; with apply_padding
  // the others repeat their last element so all shares have the same length).
  template <class T>
  std::vector<T> split_between_processes(const std::vector<T>& items,
                                         bool apply_padding = false) const;
  torch::Tensor split_between_processes(const torch::Tensor& tensor,
                                        bool apply_padding = false) const;
  // Collective barrier.
  void wait_for_everyone();

  // RAII: the main (or each node's local main) process runs the guarded block first, the others
  // after it (Accelerate's main_process_first()). Collective.
  class [[nodiscard]] GoesFirst {
   public:
    ~GoesFirst();
    GoesFirst(const GoesFirst&) = delete;
    GoesFirst& operator=(const GoesFirst&) = delete;

   private:
    friend class Accelerator;
    GoesFirst(Accelerator& accelerator, bool first);
    Accelerator& accelerator_;
    bool first_;
  };
  GoesFirst main_process_first();
  GoesFirst local_main_process_first();

  // Prints on the main process only, arguments separated by spaces (Accelerate's print).
  template <class... Args>
  void print(const Args&... args) const;

  // Any process may set the trigger; check_trigger() is true on every process when one did (then
  // resets it). Collective.
  void set_trigger() { trigger_ = true; }
  bool check_trigger();
  // The loader's next pass starts at batch n (resume mid-epoch). Returns the loader.
  DataLoader& skip_first_batches(DataLoader& loader, int64_t n);

  // ---- checkpoints ---------------------------------------------------------------------------
  // Saves models, optimizers, schedulers, loaders, scaler, registered objects and every process's
  // RNG states (layout and atomicity: checkpoint.hpp). No directory: automatic naming is required.
  // Returns the checkpoint directory. Collective.
  // Once committed, the trackers are told of it (GeneralTracker::checkpoint_saved: W&B's
  // log_model uploads it).
  std::filesystem::path save_state(const std::optional<std::filesystem::path>& dir = std::nullopt);
  // Marks a checkpoint save_state wrote as the best so far, for trackers that log models (W&B's
  // log_model gives it the alias "best", as Lightning's ModelCheckpoint does). Throws
  // accel::CheckpointError when dir is not a complete checkpoint. Not collective.
  void mark_best_checkpoint(const std::filesystem::path& dir);
  // Restores what save_state wrote. No directory: the newest automatic checkpoint. Refuses an
  // incomplete checkpoint (accel::CheckpointError). Collective.
  void load_state(const std::optional<std::filesystem::path>& dir = std::nullopt);
  // Weights only, written by the main process to dir/<name>.pt; returns the file. Collective.
  std::filesystem::path save_model(const std::shared_ptr<torch::nn::Module>& model,
                                   const std::filesystem::path& dir,
                                   const std::string& name = "model");
  // Adds an object to what save_state/load_state carry (kept by reference; must outlive *this).
  void register_for_checkpointing(Checkpointable& object);
  void register_for_checkpointing(const std::shared_ptr<torch::nn::Module>& module);

  // ---- tracking ------------------------------------------------------------------------------
  // Starts the log_with trackers (on the main process unless a tracker opts out; see TrackerHub for
  // queues, journals and failure isolation). Collective.
  void init_trackers(const std::string& project_name,
                     const nlohmann::json& config = nlohmann::json::object(),
                     const nlohmann::json& init_kwargs = nlohmann::json::object());
  // Logs values at step. Tensors are accepted: 0-d (or one-element) CPU tensors are read at once;
  // device tensors are copied to pinned host memory asynchronously and handed to the trackers once
  // the copy has completed (checked without blocking at later log calls; waited for at flush() and
  // end_training()), so log() never synchronises the device. Records reach the trackers in call
  // order. Throws accel::InvalidValue for a multi-element tensor (use accel::image / histogram).
  void log(const LogValues& values, std::optional<int64_t> step = std::nullopt);
  // The same for a ready accel::Values (a template only so that a braced list picks LogValues).
  template <class V>
  requires std::same_as<std::remove_cvref_t<V>, Values>
  void log(V&& values, std::optional<int64_t> step = std::nullopt) { log_values(values, step); }
  // Lightning's self.log: aggregated per step and epoch (see accel/tracking/aggregation.hpp). The
  // step is the number of optimizer steps taken so far; step values are sent every
  // log_every_n_steps, epoch values at epoch_end(). sync_dist reduces across processes in one
  // collective per emission. A device tensor is read without syncing the device until emission.
  void log(std::string_view name, const LogValue& value, const LogOptions& options = {},
           Phase phase = Phase::train);
  // Ends the epoch of every phase: emits pending step values and the epoch values. Collective when
  // a sync_dist metric was logged.
  void epoch_end();
  // Lightning's callback_metrics / progress-bar metrics of the aggregated log.
  Values callback_metrics() const;
  Values prog_bar_values() const;
  // Optimizer steps taken (Lightning's trainer.global_step).
  int64_t global_step() const { return gradient_state_->optimizer_steps; }
  // Waits for pending device values and hands everything to the trackers.
  void flush();
  // The tracker named `name`; on other processes a no-op tracker (never throws there).
  // Throws accel::UsageError before init_trackers, accel::InvalidValue for an unknown name.
  GeneralTracker& get_tracker(std::string_view name);
  // Accelerate's get_tracker(name, unwrap=True): the backend's own handle as H*, e.g.
  // get_tracker<accel::TensorBoardWriter>("tensorboard"); nullptr where the tracker has no handle
  // (on processes that do not run it). Throws as get_tracker(name), and accel::InvalidValue naming
  // the handle's real type when it is not an H* (see TrackerHub::get_tracker<H>).
  template <class H>
  H* get_tracker(std::string_view name) {
    return detail::tracker_handle_as<H>(get_tracker(name), name);
  }
  // Flushes, finishes every tracker with status and reports (prints and returns) what could not be
  // delivered. Without init_trackers: only the aggregated log is dropped, an empty report returned.
  EndTrainingReport end_training(RunStatus status = RunStatus::finished);

  // The process group collectives run on for CPU tensors and objects (MPI).
  std::shared_ptr<ProcessGroup> cpu_group() const { return cpu_group_; }

  struct Tracking;  // implementation detail (accelerator_tracking.hpp)

 private:
  struct PreparedModel {
    std::shared_ptr<torch::nn::Module> module;
    std::unique_ptr<Reducer> reducer;
  };

  template <class T>
  void prepare_pass(T& object, int pass);
  template <class T>
  decltype(auto) prepared(T& object);
  AcceleratedOptimizer& accelerated(torch::optim::Optimizer& optimizer);
  Reducer* reducer_for(const torch::nn::Module* module) const;
  std::shared_ptr<ProcessGroup> group_for(const torch::Tensor& tensor) const;
  void do_sync();
  // Tells the trackers of a committed checkpoint (TrackerHub::checkpoint_saved).
  void checkpoint_saved(const std::filesystem::path& dir, bool best);
  // Throws CheckpointError on every process when any process reports failure. Collective.
  void agree(bool ok, const std::string& what, const std::string& local_error);
  // The same, throwing accel::InvalidValue (an output location that cannot be written).
  void agree_outputs(const std::string& local_error);
  // prepare(): checks once (collectively) that project_dir and logging_dir can be written when
  // something will be written there (trackers, automatic checkpoints).
  void check_outputs_once();
  // Decides the run directory (see run_dir()) with this project name. Collective the first time.
  void ensure_run(std::string_view project);
  // Makes `dir`, a run directory under project_dir, this run's directory (the same on every rank).
  void adopt_run(const std::filesystem::path& dir);
  Tracking& tracking();
  void log_values(const Values& values, std::optional<int64_t> step);
  void print_line(const std::string& line) const;

  int rank_ = 0;
  int world_size_ = 1;
  int local_rank_ = 0;
  torch::Device device_ = torch::kCPU;
  MixedPrecision mixed_precision_ = MixedPrecision::no;
  bool split_batches_ = false;
  bool even_batches_ = true;
  bool device_placement_ = true;
  bool step_scheduler_with_optimizer_ = true;
  LogWith log_with_;
  int64_t log_every_n_steps_ = 50;
  ProjectConfiguration project_;
  ReducerOptions reducer_options_;
  bool outputs_checked_ = false;
  std::filesystem::path run_dir_;      // empty until decided
  std::filesystem::path tracker_dir_;  // <logging_dir>/<project>/<run>
  std::string run_label_;

  std::shared_ptr<GradientState> gradient_state_ = std::make_shared<GradientState>();
  std::shared_ptr<ProcessGroup> cpu_group_;
  std::shared_ptr<ProcessGroup> device_group_;
  std::unique_ptr<GradScaler> scaler_;
  std::vector<PreparedModel> models_;
  std::vector<std::unique_ptr<AcceleratedOptimizer>> optimizers_;
  std::vector<DataLoader*> loaders_;
  std::vector<LRScheduler*> schedulers_;
  std::vector<Checkpointable*> custom_objects_;
  std::vector<std::shared_ptr<torch::nn::Module>> custom_modules_;
  int64_t step_ = 0;
  bool trigger_ = false;
  std::unique_ptr<Tracking> tracking_;
};

// ---- templates -----------------------------------------------------------------------------------

namespace detail {
template <class T>
concept ModuleHolderLike = requires(T& t) {
  typename T::ContainedType;
  { t.ptr() } -> std::convertible_to<std::shared_ptr<typename T::ContainedType>>;
}
&&std::is_base_of_v<torch::nn::Module, typename T::ContainedType>;

template <class T>
concept ModulePointer = requires(T& t) {
  typename T::element_type;
}
&&std::is_base_of_v<torch::nn::Module, typename T::element_type>&&
    std::is_same_v<T, std::shared_ptr<typename T::element_type>>;
}  // namespace detail

template <class T>
void Accelerator::prepare_pass(T& object, int pass) {
  if constexpr (detail::ModuleHolderLike<T>) {
    if (pass == 0) prepare_model(object.ptr());
  } else if constexpr (detail::ModulePointer<T>) {
    if (pass == 0) prepare_model(object);
  } else if constexpr (std::is_base_of_v<torch::optim::Optimizer, T>) {
    if (pass == 1) prepare_optimizer(object);
  } else if constexpr (std::is_same_v<T, DataLoader>) {
    if (pass == 2) prepare_data_loader(object);
  } else if constexpr (std::is_base_of_v<LRScheduler, T>) {
    if (pass == 3) prepare_scheduler(object);
  } else {
    static_assert(sizeof(T) == 0,
                  "Accelerator::prepare accepts models (ModuleHolder or shared_ptr<Module>), torch "
                  "optimizers, accel::DataLoader and accel::LRScheduler");
  }
}

template <class T>
decltype(auto) Accelerator::prepared(T& object) {
  if constexpr (std::is_base_of_v<torch::optim::Optimizer, T>) {
    return static_cast<AcceleratedOptimizer&>(accelerated(object));
  } else if constexpr (detail::ModuleHolderLike<T> || detail::ModulePointer<T>) {
    return T(object);
  } else {
    return static_cast<T&>(object);
  }
}

template <class... Objects>
decltype(auto) Accelerator::prepare(Objects&... objects) {
  static_assert(sizeof...(Objects) > 0, "prepare needs at least one object");
  for (int pass = 0; pass < 4; ++pass) (prepare_pass(objects, pass), ...);
  if constexpr (sizeof...(Objects) == 1) {
    return prepared(objects...);
  } else {
    return std::tuple<decltype(prepared(objects))...>{prepared(objects)...};
  }
}

template <class T>
std::vector<T> Accelerator::split_between_processes(const std::vector<T>& items,
                                                    bool apply_padding) const {
  const auto n = static_cast<int64_t>(items.size());
  const int64_t base = n / world_size_, extras = n % world_size_;
  const int64_t start = rank_ * base + std::min<int64_t>(rank_, extras);
  const int64_t count = base + (rank_ < extras ? 1 : 0);
  std::vector<T> share(items.begin() + start, items.begin() + start + count);
  if (apply_padding && extras > 0 && count == base && !items.empty()) {
    share.push_back(share.empty() ? items.back() : share.back());
  }
  return share;
}

template <class... Args>
void Accelerator::print(const Args&... args) const {
  if (!is_main_process()) return;
  std::ostringstream line;
  bool first = true;
  ((line << (first ? "" : " ") << args, first = false), ...);
  print_line(line.str());
}

}  // namespace accel
