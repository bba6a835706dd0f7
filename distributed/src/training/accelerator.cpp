// Accelerator: options, prepare, the step (accumulation, mixed precision, clipping), collectives and
// checkpoints. Tracking lives in accelerator_tracking.cpp.
#include "accel/accelerator.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/serialize.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "accel/process_group.hpp"
#include "accel/state.hpp"
#include "accel/tracking/key_rules.hpp"
#include "training/accelerator_tracking.hpp"
#include "training/checkpoint/remove_tree.hpp"
#include "training/checkpoint/state_components.hpp"

namespace accel {
namespace fs = std::filesystem;

namespace {

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

bool parse_flag(const std::string& text, const char* what) {
  const auto value = lower(text);
  if (value == "1" || value == "true" || value == "yes" || value == "on") return true;
  if (value == "0" || value == "false" || value == "no" || value == "off") return false;
  throw InvalidValue(
      fmt::format("{}='{}' is not a boolean: use 1/0, true/false, yes/no", what, text));
}

int64_t parse_int(const std::string& text, const char* what) {
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    throw InvalidValue(fmt::format("{}='{}' is not an integer", what, text));
  }
  return value;
}

template <class T>
T option_or_env(const std::optional<T>& option, const char* variable, T fallback) {
  if (option) return *option;
  if (auto value = env(variable)) {
    if constexpr (std::is_same_v<T, bool>) {
      return parse_flag(*value, variable);
    } else if constexpr (std::is_same_v<T, std::string>) {
      return *value;
    } else {
      return static_cast<T>(parse_int(*value, variable));
    }
  }
  return fallback;
}

LogWith log_with_from_env() {
  LogWith specs;
  auto value = env("ACCELERATE_LOG_WITH");
  if (!value) return specs;
  std::string item;
  for (char c : *value + ",") {
    if (c == ',') {
      if (!item.empty()) specs.emplace_back(item);
      item.clear();
    } else if (!std::isspace(static_cast<unsigned char>(c))) {
      item.push_back(c);
    }
  }
  return specs;
}

// The project name of a run directory needed before init_trackers gave one.
constexpr const char* kDefaultProject = "accel_logs";

// Why `dir` cannot hold this run's outputs, or "" when it can. It is created when missing, must be
// a directory, and a file must be creatable in it: that is tried, since access() says yes to root
// on a read-only directory.
std::string unwritable(const fs::path& dir) {
  std::error_code ec;
  const auto status = fs::status(dir, ec);
  if (fs::exists(status) && !fs::is_directory(status)) {
    return fmt::format("'{}' exists and is not a directory", dir.string());
  }
  fs::create_directories(dir, ec);
  if (ec) return fmt::format("cannot create the directory '{}': {}", dir.string(), ec.message());
  if (!fs::is_directory(dir, ec)) return fmt::format("'{}' is not a directory", dir.string());
  const auto probe = dir / fmt::format(".accel_write_test.{}", ::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int error = errno;
    return fmt::format("cannot write into the directory '{}': {}", dir.string(),
                       std::strerror(error));
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return {};
}

// The run directory <project_dir>/<project>/<run> a checkpoint <run>/checkpoints/checkpoint_<i>
// belongs to, when it belongs to a run under project_dir.
std::optional<fs::path> run_of_checkpoint(const fs::path& checkpoint, const fs::path& project_dir) {
  auto clean = checkpoint.lexically_normal();
  if (!clean.has_filename()) clean = clean.parent_path();
  const auto checkpoints = clean.parent_path();
  if (checkpoints.filename() != "checkpoints") return std::nullopt;
  const auto run = checkpoints.parent_path();
  std::error_code ec;
  const auto owner = fs::weakly_canonical(run.parent_path().parent_path(), ec);
  if (ec || run.filename().empty() || owner != fs::weakly_canonical(project_dir, ec) || ec) {
    return std::nullopt;
  }
  return run;
}

// The run under project_dir (<project>/<run>, named run_name when given) whose newest automatic
// checkpoint was written last; empty when there is none.
fs::path newest_run_with_checkpoints(const fs::path& project_dir, const std::string& run_name) {
  fs::path best;
  fs::file_time_type best_time{};
  std::error_code ec;
  for (const auto& project : fs::directory_iterator(project_dir, ec)) {
    if (!project.is_directory() || project.path().filename().string().starts_with(".")) continue;
    for (const auto& run : fs::directory_iterator(project.path(), ec)) {
      if (!run.is_directory()) continue;
      if (!run_name.empty() && run.path().filename() != sanitize_path_component(run_name)) continue;
      auto found = checkpoint::automatic_checkpoints(run.path() / "checkpoints");
      if (found.empty()) continue;
      const auto time = fs::last_write_time(found.back().second, ec);
      if (ec) continue;
      if (best.empty() || time > best_time) {
        best = run.path();
        best_time = time;
      }
    }
  }
  return best;
}

// ---- checkpoint steps (save_state / load_state) ----------------------------------------------------

// Everything save_state writes on rank 0 and load_state reads on every rank, one row per kind of
// object, in file order (the per-rank random states are a step of their own: one file per rank).
// models: the Accelerator's prepared models (module + reducer each).
std::vector<checkpoint::StateComponent> state_components(
    const auto& models, const std::vector<std::unique_ptr<AcceleratedOptimizer>>& optimizers,
    const std::vector<LRScheduler*>& schedulers, const std::vector<DataLoader*>& loaders,
    GradScaler* scaler, const std::vector<Checkpointable*>& custom_objects,
    const std::vector<std::shared_ptr<torch::nn::Module>>& custom_modules, int64_t& step,
    GradientState& gradient_state) {
  using In = torch::serialize::InputArchive;
  using Out = torch::serialize::OutputArchive;
  std::vector<checkpoint::StateComponent> components;
  components.push_back({.stem = "model",
                        .count = models.size(),
                        .metadata_key = "models",
                        .load_to_device = true,
                        .save = [&](std::size_t i, Out& a) { models[i].module->save(a); },
                        .load = [&](std::size_t i, In& a) { models[i].module->load(a); }});
  components.push_back({.stem = "optimizer",
                        .count = optimizers.size(),
                        .metadata_key = "optimizers",
                        .load_to_device = true,
                        .save = [&](std::size_t i, Out& a) { optimizers[i]->optimizer().save(a); },
                        .load = [&](std::size_t i, In& a) { optimizers[i]->optimizer().load(a); }});
  components.push_back({.stem = "scheduler",
                        .count = schedulers.size(),
                        .metadata_key = "schedulers",
                        .save = [&](std::size_t i, Out& a) { schedulers[i]->save(a); },
                        .load = [&](std::size_t i, In& a) { schedulers[i]->load(a); }});
  components.push_back({.stem = "dataloader",
                        .count = loaders.size(),
                        .metadata_key = "dataloaders",
                        .save = [&](std::size_t i, Out& a) { loaders[i]->save(a); },
                        .load = [&](std::size_t i, In& a) { loaders[i]->load(a); }});
  // Saved when fp16 is on; a checkpoint saved without it leaves the scaler as it is.
  components.push_back({.stem = "scaler",
                        .indexed = false,
                        .count = scaler != nullptr ? 1u : 0u,
                        .optional_on_load = true,
                        .save = [scaler](std::size_t, Out& a) { scaler->save(a); },
                        .load = [scaler](std::size_t, In& a) { scaler->load(a); }});
  components.push_back({.stem = "custom_checkpoint",
                        .count = custom_objects.size(),
                        .metadata_key = "custom_objects",
                        .save = [&](std::size_t i, Out& a) { custom_objects[i]->save_state(a); },
                        .load = [&](std::size_t i, In& a) { custom_objects[i]->load_state(a); }});
  components.push_back({.stem = "custom_module",
                        .count = custom_modules.size(),
                        .metadata_key = "custom_modules",
                        .load_to_device = true,
                        .save = [&](std::size_t i, Out& a) { custom_modules[i]->save(a); },
                        .load = [&](std::size_t i, In& a) { custom_modules[i]->load(a); }});
  // The Accelerator's own counters.
  components.push_back(
      {.stem = "accelerator",
       .indexed = false,
       .count = 1,
       .save =
           [&](std::size_t, Out& archive) {
             archive.write("step", torch::tensor(step, torch::kInt64));
             archive.write("optimizer_steps",
                           torch::tensor(gradient_state.optimizer_steps, torch::kInt64));
             archive.write("accumulation_step", torch::tensor(gradient_state.step, torch::kInt64));
           },
       .load =
           [&](std::size_t, In& archive) {
             torch::Tensor saved_step, optimizer_steps, accumulation_step;
             archive.read("step", saved_step);
             archive.read("optimizer_steps", optimizer_steps);
             archive.read("accumulation_step", accumulation_step);
             step = saved_step.item<int64_t>();
             gradient_state.optimizer_steps = optimizer_steps.item<int64_t>();
             gradient_state.step = accumulation_step.item<int64_t>();
           }});
  return components;
}

// Where save_state writes: final_dir; root: the run's checkpoints directory under automatic naming
// (empty for an explicit directory).
struct SaveTarget {
  fs::path final_dir;
  fs::path root;
};

SaveTarget save_target(const std::optional<fs::path>& dir, const ProjectConfiguration& project,
                       const fs::path& run_dir) {
  if (dir) return {*dir, {}};
  if (!project.automatic_checkpoint_naming) {
    throw UsageError(
        "save_state() without a directory needs ProjectConfiguration.automatic_checkpoint_naming = "
        "true; "
        "pass a directory or enable automatic naming");
  }
  const fs::path root = run_dir / "checkpoints";
  return {root / fmt::format("{}{}", checkpoint::kAutomaticPrefix, project.iteration), root};
}

// Rank 0: prunes old automatic checkpoints, refuses a target save_state must not overwrite, and
// creates an empty temp_dir to write into.
void prepare_save_dir(const SaveTarget& target, const fs::path& temp_dir,
                      const ProjectConfiguration& project) {
  const fs::path& final_dir = target.final_dir;
  const fs::path& root = target.root;
  if (!root.empty()) {
    fs::create_directories(root);
    if (project.total_limit) checkpoint::prune(root, *project.total_limit - 1);
    if (fs::exists(final_dir)) {
      throw CheckpointError(
          fmt::format("checkpoint directory {} ({}) already exists: set "
                      "ProjectConfiguration.iteration past the "
                      "existing checkpoints, or load_state() first (which does so)",
                      final_dir.string(), project.iteration));
    }
  } else if (fs::exists(final_dir)) {
    if (!fs::exists(final_dir / checkpoint::kMarkerName)) {
      throw CheckpointError(
          fmt::format("{} exists and is not an accel checkpoint: save_state will not overwrite "
                      "it; choose an "
                      "empty or new directory",
                      final_dir.string()));
    }
  }
  const fs::path parent = final_dir.parent_path().empty() ? fs::path(".") : final_dir.parent_path();
  if (auto why = unwritable(parent); !why.empty()) {
    throw CheckpointError(fmt::format("{}: save the checkpoint into a writable directory", why));
  }
  checkpoint::remove_tree(temp_dir);
  fs::create_directories(temp_dir);
}

// Rank 0: commits temp_dir as final_dir; an older complete checkpoint there (explicit directories
// only) is moved aside first and deleted once the new one is in place.
void commit_replacing(const fs::path& temp_dir, const fs::path& final_dir,
                      const nlohmann::json& metadata) {
  fs::path replaced;
  if (fs::exists(final_dir)) {
    replaced = final_dir.parent_path() / ("." + final_dir.filename().string() + ".old");
    checkpoint::remove_tree(replaced);
    fs::rename(final_dir, replaced);
  }
  checkpoint::commit(temp_dir, final_dir, metadata);
  if (!replaced.empty()) checkpoint::remove_tree(replaced);
}

// The run load_state() continues when no run is decided yet: the one named run_name, else the run
// whose checkpoint is the newest (rank 0 decides, `group` tells the others; null in one process).
fs::path run_to_continue(const ProjectConfiguration& project, bool main_process,
                         ProcessGroup* group) {
  std::string run;
  if (main_process)
    run = newest_run_with_checkpoints(project.project_dir, project.run_name).string();
  if (group != nullptr) run = group->broadcast_object(run, 0);
  if (run.empty()) {
    throw CheckpointError(fmt::format(
        "load_state(): no checkpoint_<i> directory under {}/<project>/{}/checkpoints to load",
        project.project_dir.string(), project.run_name.empty() ? "<run>" : project.run_name));
  }
  return run;
}

fs::path newest_automatic_checkpoint(const fs::path& root) {
  auto found = checkpoint::automatic_checkpoints(root);
  if (found.empty()) {
    throw CheckpointError(
        fmt::format("load_state(): no checkpoint_<i> directory under {} to load", root.string()));
  }
  return found.back().second;
}

// This rank's random states from `source` and the step saved with them; nullopt (with a note on
// stderr) when the checkpoint has none for this rank.
std::optional<int64_t> load_random_states(const fs::path& source, int rank,
                                          const nlohmann::json& metadata) {
  const auto rng_file = source / fmt::format("random_states_{}.pt", rank);
  if (fs::exists(rng_file)) return checkpoint::load_rng_states(rng_file);
  std::cerr << fmt::format(
      "accel: {} has no random states for rank {} (saved with {} processes); "
      "this process keeps its current random state\n",
      source.string(), rank, metadata.value("num_processes", 0));
  return std::nullopt;
}

// The automatic iteration after loading `source`: after this checkpoint and after the run's newest
// one, so that a save never meets an existing one; nullopt when `source` is not one of this run's
// automatic checkpoints.
std::optional<int64_t> iteration_after(const fs::path& source, const ProjectConfiguration& project,
                                       const fs::path& run_dir) {
  if (auto index = checkpoint::automatic_index(source);
      index && project.automatic_checkpoint_naming && !run_dir.empty() &&
      fs::weakly_canonical(source.parent_path()) == fs::weakly_canonical(run_dir / "checkpoints")) {
    auto found = checkpoint::automatic_checkpoints(run_dir / "checkpoints");
    return std::max({project.iteration, *index + 1, found.empty() ? 0 : found.back().first + 1});
  }
  return std::nullopt;
}

}  // namespace

Accelerator::Accelerator(AcceleratorOptions options) {
  const auto& state = State::instance();
  rank_ = state.rank();
  world_size_ = state.world_size();
  local_rank_ = state.local_rank();

  mixed_precision_ = parse_mixed_precision(
      option_or_env<std::string>(options.mixed_precision, "ACCELERATE_MIXED_PRECISION", "no"));
  const int64_t accumulation = option_or_env<int64_t>(options.gradient_accumulation_steps,
                                                      "ACCELERATE_GRADIENT_ACCUMULATION_STEPS", 1);
  if (accumulation < 1) {
    throw InvalidValue(
        fmt::format("gradient_accumulation_steps must be >= 1, got {} (option, or env "
                    "ACCELERATE_GRADIENT_ACCUMULATION_STEPS)",
                    accumulation));
  }
  gradient_state_->num_steps = accumulation;
  const bool cpu = option_or_env<bool>(options.cpu, "ACCELERATE_USE_CPU", false);
  device_ = cpu ? torch::Device(torch::kCPU) : state.device();
  split_batches_ = option_or_env<bool>(options.split_batches, "ACCELERATE_SPLIT_BATCHES", false);
  even_batches_ = option_or_env<bool>(options.even_batches, "ACCELERATE_EVEN_BATCHES", true);
  device_placement_ = options.device_placement;
  step_scheduler_with_optimizer_ = options.step_scheduler_with_optimizer;
  log_with_ = options.log_with.empty() ? log_with_from_env() : options.log_with;
  if (options.log_every_n_steps < 0) {
    throw InvalidValue(
        fmt::format("log_every_n_steps must be >= 0, got {}", options.log_every_n_steps));
  }
  log_every_n_steps_ = options.log_every_n_steps;
  reducer_options_ = options.reducer;

  project_ = options.project_config.value_or(ProjectConfiguration{});
  if (project_.project_dir.empty()) project_.project_dir = options.project_dir;
  if (project_.project_dir.empty())
    project_.project_dir = env("ACCELERATE_PROJECT_DIR").value_or(".");
  if (project_.logging_dir.empty()) project_.logging_dir = project_.project_dir;
  if (project_.run_name.empty()) project_.run_name = options.run_name;
  if (project_.total_limit && *project_.total_limit < 1) {
    throw InvalidValue(fmt::format("ProjectConfiguration.total_limit must be >= 1, got {}",
                                   *project_.total_limit));
  }
  if (project_.iteration < 0) {
    throw InvalidValue(
        fmt::format("ProjectConfiguration.iteration must be >= 0, got {}", project_.iteration));
  }

  // Validates fp16 against the device before anything else is set up.
  (void)autocast_dtype(mixed_precision_, device_.type());
  if (mixed_precision_ == MixedPrecision::fp16) {
    scaler_ = std::make_unique<GradScaler>(options.scaler, device_);
  }

  std::optional<uint64_t> seed = options.seed;
  if (!seed) {
    if (auto value = env("ACCELERATE_SEED"))
      seed = static_cast<uint64_t>(parse_int(*value, "ACCELERATE_SEED"));
  }
  if (seed) torch::manual_seed(*seed);

  cpu_group_ = cpu_process_group();
  device_group_ = device_.is_cuda() ? default_process_group() : cpu_group_;
}

// ---- prepare ---------------------------------------------------------------------------------------

void Accelerator::prepare_model(std::shared_ptr<torch::nn::Module> model) {
  check_outputs_once();
  if (!model) throw InvalidValue("prepare_model: the model is empty (a null module pointer)");
  for (const auto& prepared : models_) {
    if (prepared.module.get() == model.get()) return;  // preparing twice is harmless
  }
  if (device_placement_) model->to(device_);
  PreparedModel entry{model, nullptr};
  if (world_size_ > 1)
    entry.reducer = std::make_unique<Reducer>(*model, device_group_, reducer_options_);
  models_.push_back(std::move(entry));
}

AcceleratedOptimizer& Accelerator::prepare_optimizer(torch::optim::Optimizer& optimizer) {
  check_outputs_once();
  for (auto& prepared : optimizers_) {
    if (&prepared->optimizer() == &optimizer) return *prepared;
  }
  optimizers_.push_back(
      std::make_unique<AcceleratedOptimizer>(optimizer, gradient_state_, scaler_.get()));
  return *optimizers_.back();
}

AcceleratedOptimizer& Accelerator::accelerated(torch::optim::Optimizer& optimizer) {
  return prepare_optimizer(optimizer);
}

DataLoader& Accelerator::prepare_data_loader(DataLoader& loader) {
  check_outputs_once();
  DataLoaderSharding sharding;
  sharding.rank = rank_;
  sharding.num_processes = world_size_;
  sharding.split_batches = split_batches_;
  sharding.even_batches = even_batches_;
  if (device_placement_) sharding.device = device_;
  sharding.gradient_state = gradient_state_;
  loader.shard(std::move(sharding));
  if (std::find(loaders_.begin(), loaders_.end(), &loader) == loaders_.end())
    loaders_.push_back(&loader);
  return loader;
}

LRScheduler& Accelerator::prepare_scheduler(LRScheduler& scheduler) {
  check_outputs_once();
  LRScheduler::Preparation preparation;
  preparation.gradient_state = gradient_state_;
  preparation.num_processes = world_size_;
  preparation.split_batches = split_batches_;
  preparation.step_with_optimizer = step_scheduler_with_optimizer_;
  // Looked up at step time, so the optimizer may be prepared before or after the scheduler.
  preparation.optimizer_step_was_skipped = [this, raw = &scheduler.optimizer()] {
    for (const auto& prepared : optimizers_) {
      if (&prepared->optimizer() == raw) return prepared->step_was_skipped();
    }
    return false;
  };
  scheduler.prepare(std::move(preparation));
  if (std::find(schedulers_.begin(), schedulers_.end(), &scheduler) == schedulers_.end()) {
    schedulers_.push_back(&scheduler);
  }
  return scheduler;
}

DataLoader Accelerator::data_loader(TensorDataset dataset, DataLoaderOptions options) const {
  return DataLoader(std::move(dataset), options);
}

// ---- the step ----------------------------------------------------------------------------------------

void Accelerator::backward(const torch::Tensor& loss) {
  if (!loss.defined()) throw InvalidValue("backward: the loss tensor is undefined");
  torch::Tensor scaled = gradient_state_->num_steps > 1
                             ? loss / static_cast<double>(gradient_state_->num_steps)
                             : loss;
  if (scaler_) scaled = scaler_->scale(scaled);
  scaled.backward();
}

void Accelerator::do_sync() {
  auto& gs = *gradient_state_;
  if (gs.sync_with_dataloader && gs.end_of_dataloader) {
    gs.step = 0;
    gs.sync_gradients = true;
  } else {
    gs.step += 1;
    gs.sync_gradients = gs.step % gs.num_steps == 0;
  }
  ++step_;
}

Accelerator::SyncGuard::~SyncGuard() {
  for (auto it = restore_.rbegin(); it != restore_.rend(); ++it)
    it->first->set_sync_enabled(it->second);
}

Accelerator::SyncGuard::SyncGuard(SyncGuard&& other) noexcept
    : restore_(std::move(other.restore_)) {
  other.restore_.clear();
}

Reducer* Accelerator::reducer_for(const torch::nn::Module* module) const {
  for (const auto& prepared : models_) {
    if (prepared.module.get() == module) return prepared.reducer.get();
  }
  return nullptr;
}

Accelerator::SyncGuard Accelerator::accumulate() {
  do_sync();
  SyncGuard guard;
  if (!gradient_state_->sync_gradients) {
    for (auto& prepared : models_) {
      if (!prepared.reducer) continue;
      guard.restore_.emplace_back(prepared.reducer.get(), prepared.reducer->sync_enabled());
      prepared.reducer->set_sync_enabled(false);
    }
  }
  return guard;
}

Accelerator::SyncGuard Accelerator::accumulate(const std::shared_ptr<torch::nn::Module>& model) {
  do_sync();
  SyncGuard guard;
  if (!gradient_state_->sync_gradients) {
    if (auto* reducer = reducer_for(model.get())) {
      guard.restore_.emplace_back(reducer, reducer->sync_enabled());
      reducer->set_sync_enabled(false);
    }
  }
  return guard;
}

Accelerator::SyncGuard Accelerator::no_sync(const std::shared_ptr<torch::nn::Module>& model) {
  SyncGuard guard;
  if (auto* reducer = reducer_for(model.get())) {
    guard.restore_.emplace_back(reducer, reducer->sync_enabled());
    reducer->set_sync_enabled(false);
  }
  return guard;
}

AutocastGuard Accelerator::autocast() const {
  return AutocastGuard(device_.type(), autocast_dtype(mixed_precision_, device_.type()));
}

bool Accelerator::optimizer_step_was_skipped() const {
  return std::any_of(optimizers_.begin(), optimizers_.end(),
                     [](const auto& optimizer) { return optimizer->step_was_skipped(); });
}

void Accelerator::unscale_gradients() {
  for (auto& optimizer : optimizers_) unscale_gradients(*optimizer);
}

void Accelerator::unscale_gradients(AcceleratedOptimizer& optimizer) {
  if (scaler_ && gradient_state_->sync_gradients) scaler_->unscale_(optimizer.optimizer());
}

torch::Tensor Accelerator::clip_grad_norm_(const std::vector<torch::Tensor>& parameters,
                                           double max_norm, double norm_type) {
  unscale_gradients();
  std::vector<torch::Tensor> grads;
  for (const auto& parameter : parameters) {
    if (parameter.grad().defined()) grads.push_back(parameter.grad());
  }
  if (grads.empty()) return torch::zeros({}, torch::TensorOptions().device(device_));
  // Fused per-tensor norms, then one total: no host read-back (torch::nn::utils::clip_grad_norm_
  // returns a double and therefore synchronises the device every step).
  auto norms = torch::_foreach_norm(grads, norm_type);
  auto total =
      torch::linalg_vector_norm(torch::stack(norms), norm_type, std::nullopt, false, std::nullopt);
  auto coefficient = (max_norm / (total + 1e-6)).clamp_max(1.0);
  torch::NoGradGuard no_grad;
  for (auto& grad : grads) grad.mul_(coefficient.to(grad.dtype()));
  return total;
}

void Accelerator::clip_grad_value_(const std::vector<torch::Tensor>& parameters,
                                   double clip_value) {
  unscale_gradients();
  torch::nn::utils::clip_grad_value_(parameters, clip_value);
}

// ---- collectives -----------------------------------------------------------------------------------

std::shared_ptr<ProcessGroup> Accelerator::group_for(const torch::Tensor& tensor) const {
  if (tensor.device().is_cpu()) return cpu_group_;
  if (device_group_->device().type() == tensor.device().type()) return device_group_;
  throw InvalidValue(
      fmt::format("collective on a tensor on {}: accel's groups take tensors on cpu or {}",
                  tensor.device().str(), device_group_->device().str()));
}

torch::Tensor Accelerator::gather(const torch::Tensor& tensor) {
  auto rows = tensor.dim() == 0 ? tensor.reshape({1}) : tensor;
  if (world_size_ == 1) return rows;
  auto work = group_for(rows)->allgather(rows.contiguous());
  work->wait();
  return torch::cat(work->result(), 0);
}

torch::Tensor Accelerator::gather_for_metrics(const torch::Tensor& tensor) {
  auto rows = tensor.dim() == 0 ? tensor.reshape({1}) : tensor;
  const DataLoader* loader = gradient_state_->active_loader;
  if (loader != nullptr && rows.size(0) > 0) {
    // Drop this process's padded duplicates (they trail its share), then gather what is left:
    // either the outputs of the loader's last batch, or the outputs of its whole pass.
    if (gradient_state_->end_of_dataloader && rows.size(0) == loader->current_batch_rows()) {
      rows = rows.slice(0, 0, loader->real_rows_in_current_batch());
    } else if (rows.size(0) == loader->samples_per_process()) {
      rows = rows.slice(0, 0, loader->real_samples_per_process());
    }
  }
  return gather(rows);
}

torch::Tensor Accelerator::reduce(const torch::Tensor& tensor, std::string_view reduction,
                                  double scale) {
  const auto name = lower(std::string(reduction));
  ReduceOp op;
  if (name == "sum" || name == "mean")
    op = ReduceOp::kSum;
  else if (name == "max")
    op = ReduceOp::kMax;
  else if (name == "min")
    op = ReduceOp::kMin;
  else
    throw InvalidValue(
        fmt::format("reduce: reduction '{}' is not one of 'sum', 'mean', 'max', 'min'", reduction));
  auto result = tensor.detach().clone().contiguous();
  if (world_size_ > 1) group_for(result)->allreduce(result, op)->wait();
  if (name == "mean") result = result / static_cast<double>(world_size_);
  if (scale != 1.0) result = result * scale;
  return result;
}

torch::Tensor Accelerator::pad_across_processes(const torch::Tensor& tensor, int64_t dim,
                                                double pad_value, bool pad_first) {
  if (tensor.dim() == 0) return tensor;
  if (dim < 0) dim += tensor.dim();
  if (dim < 0 || dim >= tensor.dim()) {
    throw InvalidValue(
        fmt::format("pad_across_processes: dim {} is out of range for a tensor with {} dims", dim,
                    tensor.dim()));
  }
  int64_t largest = tensor.size(dim);
  if (world_size_ > 1) {
    auto size = torch::tensor({largest}, torch::kInt64);
    cpu_group_->allreduce(size, ReduceOp::kMax)->wait();
    largest = size.item<int64_t>();
  }
  if (largest == tensor.size(dim)) return tensor;
  auto shape = tensor.sizes().vec();
  shape[static_cast<std::size_t>(dim)] = largest;
  auto padded = torch::full(shape, pad_value, tensor.options());
  const int64_t offset = pad_first ? largest - tensor.size(dim) : 0;
  padded.narrow(dim, offset, tensor.size(dim)).copy_(tensor);
  return padded;
}

torch::Tensor Accelerator::broadcast(const torch::Tensor& tensor, int from_process) {
  if (from_process < 0 || from_process >= world_size_) {
    throw InvalidValue(fmt::format("broadcast: from_process {} is not a rank of this job (0..{})",
                                   from_process, world_size_ - 1));
  }
  if (world_size_ == 1) return tensor;
  group_for(tensor)->broadcast(tensor, from_process)->wait();
  return tensor;
}

torch::Tensor Accelerator::split_between_processes(const torch::Tensor& tensor,
                                                   bool apply_padding) const {
  if (tensor.dim() == 0)
    throw InvalidValue("split_between_processes: a 0-d tensor cannot be split");
  const int64_t n = tensor.size(0);
  const int64_t base = n / world_size_, extras = n % world_size_;
  const int64_t start = rank_ * base + std::min<int64_t>(rank_, extras);
  const int64_t count = base + (rank_ < extras ? 1 : 0);
  auto share = tensor.slice(0, start, start + count);
  if (apply_padding && extras > 0 && count == base && n > 0) {
    auto last = count > 0 ? share.slice(0, count - 1, count) : tensor.slice(0, n - 1, n);
    share = torch::cat({share, last}, 0);
  }
  return share;
}

void Accelerator::wait_for_everyone() {
  if (world_size_ > 1) cpu_group_->barrier()->wait();
}

Accelerator::GoesFirst::GoesFirst(Accelerator& accelerator, bool first)
    : accelerator_(accelerator), first_(first) {
  if (!first_) accelerator_.wait_for_everyone();
}

Accelerator::GoesFirst::~GoesFirst() {
  if (first_) accelerator_.wait_for_everyone();
}

Accelerator::GoesFirst Accelerator::main_process_first() {
  return GoesFirst(*this, is_main_process());
}
Accelerator::GoesFirst Accelerator::local_main_process_first() {
  return GoesFirst(*this, is_local_main_process());
}

void Accelerator::print_line(const std::string& line) const {
  std::cout << line << std::endl;
}

bool Accelerator::check_trigger() {
  auto flag = torch::tensor({trigger_ ? 1 : 0}, torch::kInt32);
  if (world_size_ > 1) cpu_group_->allreduce(flag, ReduceOp::kMax)->wait();
  const bool fired = flag.item<int>() != 0;
  if (fired) trigger_ = false;
  return fired;
}

DataLoader& Accelerator::skip_first_batches(DataLoader& loader, int64_t n) {
  loader.skip_first_batches(n);
  return loader;
}

// ---- checkpoints -----------------------------------------------------------------------------------

void Accelerator::register_for_checkpointing(Checkpointable& object) {
  custom_objects_.push_back(&object);
}

void Accelerator::register_for_checkpointing(const std::shared_ptr<torch::nn::Module>& module) {
  if (!module) throw InvalidValue("register_for_checkpointing: the module is empty");
  custom_modules_.push_back(module);
}

void Accelerator::agree(bool ok, const std::string& what, const std::string& local_error) {
  std::vector<std::string> errors;
  if (world_size_ > 1) {
    errors = cpu_group_->allgather_object(ok ? std::string() : local_error);
  } else {
    errors.push_back(ok ? std::string() : local_error);
  }
  std::string message;
  for (std::size_t r = 0; r < errors.size(); ++r) {
    if (errors[r].empty()) continue;
    message += fmt::format("{}rank {}: {}", message.empty() ? "" : "; ", r, errors[r]);
  }
  if (!message.empty()) throw CheckpointError(fmt::format("{} failed: {}", what, message));
}

void Accelerator::agree_outputs(const std::string& local_error) {
  std::vector<std::string> errors;
  if (world_size_ > 1) {
    errors = cpu_group_->allgather_object(local_error);
  } else {
    errors.push_back(local_error);
  }
  std::string message;
  for (std::size_t r = 0; r < errors.size(); ++r) {
    if (errors[r].empty()) continue;
    message +=
        fmt::format("{}{}{}", message.empty() ? "" : "; ",
                    world_size_ > 1 ? fmt::format("rank {}: ", r) : std::string(), errors[r]);
  }
  if (message.empty()) return;
  throw InvalidValue(fmt::format(
      "the run's output directory cannot be written: {}. Nothing was trained: choose a writable "
      "project_dir (ProjectConfiguration.project_dir / logging_dir, ACCELERATE_PROJECT_DIR, "
      "--project_dir of the examples)",
      message));
}

void Accelerator::check_outputs_once() {
  if (outputs_checked_) return;
  outputs_checked_ = true;
  // Only where something will be written: a tracker (files, or at least its journal) or automatic
  // checkpoints. A directory given to save_state / save_model is checked there.
  if (log_with_.empty() && !project_.automatic_checkpoint_naming) return;
  std::string error;
  if (is_main_process()) {
    error = unwritable(project_.project_dir);
    if (error.empty() && project_.logging_dir != project_.project_dir) {
      error = unwritable(project_.logging_dir);
    }
  }
  agree_outputs(error);
}

void Accelerator::ensure_run(std::string_view project) {
  if (!run_dir_.empty()) return;
  const std::string project_part =
      sanitize_path_component(project.empty() ? kDefaultProject : project);
  std::string error;
  nlohmann::json decided = nlohmann::json::object();
  if (is_main_process()) {
    try {
      const fs::path base = project_.project_dir / project_part;
      std::string name;
      if (!project_.run_name.empty()) {
        name = sanitize_path_component(project_.run_name);
      } else if (error = unwritable(base); error.empty()) {
        name = create_version_directory(base).filename().string();
      }
      if (error.empty()) error = unwritable(base / name);
      if (error.empty() && project_.logging_dir != project_.project_dir) {
        error = unwritable(project_.logging_dir / project_part / name);
      }
      decided["name"] = name;
      // A named run that exists is continued: its next automatic checkpoint follows its last one.
      auto found = checkpoint::automatic_checkpoints(base / name / "checkpoints");
      decided["next"] =
          found.empty() ? project_.iteration : std::max(project_.iteration, found.back().first + 1);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  agree_outputs(error);
  std::string shared = decided.dump();
  if (world_size_ > 1) shared = cpu_group_->broadcast_object(shared, 0);
  decided = nlohmann::json::parse(shared);
  const std::string name = decided.at("name").get<std::string>();
  run_dir_ = project_.project_dir / project_part / name;
  tracker_dir_ = project_.logging_dir / project_part / name;
  run_label_ = project_.run_name.empty() ? project_part + "/" + name : project_.run_name;
  if (project_.automatic_checkpoint_naming) project_.iteration = decided.at("next").get<int64_t>();
}

void Accelerator::adopt_run(const fs::path& dir) {
  const std::string project_part = dir.parent_path().filename().string();
  const std::string name = dir.filename().string();
  run_dir_ = project_.project_dir / project_part / name;
  tracker_dir_ = project_.logging_dir / project_part / name;
  run_label_ = project_.run_name.empty() ? project_part + "/" + name : project_.run_name;
}

fs::path Accelerator::run_dir() {
  ensure_run({});
  return run_dir_;
}

fs::path Accelerator::save_state(const std::optional<fs::path>& dir) {
  if (!dir && project_.automatic_checkpoint_naming) ensure_run({});
  const SaveTarget target = save_target(dir, project_, run_dir_);
  const fs::path temp_dir = checkpoint::temp_dir_for(target.final_dir);
  const auto components =
      state_components(models_, optimizers_, schedulers_, loaders_, scaler_.get(), custom_objects_,
                       custom_modules_, step_, *gradient_state_);

  // Runs `step` on this process when `here`, then throws on every process when any one failed.
  bool ok = true;
  std::string error;
  const auto agreed = [&](const char* what, bool here, const auto& step) {
    if (here) {
      try {
        step();
      } catch (const std::exception& e) {
        ok = false;
        error = e.what();
      }
    }
    agree(ok, what, error);
  };
  agreed("save_state (preparing the directory)", is_main_process(),
         [&] { prepare_save_dir(target, temp_dir, project_); });
  agreed("save_state (writing)", true, [&] {
    if (is_main_process()) checkpoint::write_components(components, temp_dir);
    checkpoint::save_rng_states(temp_dir / fmt::format("random_states_{}.pt", rank_), step_);
  });
  agreed("save_state (committing)", is_main_process(), [&] {
    nlohmann::json metadata = {
        {"format", "accel-checkpoint"},
        {"version", 1},
        {"num_processes", world_size_},
        {"mixed_precision", std::string(to_string(mixed_precision_))},
        {"step", step_},
    };
    checkpoint::record_counts(components, metadata);
    commit_replacing(temp_dir, target.final_dir, metadata);
  });
  if (!dir) project_.iteration += 1;
  checkpoint_saved(target.final_dir, false);
  return target.final_dir;
}

void Accelerator::load_state(const std::optional<fs::path>& dir) {
  fs::path source;
  if (dir) {
    source = *dir;
  } else if (project_.automatic_checkpoint_naming) {
    if (run_dir_.empty()) {
      adopt_run(run_to_continue(project_, is_main_process(),
                                world_size_ > 1 ? cpu_group_.get() : nullptr));
    }
    source = newest_automatic_checkpoint(run_dir_ / "checkpoints");
  } else {
    throw UsageError(
        "load_state() without a directory needs ProjectConfiguration.automatic_checkpoint_naming = "
        "true; "
        "pass the checkpoint directory");
  }
  const auto metadata = checkpoint::require_complete(source);
  const auto components =
      state_components(models_, optimizers_, schedulers_, loaders_, scaler_.get(), custom_objects_,
                       custom_modules_, step_, *gradient_state_);
  checkpoint::check_counts(components, metadata, source);
  checkpoint::read_components(components, source, device_);
  gradient_state_->sync_gradients = true;
  gradient_state_->end_of_dataloader = false;
  if (auto step = load_random_states(source, rank_, metadata)) step_ = *step;
  // A checkpoint of a run under this project_dir: the run goes on in its directory (unless it
  // was decided already, or the user named another run).
  if (run_dir_.empty()) {
    if (auto run = run_of_checkpoint(source, project_.project_dir);
        run && (project_.run_name.empty() ||
                run->filename() == sanitize_path_component(project_.run_name))) {
      adopt_run(*run);
    }
  }
  if (auto next = iteration_after(source, project_, run_dir_)) project_.iteration = *next;
  wait_for_everyone();
}

fs::path Accelerator::save_model(const std::shared_ptr<torch::nn::Module>& model,
                                 const fs::path& dir, const std::string& name) {
  if (!model) throw InvalidValue("save_model: the model is empty");
  const auto file = dir / (name + ".pt");
  bool ok = true;
  std::string error;
  if (is_main_process()) {
    try {
      if (auto why = unwritable(dir); !why.empty()) {
        throw CheckpointError(fmt::format("{}: save the model into a writable directory", why));
      }
      const auto temp = dir / ("." + name + ".pt.tmp");
      checkpoint::write_archive(temp, [&](auto& archive) { model->save(archive); });
      fs::rename(temp, file);
    } catch (const std::exception& e) {
      ok = false;
      error = e.what();
    }
  }
  agree(ok, "save_model", error);
  return file;
}

}  // namespace accel
