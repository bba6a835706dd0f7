// The Accelerator across processes (run under mpiexec with 2 and 3 ranks): gradient equality,
// accumulation equivalence, gather_for_metrics, collectives, checkpoints and tracker gating.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "accel/accelerator.hpp"
#include "accel/process_group.hpp"
#include "recording_tracker.hpp"
// After LibTorch: c10 defines a one-argument CHECK that would replace Catch's.
#include <catch2/catch.hpp>

namespace fs = std::filesystem;
using accel::Accelerator;
using accel_test::RecordingTracker;

namespace {

// A directory every rank agrees on (rank 0's pid, broadcast).
fs::path shared_dir(Accelerator& acc, const std::string& name) {
  auto pid = torch::tensor({static_cast<int64_t>(::getpid())});
  acc.broadcast(pid, 0);
  auto dir = fs::temp_directory_path() /
             ("accel_accelerator_mpi_test_" + std::to_string(pid.item<int64_t>())) / name;
  if (acc.is_main_process()) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  acc.wait_for_everyone();
  return dir;
}

accel::TensorDataset regression_data(int64_t n) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(123);
  auto x = torch::randn({n, 4}, generator);
  auto y = x.sum(1, true) + 0.1 * torch::randn({n, 1}, generator);
  return accel::TensorDataset(x, y);
}

std::vector<torch::Tensor> snapshot(const torch::nn::Module& module) {
  std::vector<torch::Tensor> copy;
  for (const auto& p : module.parameters()) copy.push_back(p.detach().clone());
  return copy;
}

}  // namespace

TEST_CASE("Gradients are identical on every rank after backward", "[accelerator][mpi]") {
  Accelerator acc({.cpu = true, .seed = 5});
  torch::nn::Sequential model(torch::nn::Linear(4, 16), torch::nn::Tanh(),
                              torch::nn::Linear(16, 1));
  acc.prepare(model);
  // Different data on each rank.
  auto x = torch::randn({8, 4}) + acc.process_index();
  acc.backward(model->forward(x).pow(2).mean());
  for (const auto& p : model->parameters()) {
    auto all = acc.gather(p.grad().reshape({1, -1}));
    for (int r = 1; r < acc.num_processes(); ++r) CHECK(torch::equal(all[r], all[0]));
  }
}

TEST_CASE("Accumulation over ranks equals one big batch on one process", "[accelerator][mpi]") {
  const int64_t k = 2, micro = 3;
  Accelerator acc({.gradient_accumulation_steps = k, .cpu = true});
  const int64_t n = micro * k * acc.num_processes();
  auto data = regression_data(n);
  torch::manual_seed(1);
  torch::nn::Linear model(4, 1);
  torch::manual_seed(1);
  torch::nn::Linear reference(4, 1);
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
  auto loader = acc.data_loader(data, {.batch_size = micro});
  auto [m, opt, train] = acc.prepare(model, sgd, loader);
  for (const auto& batch : train) {
    auto sync = acc.accumulate();
    acc.backward(torch::mse_loss(m->forward(batch.data), batch.target));
    opt.step();
    opt.zero_grad();
  }
  // The reference: one SGD step on the mean loss over all n samples, computed locally.
  torch::optim::SGD ref_sgd(reference->parameters(), torch::optim::SGDOptions(0.1));
  torch::mse_loss(reference->forward(data.data()), data.target()).backward();
  ref_sgd.step();
  auto got = snapshot(*model), want = snapshot(*reference);
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(torch::allclose(got[i], want[i], 1e-5, 1e-6));
}

TEST_CASE("gather_for_metrics returns exactly the dataset, per batch and per pass",
          "[accelerator][mpi]") {
  Accelerator acc({.cpu = true});
  for (int64_t n : {11, 12, 7}) {
    INFO("dataset of " << n);
    auto ids = torch::arange(n, torch::kInt64);
    auto loader = acc.data_loader(accel::TensorDataset(ids.unsqueeze(1).to(torch::kFloat32), ids),
                                  {.batch_size = 2, .shuffle = true, .seed = 4});
    acc.prepare(loader);
    std::vector<int64_t> per_batch;
    std::vector<torch::Tensor> local;
    for (const auto& batch : loader) {
      auto all = acc.gather_for_metrics(batch.target);
      per_batch.insert(per_batch.end(), all.data_ptr<int64_t>(),
                       all.data_ptr<int64_t>() + all.numel());
      local.push_back(batch.target);
    }
    CHECK(static_cast<int64_t>(per_batch.size()) == n);
    CHECK(std::set<int64_t>(per_batch.begin(), per_batch.end()).size() ==
          static_cast<std::size_t>(n));
    auto whole = acc.gather_for_metrics(torch::cat(local));
    CHECK(whole.size(0) == n);
    CHECK(std::get<0>(torch::_unique(whole)).size(0) == n);
  }
}

