// accel-sanity-check: run by `accel-launch test` on every rank. Checks, on the device and process
// group training would use, that the job's ranks agree with the launcher, that collectives give the
// right numbers (allreduce, broadcast, uneven allgather, object collectives), that gradients are
// averaged and identical on every rank (and stay local under no_sync), and that main-process trackers
// run on rank 0 only. Rank 0 prints one line per check and "all checks passed" or what failed; every
// rank exits 0 when all checks passed, else 1.
//
// `accel-sanity-check --versions` prints the LibTorch, CUDA and NCCL versions it was built with (for
// `accel-launch env`) without starting MPI.
#include <torch/torch.h>

#include <accel/mpi_group.hpp>
#include <accel/process_group.hpp>
#include <accel/reducer.hpp>
#include <accel/state.hpp>
#include <accel/tracking/hub.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#ifdef ACCEL_SANITY_WITH_NCCL
#include <nccl.h>
#endif

namespace {

int print_versions() {
  std::printf("LibTorch: %s\n", TORCH_VERSION);
  const bool cuda = torch::cuda::is_available();
  std::printf("CUDA: %s\n",
              cuda ? (std::to_string(torch::cuda::device_count()) + " device(s) usable").c_str()
                   : "not usable here");
#ifdef ACCEL_SANITY_WITH_NCCL
  int version = 0;
  ncclGetVersion(&version);
  std::printf("NCCL: %d.%d.%d\n", version / 10000, (version % 10000) / 100, version % 100);
#else
  std::printf("NCCL: not built in\n");
#endif
  return 0;
}

// A tracker that only counts what reaches it.
class CountingTracker : public accel::GeneralTracker {
 public:
  CountingTracker(std::string name, bool main_only)
      : name_(std::move(name)), main_only_(main_only) {}
  std::string name() const override { return name_; }
  bool requires_logging_directory() const override { return false; }
  bool main_process_only() const override { return main_only_; }
  void store_init_configuration(const nlohmann::json&) override { ++configs; }
  void log(const accel::Values&, std::optional<int64_t>) override { ++logs; }
  int configs = 0;
  int logs = 0;

 private:
  std::string name_;
  bool main_only_;
};

class SanityCheck {
 public:
  SanityCheck()
      : state_(accel::State::instance()),
        group_(accel::default_process_group()),
        objects_(accel::cpu_process_group()),
        device_(state_.device()) {}

  // Runs `check` on every rank; a check fails when it fails on any rank.
  void run(const std::string& name, const std::function<std::string()>& check) {
    std::string problem;
    try {
      problem = check();
    } catch (const std::exception& e) {
      problem = std::string("threw: ") + e.what();
    }
    const std::vector<std::string> problems = objects_->allgather_object(problem);
    std::string report;
    for (std::size_t rank = 0; rank < problems.size(); ++rank) {
      if (!problems[rank].empty())
        report += "\n      rank " + std::to_string(rank) + ": " + problems[rank];
    }
    if (!report.empty()) ++failures_;
    if (state_.is_main_process()) {
      std::printf("  [%s] %s%s\n", report.empty() ? "ok" : "FAILED", name.c_str(), report.c_str());
      std::fflush(stdout);
    }
  }

  int finish() {
    if (state_.is_main_process()) {
      if (failures_ == 0) {
        std::printf("all checks passed\n");
      } else {
        std::printf("%d check(s) FAILED\n", failures_);
      }
      std::fflush(stdout);
    }
    return failures_ == 0 ? 0 : 1;
  }

  const accel::State& state() const { return state_; }
  accel::ProcessGroup& group() { return *group_; }
  std::shared_ptr<accel::ProcessGroup> group_ptr() { return group_; }
  torch::TensorOptions options(torch::Dtype dtype = torch::kFloat) const {
    return torch::TensorOptions().dtype(dtype).device(device_);
  }
  accel::ProcessGroup& objects() { return *objects_; }

