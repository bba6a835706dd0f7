// The Accelerator in one process: options and environment, accumulation, checkpoints, tracking.
#include "accel/accelerator.hpp"

#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <mutex>

#include "recording_tracker.hpp"
// After LibTorch: c10 defines a one-argument CHECK that would replace Catch's.
#include <catch2/catch.hpp>

namespace fs = std::filesystem;
using accel::Accelerator;
using accel_test::RecordingTracker;

namespace {

fs::path fresh_dir(const std::string& name) {
  auto dir =
      fs::temp_directory_path() / ("accel_accelerator_test_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

struct ScopedEnv {
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }
  const char* name_;
};

accel::TensorDataset regression_data(int64_t n, int64_t seed = 0) {
  torch::manual_seed(seed);
  auto x = torch::randn({n, 4});
  auto y =
      x.matmul(torch::tensor({1.0f, -2.0f, 0.5f, 3.0f})).unsqueeze(1) + 0.1 * torch::randn({n, 1});
  return accel::TensorDataset(x, y);
}

struct SmallNetImpl : torch::nn::Module {
  SmallNetImpl() {
    fc1 = register_module("fc1", torch::nn::Linear(4, 8));
    fc2 = register_module("fc2", torch::nn::Linear(8, 1));
    drop = register_module("drop", torch::nn::Dropout(0.2));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return fc2->forward(drop->forward(torch::tanh(fc1->forward(x))));
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::Dropout drop{nullptr};
};
TORCH_MODULE(SmallNet);

std::vector<torch::Tensor> snapshot(const torch::nn::Module& module) {
  std::vector<torch::Tensor> copy;
  for (const auto& p : module.parameters()) copy.push_back(p.detach().clone());
  return copy;
}

bool bitwise_equal(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!torch::equal(a[i], b[i])) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("Options: explicit values win, the environment fills the rest, bad values are named",
          "[accelerator]") {
  {
    ScopedEnv precision("ACCELERATE_MIXED_PRECISION", "bf16");
    ScopedEnv steps("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "4");
    Accelerator from_env;
    CHECK(from_env.mixed_precision() == accel::MixedPrecision::bf16);
    CHECK(from_env.gradient_accumulation_steps() == 4);
    Accelerator explicit_options({.mixed_precision = "no", .gradient_accumulation_steps = 2});
    CHECK(explicit_options.mixed_precision() == accel::MixedPrecision::no);
    CHECK(explicit_options.gradient_accumulation_steps() == 2);
  }
  {
    ScopedEnv precision("ACCELERATE_MIXED_PRECISION", "fp8");
    try {
      Accelerator bad;
      FAIL("no exception");
    } catch (const accel::InvalidValue& e) {
      CHECK_THAT(e.what(),
                 Catch::Contains("'fp8'") && Catch::Contains("ACCELERATE_MIXED_PRECISION"));
    }
  }
  {
    ScopedEnv cpu("ACCELERATE_USE_CPU", "perhaps");
    CHECK_THROWS_WITH(Accelerator(), Catch::Contains("ACCELERATE_USE_CPU='perhaps'"));
  }
  CHECK_THROWS_AS(Accelerator({.gradient_accumulation_steps = 0}), accel::InvalidValue);
  CHECK_THROWS_AS(Accelerator({.mixed_precision = "fp16", .cpu = true}), accel::InvalidValue);
  accel::ProjectConfiguration project;
  project.total_limit = 0;
  CHECK_THROWS_AS(Accelerator({.project_config = project}), accel::InvalidValue);
  Accelerator plain({.cpu = true});
  CHECK(plain.num_processes() == 1);
  CHECK(plain.is_main_process());
  CHECK(plain.device().is_cpu());
}

TEST_CASE("k micro-batches with accumulation equal one big batch (1 process)", "[accelerator]") {
  auto data = regression_data(8);
  auto run = [&](int64_t batch_size, int64_t accumulation) {
    torch::manual_seed(1);
    torch::nn::Linear model(4, 1);
    torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
    Accelerator acc({.gradient_accumulation_steps = accumulation, .cpu = true});
    auto loader = acc.data_loader(data, {.batch_size = batch_size});
    auto [m, opt, train] = acc.prepare(model, sgd, loader);
    const auto before = snapshot(*model);
    int64_t micro = 0;
    for (const auto& batch : train) {
      auto sync = acc.accumulate();
      acc.backward(torch::mse_loss(m->forward(batch.data), batch.target));
      opt.step();
      opt.zero_grad();
      ++micro;
      // No step until the k-th micro-batch.
      if (micro < accumulation) CHECK(bitwise_equal(snapshot(*model), before));
    }
    return snapshot(*model);
  };
  auto accumulated = run(2, 4);
  auto big = run(8, 1);
  for (std::size_t i = 0; i < big.size(); ++i)
    CHECK(torch::allclose(accumulated[i], big[i], 1e-5, 1e-6));
}

TEST_CASE("The last batch of a pass always synchronises", "[accelerator]") {
  Accelerator acc({.gradient_accumulation_steps = 2, .cpu = true});
  auto loader = acc.data_loader(regression_data(5), {.batch_size = 1});
  acc.prepare(loader);
  std::vector<bool> syncs;
  for (const auto& batch : loader) {
    (void)batch;
    auto sync = acc.accumulate();
    syncs.push_back(acc.sync_gradients());
  }
  CHECK((syncs == std::vector<bool>{false, true, false, true, true}));
}

TEST_CASE("clip_grad_norm_ returns the total norm as a tensor and clips", "[accelerator]") {
  Accelerator acc({.cpu = true});
  auto w = torch::zeros({2}, torch::requires_grad());
  w.mutable_grad() = torch::tensor({3.0f, 4.0f});
  auto norm = acc.clip_grad_norm_({w}, 1.0);
  CHECK(norm.dim() == 0);
  CHECK(norm.item<double>() == Approx(5.0));
  CHECK(w.grad().norm().item<double>() == Approx(1.0).epsilon(1e-4));
  acc.clip_grad_value_({w}, 0.1);
  CHECK(w.grad().abs().max().item<double>() <= 0.1 + 1e-7);
}

TEST_CASE("gather_for_metrics and the collectives are the identity on one process",
          "[accelerator]") {
  Accelerator acc({.cpu = true});
  auto loader = acc.data_loader(regression_data(7), {.batch_size = 3});
  acc.prepare(loader);
  int64_t rows = 0;
  for (const auto& batch : loader) rows += acc.gather_for_metrics(batch.target).size(0);
  CHECK(rows == 7);
  CHECK(acc.gather(torch::tensor(2.0)).sizes() == std::vector<int64_t>{1});
  CHECK((acc.reduce(torch::tensor({1.0, 2.0}), "mean").equal(torch::tensor({1.0, 2.0}))));
  CHECK_THROWS_AS(acc.reduce(torch::tensor({1.0}), "median"), accel::InvalidValue);
  CHECK((acc.split_between_processes(std::vector<int>{1, 2, 3}) == std::vector<int>{1, 2, 3}));
  CHECK_FALSE(acc.check_trigger());
  acc.set_trigger();
  CHECK(acc.check_trigger());
  CHECK_FALSE(acc.check_trigger());
}

namespace {

// Trains SmallNet with AdamW, a schedule, shuffled data and dropout; checkpoints at micro-batch
// `save_at` (into `save_dir`) and/or resumes from `resume`.
struct TrainResult {
  std::vector<torch::Tensor> params;
  fs::path saved;
};

struct Counter final : accel::Checkpointable {
  int64_t epoch = 0, step = 0;
  void save_state(torch::serialize::OutputArchive& a) const override {
    a.write("epoch", torch::tensor(epoch));
    a.write("step", torch::tensor(step));
  }
  void load_state(torch::serialize::InputArchive& a) override {
    torch::Tensor e, s;
    a.read("epoch", e);
    a.read("step", s);
    epoch = e.item<int64_t>();
    step = s.item<int64_t>();
  }
};

TrainResult train_small(uint64_t init_seed, int64_t save_at, const fs::path& save_dir,
                        const std::optional<fs::path>& resume) {
  Accelerator acc({.gradient_accumulation_steps = 2, .cpu = true, .seed = init_seed});
  SmallNet net;
  torch::optim::AdamW adamw(net->parameters(), torch::optim::AdamWOptions(1e-2));
  accel::LambdaLR schedule(adamw, accel::linear_schedule_with_warmup(2, 40));
  auto loader =
      acc.data_loader(regression_data(22, 7), {.batch_size = 4, .shuffle = true, .seed = 11});
  auto [model, opt, train, sched] = acc.prepare(net, adamw, loader, schedule);
  Counter counter;
  acc.register_for_checkpointing(counter);
  if (resume) acc.load_state(*resume);
  TrainResult result;
  for (; counter.epoch < 3; ++counter.epoch) {
    for (const auto& batch : train) {
      auto sync = acc.accumulate();
      acc.backward(torch::mse_loss(model->forward(batch.data), batch.target));
      opt.step();
      sched.step();
      opt.zero_grad();
      ++counter.step;
      if (counter.step == save_at) result.saved = acc.save_state(save_dir);
    }
  }
  result.params = snapshot(*net);
  return result;
}

}  // namespace

TEST_CASE("save_state -> load_state -> continue equals an uninterrupted run, bit for bit",
          "[accelerator]") {
  auto dir = fresh_dir("resume");
  auto uninterrupted = train_small(3, -1, {}, std::nullopt);
  // Checkpoints are taken on synchronising micro-batches (accumulated gradients are not saved, as in
  // Accelerate): mid-epoch 0, the end of epoch 0 (6 batches), mid-epoch 1.
  for (int64_t save_at : {4, 6, 8}) {
    INFO("saved after micro-batch " << save_at);
    auto first = train_small(3, save_at, dir / ("at_" + std::to_string(save_at)), std::nullopt);
    CHECK(bitwise_equal(first.params, uninterrupted.params));
    REQUIRE(fs::exists(first.saved / accel::checkpoint::kMarkerName));
    // A different initial seed: everything must come from the checkpoint.
    auto resumed = train_small(99, -1, {}, first.saved);
    CHECK(bitwise_equal(resumed.params, uninterrupted.params));
  }
}

TEST_CASE("Automatic naming, total_limit pruning and loading the newest checkpoint",
          "[accelerator]") {
  auto dir = fresh_dir("automatic");
  accel::ProjectConfiguration project;
  project.project_dir = dir;
  project.automatic_checkpoint_naming = true;
  project.total_limit = 2;
  Accelerator acc({.cpu = true, .project_config = project});
  torch::nn::Linear model(2, 2);
  acc.prepare(model);
  // Checkpoints live in the run's directory (no init_trackers: project "accel_logs").
  const auto run = dir / "accel_logs" / "version_0";
  for (int i = 0; i < 4; ++i) {
    auto saved = acc.save_state();
    CHECK(saved == run / "checkpoints" / ("checkpoint_" + std::to_string(i)));
  }
  CHECK(acc.run_dir() == run);
  CHECK(acc.run_name() == "accel_logs/version_0");
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(run / "checkpoints"))
    names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  CHECK((names == std::vector<std::string>{"checkpoint_2", "checkpoint_3"}));
  CHECK(acc.project_configuration().iteration == 4);

  // load_state() without a directory continues the run with the newest checkpoint, in its
  // directory.
  Accelerator again({.cpu = true, .project_config = project});
  torch::nn::Linear other(2, 2);
  again.prepare(other);
  again.load_state();
  CHECK(torch::equal(other->weight, model->weight));
  CHECK(again.run_dir() == run);
  CHECK(again.project_configuration().iteration == 4);
  CHECK(again.save_state() == run / "checkpoints" / "checkpoint_4");
}

TEST_CASE("Two runs into one project keep their own run directories and checkpoints",
          "[accelerator][runs]") {
  auto dir = fresh_dir("two_runs");
  accel::ProjectConfiguration project;
  project.project_dir = dir;
  project.automatic_checkpoint_naming = true;
  project.total_limit = 2;
  auto train = [&](double lr) {
    Accelerator acc(
        {.cpu = true, .log_with = {"csv", "jsonl", "tensorboard"}, .project_config = project});
    torch::nn::Linear model(2, 2);
    acc.prepare(model);
    acc.init_trackers("proj", {{"lr", lr}});
    for (int step = 0; step < 3; ++step) {
      acc.log({{"loss", lr * step}}, step);
      acc.save_state();
    }
    acc.save_model(model.ptr(), acc.run_dir() / "model");
    auto report = acc.end_training();
    CHECK(report.complete());
    return acc.run_dir();
  };
  const auto first = train(0.1);
  const auto second = train(0.2);
  CHECK(first == dir / "proj" / "version_0");
  CHECK(second == dir / "proj" / "version_1");
  for (const auto& run : {first, second}) {
    INFO(run);
    // total_limit applies to each run's own checkpoints: the first run's are intact.
    CHECK(fs::exists(run / "checkpoints" / "checkpoint_1" / accel::checkpoint::kMarkerName));
    CHECK(fs::exists(run / "checkpoints" / "checkpoint_2" / accel::checkpoint::kMarkerName));
    CHECK_FALSE(fs::exists(run / "checkpoints" / "checkpoint_0"));
    CHECK(fs::exists(run / "model" / "model.pt"));
    CHECK(fs::exists(run / "metrics.csv"));
    CHECK(fs::exists(run / "metrics.jsonl"));
    CHECK(fs::exists(run / "hparams.yaml"));
    int events = 0;
    for (const auto& entry : fs::directory_iterator(run)) {
      events += entry.path().filename().string().starts_with("events.out.tfevents.") ? 1 : 0;
    }
    CHECK(events == 1);  // one TensorBoard run per training, not one run with two files
  }
  std::ifstream hparams(second / "hparams.yaml");
  std::string text((std::istreambuf_iterator<char>(hparams)), std::istreambuf_iterator<char>());
  CHECK_THAT(text, Catch::Contains("0.2"));
  CHECK_FALSE(fs::exists(dir / "checkpoints"));  // nothing of a run outside its directory

  // A named run: its directory, continued when it exists (numbering after its checkpoints).
  auto named = project;
  named.run_name = "baseline";
  for (int round = 0; round < 2; ++round) {
    Accelerator acc({.cpu = true, .log_with = {"csv"}, .project_config = named});
    torch::nn::Linear model(2, 2);
    acc.prepare(model);
    acc.init_trackers("proj");
    CHECK(acc.run_dir() == dir / "proj" / "baseline");
    CHECK(acc.run_name() == "baseline");
    CHECK(acc.save_state() ==
          dir / "proj" / "baseline" / "checkpoints" / ("checkpoint_" + std::to_string(round)));
    acc.end_training();
  }
}

TEST_CASE(
    "An unwritable project_dir fails at prepare, init_trackers and save_state, naming the path",
    "[accelerator][runs]") {
  auto dir = fresh_dir("unwritable");
  const auto file = dir / "a_file";
  std::ofstream(file) << "not a directory";
  const auto bad = file / "runs";
  {
    accel::ProjectConfiguration project;
    project.project_dir = bad;
    project.automatic_checkpoint_naming = true;
    Accelerator acc({.cpu = true, .project_config = project});
    torch::nn::Linear model(2, 2);
    CHECK_THROWS_WITH(acc.prepare(model), Catch::Contains(bad.string()) &&
                                              Catch::Contains("project_dir") &&
                                              Catch::Contains("Not a directory"));
  }
  {
    Accelerator acc(
        {.cpu = true, .log_with = {"csv"}, .project_dir = file});  // a regular file itself
    CHECK_THROWS_AS(acc.init_trackers("proj"), accel::InvalidValue);
    CHECK_THROWS_WITH(acc.run_dir(),
                      Catch::Contains("is not a directory") || Catch::Contains("Not a directory"));
  }
  {
    Accelerator acc({.cpu = true});
    torch::nn::Linear model(2, 2);
    acc.prepare(model);  // nothing to write: nothing checked
    CHECK_THROWS_WITH(acc.save_state(bad / "checkpoint"), Catch::Contains(bad.string()));
    CHECK_THROWS_WITH(acc.save_model(model.ptr(), bad), Catch::Contains(bad.string()));
  }
  CHECK(fs::file_size(file) > 0);  // the file is left alone
}

TEST_CASE("load_state refuses incomplete checkpoints and mismatched setups", "[accelerator]") {
  auto dir = fresh_dir("refuse");
  Accelerator acc({.cpu = true});
  torch::nn::Linear model(2, 2);
  acc.prepare(model);
  auto saved = acc.save_state(dir / "good");
  fs::remove(saved / accel::checkpoint::kMarkerName);
  CHECK_THROWS_WITH(acc.load_state(saved), Catch::Contains("completion marker"));
  CHECK_THROWS_AS(acc.load_state(), accel::UsageError);  // no automatic naming

  auto good = acc.save_state(dir / "good2");
  Accelerator two_models({.cpu = true});
  torch::nn::Linear a(2, 2), b(2, 2);
  two_models.prepare(a, b);
  CHECK_THROWS_WITH(two_models.load_state(good), Catch::Contains("models"));

  // save_state never overwrites a directory it did not write, but replaces its own checkpoints.
  fs::create_directories(dir / "user_files");
  std::ofstream(dir / "user_files" / "notes.txt") << "mine";
  CHECK_THROWS_AS(acc.save_state(dir / "user_files"), accel::CheckpointError);
  CHECK(fs::exists(dir / "user_files" / "notes.txt"));
  CHECK_NOTHROW(acc.save_state(good));
  CHECK_NOTHROW(accel::checkpoint::require_complete(good));
}

TEST_CASE("log accepts tensors and values; trackers receive them in order",
          "[accelerator][tracking]") {
  auto dir = fresh_dir("log");
  auto tracker = std::make_shared<RecordingTracker>();
  Accelerator acc({.cpu = true, .log_with = {tracker}, .project_dir = dir});
  CHECK_THROWS_AS(acc.log({{"x", 1.0}}, 0), accel::UsageError);
  acc.init_trackers("proj", {{"lr", 0.1}});
  acc.log({{"loss", torch::tensor(0.25)}, {"count", torch::tensor(int64_t{7})}, {"lr", 1e-3}}, 0);
  acc.log({{"loss", torch::tensor(0.125, torch::kBFloat16)}, {"name", "run"}}, 1);
  CHECK_THROWS_AS(acc.log({{"bad", torch::ones({2})}}, 2), accel::InvalidValue);
  acc.log(accel::Values{{"plain", 3}}, 3);
  auto report = acc.end_training();
  CHECK(report.complete());
  REQUIRE(tracker->records.size() == 3);
  const auto& first = tracker->records[0].first;
  CHECK(first.find("loss")->as_double() == 0.25);
  CHECK(first.find("count")->is_integer());
  CHECK(first.find("count")->as_double() == 7);
  CHECK(first.find("lr")->as_double() == 1e-3);
  CHECK(tracker->records[1].first.find("loss")->as_double() == 0.125);
  CHECK(tracker->records[1].second == 1);
  CHECK(tracker->records[2].first.find("plain")->as_double() == 3);
  CHECK(tracker->config["lr"] == 0.1);
  CHECK(tracker->finished);
  CHECK_THROWS_AS(acc.log({{"x", 1.0}}, 9), accel::UsageError);
}

TEST_CASE("Lightning-style log aggregates per step and per epoch", "[accelerator][tracking]") {
  auto dir = fresh_dir("lightning");
  auto tracker = std::make_shared<RecordingTracker>();
  Accelerator acc({.cpu = true, .log_with = {tracker}, .project_dir = dir, .log_every_n_steps = 2});
  torch::nn::Linear model(1, 1);
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.0));
  auto& opt = acc.prepare(sgd);
  acc.init_trackers("proj");
  for (int step = 0; step < 4; ++step) {
    acc.log("loss", torch::tensor(static_cast<double>(step)),
            {.on_step = true, .on_epoch = true, .prog_bar = true, .batch_size = 1});
    acc.log("acc", 0.5, {.on_step = false, .on_epoch = true});
    opt.step();
  }
  acc.epoch_end();
  acc.end_training();
  // Steps 1 and 3 are due with log_every_n_steps = 2 (step 3 is emitted at epoch_end).
  std::vector<int64_t> step_records;
  bool saw_epoch = false;
  for (const auto& [values, step] : tracker->records) {
    if (values.contains("loss_step")) step_records.push_back(*step);
    if (values.contains("loss_epoch")) {
      saw_epoch = true;
      CHECK(values.find("loss_epoch")->as_double() == Approx(1.5));
      CHECK(values.find("acc")->as_double() == Approx(0.5));
    }
  }
  CHECK((step_records == std::vector<int64_t>{1, 3}));
  CHECK(saw_epoch);
  CHECK(acc.callback_metrics().find("loss_epoch")->as_double() == Approx(1.5));
}

TEST_CASE("accel::image and accel::histogram convert tensors", "[accelerator][tracking]") {
  auto chw = torch::rand({3, 4, 5});
  auto img = accel::image(chw);
  CHECK(img.height == 4);
  CHECK(img.width == 5);
  CHECK(img.channels == 3);
  CHECK((accel::image(torch::zeros({6, 7}, torch::kUInt8)).channels == 1));
  CHECK_THROWS_AS(accel::image(torch::zeros({2, 2, 2, 2})), accel::InvalidValue);
  CHECK(accel::histogram(torch::arange(10)).count() == 10);
}

namespace {

// Records what the Accelerator tells trackers of checkpoints (GeneralTracker::checkpoint_saved).
class CheckpointRecorder final : public accel::GeneralTracker {
 public:
  std::string name() const override { return "checkpoints"; }
  bool requires_logging_directory() const override { return false; }
  void store_init_configuration(const nlohmann::json&) override {}
  void log(const accel::Values&, std::optional<int64_t>) override {}
  void checkpoint_saved(const fs::path& dir, bool best) override {
    std::lock_guard lock(mutex);
    told.emplace_back(dir, best);
  }
  std::mutex mutex;
  std::vector<std::pair<fs::path, bool>> told;
};

}  // namespace

TEST_CASE("save_state and mark_best_checkpoint tell the trackers of each committed checkpoint",
          "[accelerator][tracking]") {
  auto dir = fresh_dir("told_checkpoints");
  accel::ProjectConfiguration project;
  project.project_dir = dir;
  project.automatic_checkpoint_naming = true;
  auto recorder = std::make_shared<CheckpointRecorder>();
  Accelerator acc({.cpu = true, .log_with = {recorder}, .project_config = project});
  torch::nn::Linear model(2, 2);
  acc.prepare(model);
  const auto before = acc.save_state();  // before init_trackers: nobody to tell
  acc.init_trackers("proj");
  const auto first = acc.save_state();
  const auto second = acc.save_state();
  acc.mark_best_checkpoint(first);
  CHECK_THROWS_AS(acc.mark_best_checkpoint(dir / "no_such_checkpoint"), accel::CheckpointError);
  acc.end_training();
  acc.save_state();  // after end_training: nobody either
  const std::vector<std::pair<fs::path, bool>> expected = {
      {first, false}, {second, false}, {first, true}};
  CHECK(recorder->told == expected);
  CHECK(before != first);
}