TEST_CASE("reduce, pad_across_processes, broadcast and split_between_processes",
          "[accelerator][mpi]") {
  Accelerator acc({.cpu = true});
  const int world = acc.num_processes(), rank = acc.process_index();
  auto value = torch::tensor({static_cast<double>(rank + 1)});
  CHECK(acc.reduce(value, "sum").item<double>() == world * (world + 1) / 2.0);
  CHECK(acc.reduce(value, "mean").item<double>() == Approx((world + 1) / 2.0));
  CHECK(acc.reduce(value, "max").item<double>() == world);
  CHECK(acc.reduce(value, "sum", 0.5).item<double>() == world * (world + 1) / 4.0);
  CHECK(value.item<double>() == rank + 1);  // the input is not modified

  auto ragged = torch::ones({rank + 1, 2});
  auto padded = acc.pad_across_processes(ragged, 0, -1.0);
  CHECK(padded.size(0) == world);
  CHECK(padded[world - 1][0].item<double>() == (rank + 1 == world ? 1.0 : -1.0));

  auto shared = torch::tensor({rank * 10});
  acc.broadcast(shared, world - 1);
  CHECK(shared.item<int64_t>() == (world - 1) * 10);

  std::vector<int> items{0, 1, 2, 3, 4, 5, 6};
  auto mine = acc.split_between_processes(items);
  auto counts = acc.gather(torch::tensor({static_cast<int64_t>(mine.size())}));
  CHECK(counts.sum().item<int64_t>() == 7);
  auto padded_share = acc.split_between_processes(items, true);
  CHECK(padded_share.size() == static_cast<std::size_t>((7 + world - 1) / world));
  auto rows = acc.split_between_processes(torch::arange(7));
  CHECK(acc.gather(rows).equal(torch::arange(7)));

  // Any rank may set the trigger.
  if (rank == world - 1) acc.set_trigger();
  CHECK(acc.check_trigger());
  CHECK_FALSE(acc.check_trigger());
}