 private:
  const accel::State& state_;
  std::shared_ptr<accel::ProcessGroup> group_;
  std::shared_ptr<accel::ProcessGroup> objects_;
  torch::Device device_;
  int failures_ = 0;
};

std::string expect_close(const torch::Tensor& actual, const torch::Tensor& expected,
                         const std::string& what) {
  if (torch::allclose(actual.cpu(), expected.cpu(), 1e-5, 1e-6)) return "";
  return what + ": got " + std::to_string(actual.cpu().flatten()[0].item<double>()) +
         ", expected " + std::to_string(expected.cpu().flatten()[0].item<double>());
}

std::string check_state(SanityCheck& s) {
  const auto& state = s.state();
  const char* launcher_size = std::getenv("WORLD_SIZE");
  const char* launcher_rank = std::getenv("RANK");
  if (launcher_size && std::atoi(launcher_size) != state.world_size()) {
    return "world size " + std::to_string(state.world_size()) + " but the launcher started " +
           launcher_size;
  }
  if (launcher_rank && std::atoi(launcher_rank) != state.rank()) {
    return "rank " + std::to_string(state.rank()) + " but the launcher says " + launcher_rank;
  }
  auto ranks = s.objects().allgather_object(std::to_string(state.rank()));
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    if (ranks[i] != std::to_string(i))
      return "rank " + std::to_string(i) + " reports itself as " + ranks[i];
  }
  return "";
}

std::string check_allreduce(SanityCheck& s) {
  const int rank = s.state().rank();
  const int n = s.state().world_size();
  auto sum = torch::full({4}, rank + 1.0, s.options());
  s.group().allreduce(sum, accel::ReduceOp::kSum)->wait();
  std::string problem = expect_close(sum, torch::full({4}, n * (n + 1) / 2.0), "sum");
  auto avg = torch::full({3}, static_cast<double>(rank), s.options());
  s.group().allreduce(avg, accel::ReduceOp::kAvg)->wait();
  if (problem.empty()) problem = expect_close(avg, torch::full({3}, (n - 1) / 2.0), "avg");
  auto max = torch::full({2}, static_cast<double>(rank), s.options());
  s.group().allreduce(max, accel::ReduceOp::kMax)->wait();
  if (problem.empty()) problem = expect_close(max, torch::full({2}, n - 1.0), "max");
  return problem;
}

std::string check_broadcast(SanityCheck& s) {
  auto value = torch::full({5}, s.state().rank() == 0 ? 42.0 : -1.0, s.options());
  s.group().broadcast(value, 0)->wait();
  return expect_close(value, torch::full({5}, 42.0), "broadcast value");
}

std::string check_gather(SanityCheck& s) {
  const int rank = s.state().rank();
  const int n = s.state().world_size();
  // Uneven sizes: rank r contributes r + 1 rows of value r, as gather_for_metrics sees them.
  auto mine = torch::full({rank + 1, 2}, static_cast<double>(rank), s.options());
  auto work = s.group().allgather(mine);
  work->wait();
  const auto& parts = work->result();
  if (static_cast<int>(parts.size()) != n) return "got " + std::to_string(parts.size()) + " parts";
  auto all = torch::cat(parts).cpu();
  std::vector<torch::Tensor> expected;
  for (int r = 0; r < n; ++r) expected.push_back(torch::full({r + 1, 2}, static_cast<double>(r)));
  if (!torch::equal(all, torch::cat(expected).to(all.dtype())))
    return "rows not in rank order or wrong";
  auto barrier = s.group().barrier();
  barrier->wait();
  return "";
}

// A model whose initial weights differ on every rank (the Reducer makes them rank 0's).
torch::nn::Linear make_model(SanityCheck& s) {
  torch::manual_seed(1000 + s.state().rank());
  torch::nn::Linear model(torch::nn::LinearOptions(6, 3));
  model->to(s.options().device());
  return model;
}

