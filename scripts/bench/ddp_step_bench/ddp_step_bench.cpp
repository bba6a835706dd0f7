// ddp_step_bench: time of one data-parallel training step (forward, backward, gradient averaging, SGD
// step) of a ~25M-parameter MLP on CPU, in one of two modes:
//   accel  - accel::Reducer (bucketed allreduce overlapping backward on the communication thread);
//   raw    - the same compute, then ONE MPI_Allreduce of all gradients in a flat buffer (no overlap):
//            the simple bound a gradient synchroniser should stay close to;
//   compute - the same compute with no gradient averaging at all: the floor no synchroniser can beat.
// Rank 0 prints {"mode", "parameters", "steps", "step_seconds" (median over steps, max over ranks)}.
// usage: mpiexec -n 2 ddp_step_bench --mode accel|raw|compute [--steps N] [--warmup N] [--batch N] [--threads N]
#include <mpi.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "accel/mpi_group.hpp"
#include "accel/reducer.hpp"
#include "accel/state.hpp"

namespace {

torch::nn::Sequential make_model() {
  torch::manual_seed(0);
  return torch::nn::Sequential(torch::nn::Linear(1024, 4096), torch::nn::ReLU(),
                               torch::nn::Linear(4096, 4096), torch::nn::ReLU(),
                               torch::nn::Linear(4096, 1024));
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = "accel";
  int steps = 20;
  int warmup = 3;
  int batch = 64;
  int threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--mode") mode = value;
    if (flag == "--steps") steps = std::stoi(value);
    if (flag == "--warmup") warmup = std::stoi(value);
    if (flag == "--batch") batch = std::stoi(value);
    if (flag == "--threads") threads = std::stoi(value);
  }
  if (mode != "accel" && mode != "raw" && mode != "compute") {
    std::fprintf(stderr, "ddp_step_bench: --mode must be accel, raw or compute, got '%s'\n",
                 mode.c_str());
    return 2;
  }
  torch::set_num_threads(threads);
  const accel::State& state = accel::State::instance();
  auto group = std::make_shared<accel::MpiGroup>();
  torch::nn::Sequential model = make_model();
  std::vector<at::Tensor> params = model->parameters();
  std::int64_t parameter_count = 0;
  for (const auto& p : params) parameter_count += p.numel();

  std::unique_ptr<accel::Reducer> reducer;
  if (mode == "accel") reducer = std::make_unique<accel::Reducer>(*model, group);
  at::Tensor flat = torch::zeros({parameter_count});

  torch::optim::SGD optimizer(params, torch::optim::SGDOptions(1e-3));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1234 + state.rank());
  const at::Tensor x = torch::randn({batch, 1024}, gen);
  const at::Tensor y = torch::randn({batch, 1024}, gen);

  std::vector<double> times;
  for (int step = 0; step < warmup + steps; ++step) {
    MPI_Barrier(MPI_COMM_WORLD);
    const double start = MPI_Wtime();
    optimizer.zero_grad();
    at::Tensor loss = torch::mse_loss(model->forward(x), y);
    loss.backward();
    if (mode == "raw") {
      torch::NoGradGuard no_grad;
      std::int64_t offset = 0;
      for (auto& p : params) {
        flat.narrow(0, offset, p.numel()).copy_(p.grad().view(-1));
        offset += p.numel();
      }
      MPI_Allreduce(MPI_IN_PLACE, flat.data_ptr<float>(), static_cast<int>(flat.numel()), MPI_FLOAT,
                    MPI_SUM, MPI_COMM_WORLD);
      flat.div_(state.world_size());
      offset = 0;
      for (auto& p : params) {
        p.grad().view(-1).copy_(flat.narrow(0, offset, p.numel()));
        offset += p.numel();
      }
    }
    optimizer.step();
    double elapsed = MPI_Wtime() - start;
    double slowest = 0;
    MPI_Allreduce(&elapsed, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (step >= warmup) times.push_back(slowest);
  }
  std::sort(times.begin(), times.end());
  if (state.is_main_process()) {
    std::printf("{\"mode\": \"%s\", \"parameters\": %lld, \"steps\": %d, \"step_seconds\": %.6f}\n",
                mode.c_str(), static_cast<long long>(parameter_count), steps,
                times[times.size() / 2]);
    std::fflush(stdout);
  }
  return 0;
}