TEST_CASE("main_process_first lets the main process finish first", "[accelerator][mpi]") {
  Accelerator acc({.cpu = true});
  auto dir = shared_dir(acc, "first");
  {
    auto first = acc.main_process_first();
    if (acc.is_main_process()) {
      ::usleep(200'000);
      std::ofstream(dir / "ready") << "yes";
    } else {
      CHECK(fs::exists(dir / "ready"));
    }
  }
  acc.wait_for_everyone();
}

TEST_CASE("Checkpoints hold every rank's RNG state and restore the model everywhere",
          "[accelerator][mpi]") {
  Accelerator acc({.cpu = true});
  auto dir = shared_dir(acc, "checkpoint");
  torch::manual_seed(100 + acc.process_index());
  torch::nn::Linear model(3, 3);
  acc.prepare(model);  // rank 0's weights everywhere
  auto saved = acc.save_state(dir / "state");
  for (int r = 0; r < acc.num_processes(); ++r)
    CHECK(fs::exists(saved / ("random_states_" + std::to_string(r) + ".pt")));
  auto expected_random = torch::rand({4});
  auto expected_weight = model->weight.detach().clone();
  {
    torch::NoGradGuard no_grad;
    model->weight.add_(1.0);
  }
  torch::rand({50});
  acc.load_state(saved);
  CHECK(torch::equal(model->weight.detach(), expected_weight));
  CHECK(torch::equal(torch::rand({4}), expected_random));  // this rank's own stream
}

TEST_CASE("Trackers run on the main process only unless they opt out",
          "[accelerator][mpi][tracking]") {
  Accelerator probe({.cpu = true});
  auto dir = shared_dir(probe, "gating");
  auto main_only = std::make_shared<RecordingTracker>("main_only", true);
  auto everywhere = std::make_shared<RecordingTracker>("everywhere", false);
  Accelerator acc({.cpu = true, .log_with = {main_only, everywhere}, .project_dir = dir});
  acc.init_trackers("gating", {{"k", 1}});
  acc.log({{"rank", acc.process_index()}}, 0);
  // Every rank may ask for a tracker; where it does not run, a harmless no-op one comes back.
  if (acc.is_main_process()) {
    CHECK(&acc.get_tracker("main_only") == main_only.get());
  } else {
    CHECK(&acc.get_tracker("main_only") != main_only.get());
    CHECK_NOTHROW(acc.get_tracker("main_only").log(accel::Values{{"ignored", 1}}, 0));
  }
  CHECK(&acc.get_tracker("everywhere") == everywhere.get());
  CHECK(acc.get_tracker<RecordingTracker>("main_only") == nullptr);  // it has no handle
  acc.end_training();
  if (acc.is_main_process()) {
    REQUIRE(main_only->records.size() == 1);
    CHECK(main_only->records[0].first.find("rank")->as_double() == 0);
  } else {
    CHECK(main_only->records.empty());
    CHECK_FALSE(main_only->started);
  }
  REQUIRE(everywhere->records.size() == 1);
  CHECK(everywhere->records[0].first.find("rank")->as_double() == acc.process_index());
  // Only the main process wrote anything through the main-only tracker: count over ranks.
  auto counts = acc.gather(torch::tensor({static_cast<int64_t>(main_only->records.size())}));
  CHECK(counts.sum().item<int64_t>() == 1);
}

TEST_CASE("sync_dist reduces Lightning-style metrics across ranks",
          "[accelerator][mpi][tracking]") {
  Accelerator acc({.cpu = true});
  const int world = acc.num_processes();
  // Rank r logs r+1 with batch size r+1: the weighted mean is sum((r+1)^2) / sum(r+1).
  double numerator = 0, denominator = 0;
  for (int r = 0; r < world; ++r) {
    numerator += (r + 1.0) * (r + 1.0);
    denominator += r + 1.0;
  }
  acc.log("metric", torch::tensor(acc.process_index() + 1.0),
          {.on_step = false,
           .on_epoch = true,
           .sync_dist = true,
           .batch_size = acc.process_index() + 1});
  acc.epoch_end();
  CHECK(acc.callback_metrics().find("metric")->as_double() == Approx(numerator / denominator));
}

TEST_CASE("Every rank agrees on the run directory; a rerun gets its own",
          "[accelerator][mpi][runs]") {
  Accelerator probe({.cpu = true});
  auto dir = shared_dir(probe, "runs");
  accel::ProjectConfiguration project;
  project.project_dir = dir;
  project.automatic_checkpoint_naming = true;
  project.total_limit = 1;
  for (int run = 0; run < 2; ++run) {
    Accelerator acc({.cpu = true, .log_with = {"csv"}, .project_config = project});
    torch::nn::Linear model(2, 2);
    acc.prepare(model);
    acc.init_trackers("proj");
    const auto expected = dir / "proj" / ("version_" + std::to_string(run));
    CHECK(acc.run_dir() == expected);
    CHECK(acc.save_state() == expected / "checkpoints" / "checkpoint_0");
    CHECK(acc.save_state() == expected / "checkpoints" / "checkpoint_1");
    acc.end_training();
    acc.wait_for_everyone();
    // The other run's checkpoint is intact; this run kept its newest one only (total_limit 1).
    CHECK(fs::exists(dir / "proj" / "version_0" / "checkpoints" / "checkpoint_1" /
                     accel::checkpoint::kMarkerName));
    CHECK_FALSE(fs::exists(expected / "checkpoints" / "checkpoint_0"));
  }
}

TEST_CASE("An unwritable project_dir fails prepare on every rank, before any step",
          "[accelerator][mpi][runs]") {
  Accelerator probe({.cpu = true});
  auto dir = shared_dir(probe, "unwritable");
  const auto file = dir / "a_file";
  if (probe.is_main_process()) std::ofstream(file) << "not a directory";
  probe.wait_for_everyone();
  Accelerator acc({.cpu = true, .log_with = {"csv"}, .project_dir = file / "runs"});
  torch::nn::Linear model(2, 2);
  bool threw = false;
  try {
    acc.prepare(model);
  } catch (const accel::InvalidValue& e) {
    threw = true;
    CHECK_THAT(e.what(),
               Catch::Contains((file / "runs").string()) && Catch::Contains("project_dir"));
  }
  CHECK(threw);
  // Every rank threw and still takes part in collectives (none is left waiting).
  auto all = acc.gather(torch::tensor({threw ? 1 : 0}));
  CHECK(all.sum().item<int64_t>() == acc.num_processes());
}