std::string check_gradient_sync(SanityCheck& s) {
  const int rank = s.state().rank();
  const int n = s.state().world_size();
  torch::manual_seed(7);  // the same global batch on every rank
  auto x = torch::randn({8 * n, 6}).to(s.options().device());
  auto y = torch::randn({8 * n, 3}).to(s.options().device());
  auto model = make_model(s);
  accel::Reducer reducer(*model, s.group_ptr());
  // A single process on the whole batch, starting from the same (broadcast) weights.
  torch::nn::Linear reference(torch::nn::LinearOptions(6, 3));
  reference->to(s.options().device());
  {
    torch::NoGradGuard no_grad;
    reference->weight.copy_(model->weight);
    reference->bias.copy_(model->bias);
  }
  torch::mse_loss(model->forward(x.narrow(0, 8 * rank, 8)), y.narrow(0, 8 * rank, 8)).backward();
  torch::mse_loss(reference->forward(x), y).backward();
  std::string problem =
      expect_close(model->weight.grad(), reference->weight.grad(), "weight gradient");
  if (problem.empty())
    problem = expect_close(model->bias.grad(), reference->bias.grad(), "bias gradient");
  // Identical on every rank: the spread (max - min) is zero.
  auto high = model->weight.grad().clone();
  auto low = model->weight.grad().clone();
  s.group().allreduce(high, accel::ReduceOp::kMax)->wait();
  s.group().allreduce(low, accel::ReduceOp::kMin)->wait();
  if (problem.empty() && !torch::equal(high, low)) problem = "gradients differ across ranks";

  // Under no_sync the gradient is this rank's own.
  model->zero_grad();
  reference->zero_grad();
  {
    auto guard = reducer.no_sync();
    torch::mse_loss(model->forward(x.narrow(0, 8 * rank, 8)), y.narrow(0, 8 * rank, 8)).backward();
  }
  torch::mse_loss(reference->forward(x.narrow(0, 8 * rank, 8)), y.narrow(0, 8 * rank, 8))
      .backward();
  if (problem.empty()) {
    problem = expect_close(model->weight.grad(), reference->weight.grad(), "no_sync gradient");
  }
  return problem;
}

std::string check_tracker_gating(SanityCheck& s) {
  const auto& state = s.state();
  auto main_only = std::make_shared<CountingTracker>("sanity_main_only", true);
  auto everywhere = std::make_shared<CountingTracker>("sanity_every_rank", false);
  {
    accel::TrackerHubOptions options;
    options.is_main_process = state.is_main_process();
    options.rank = state.rank();
    options.world_size = state.world_size();
    options.handle_signals = false;
    accel::TrackerHub hub(options);
    hub.init_trackers("accel-sanity-check", {{"check", "gating"}}, {main_only, everywhere});
    hub.log({{"sanity/value", 1.0}}, 0);
    hub.end_training();
  }
  const int expected_main = state.is_main_process() ? 1 : 0;
  if (main_only->logs != expected_main) {
    return "main-process tracker received " + std::to_string(main_only->logs) +
           " log call(s), expected " + std::to_string(expected_main);
  }
  if (everywhere->logs != 1) {
    return "every-rank tracker received " + std::to_string(everywhere->logs) +
           " log call(s), expected 1";
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--versions") return print_versions();
  if (argc > 1) {
    std::fprintf(stderr,
                 "usage: accel-sanity-check [--versions] (started by `accel-launch test`)\n");
    return 2;
  }
  setenv("ACCEL_COLLECTIVE_TIMEOUT", "120", /*overwrite=*/0);  // a broken job ends, never hangs
  try {
    SanityCheck s;
    const auto& state = s.state();
    if (state.is_main_process()) {
      std::printf("accel sanity check: %d process(es), rank 0 on %s, collectives over %s\n",
                  state.world_size(), state.device().str().c_str(),
                  std::string(s.group().backend()).c_str());
      if (const auto* mpi =
              dynamic_cast<const accel::MpiGroup*>(accel::cpu_process_group().get())) {
        std::printf("CPU allreduce through shared memory: %s\n",
                    mpi->shared_memory_status().c_str());
      }
    }
    s.run("ranks: every process agrees with the launcher on its rank and the world size",
          [&] { return check_state(s); });
    s.run("allreduce: sum, average and maximum", [&] { return check_allreduce(s); });
    s.run("broadcast from rank 0", [&] { return check_broadcast(s); });
    s.run("gather: uneven per-rank tensors come back in rank order",
          [&] { return check_gather(s); });
    s.run(
        "gradient sync: averaged gradients equal one process on the whole batch, on every rank; "
        "no_sync keeps them local",
        [&] { return check_gradient_sync(s); });
    s.run("tracker gating: main-process trackers run on rank 0 only, the others everywhere",
          [&] { return check_tracker_gating(s); });
    return s.finish();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "accel-sanity-check: cannot run the checks: %s\n", e.what());
    return 1;
  }
}
