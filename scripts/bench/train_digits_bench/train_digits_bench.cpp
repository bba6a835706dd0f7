// The digits training step, timed: `--mode accel` runs it through accel::Accelerator (launch with
// mpirun -np N for N processes), `--mode raw` as a plain single-process LibTorch loop with the same
// model, optimizer, batch size and data. Rank 0 prints one JSON line with the timings.
#include <fmt/format.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <accel/accelerator.hpp>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "digits.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Settings {
  std::string mode = "accel";
  std::string data;
  int64_t steps = 500;
  int64_t warmup = 30;
  int64_t batch_size = 64;
  int threads = 1;
};

nlohmann::json run_accel(const Settings& s) {
  accel::Accelerator acc({.cpu = true, .seed = 0});
  auto [train_set, val_set] = digits::split(digits::load(s.data), 0.2, 0);
  digits::Net net;
  torch::optim::AdamW adamw(net->parameters(), torch::optim::AdamWOptions(1e-3));
  auto loader = acc.data_loader(train_set, {.batch_size = s.batch_size, .shuffle = true});
  auto [model, opt, train] = acc.prepare(net, adamw, loader);
  int64_t step = 0;
  Clock::time_point start;
  while (step < s.warmup + s.steps) {
    for (const auto& batch : train) {
      if (step == s.warmup) {
        acc.wait_for_everyone();
        start = Clock::now();
      }
      auto sync = acc.accumulate();
      auto loss = torch::cross_entropy_loss(model->forward(batch.data), batch.target);
      acc.backward(loss);
      opt.step();
      opt.zero_grad();
      if (++step == s.warmup + s.steps) break;
    }
  }
  acc.wait_for_everyone();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return {{"mode", "accel"},
          {"processes", acc.num_processes()},
          {"steps", s.steps},
          {"seconds", seconds},
          {"steps_per_s", static_cast<double>(s.steps) / seconds},
          {"step_us", seconds * 1e6 / static_cast<double>(s.steps)}};
}

nlohmann::json run_raw(const Settings& s) {
  torch::manual_seed(0);
  auto [train_set, val_set] = digits::split(digits::load(s.data), 0.2, 0);
  digits::Net model;
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-3));
  const int64_t n = train_set.size();
  int64_t step = 0;
  Clock::time_point start;
  while (step < s.warmup + s.steps) {
    auto order = torch::randperm(n, torch::kInt64);
    for (int64_t first = 0; first < n && step < s.warmup + s.steps; first += s.batch_size) {
      if (step == s.warmup) start = Clock::now();
      auto idx = order.slice(0, first, std::min(first + s.batch_size, n));
      auto data = train_set.data().index_select(0, idx);
      auto target = train_set.target().index_select(0, idx);
      auto loss = torch::cross_entropy_loss(model->forward(data), target);
      loss.backward();
      opt.step();
      opt.zero_grad();
      ++step;
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return {{"mode", "raw"},
          {"processes", 1},
          {"steps", s.steps},
          {"seconds", seconds},
          {"steps_per_s", static_cast<double>(s.steps) / seconds},
          {"step_us", seconds * 1e6 / static_cast<double>(s.steps)}};
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  CLI::App app{"Time the digits training step with accel or raw LibTorch"};
  app.add_option("--mode", s.mode, "accel or raw")->check(CLI::IsMember({"accel", "raw"}));
  app.add_option("--data", s.data, "digits.bin written by export_digits.py")->required();
  app.add_option("--steps", s.steps, "Timed steps")->check(CLI::PositiveNumber);
  app.add_option("--warmup", s.warmup, "Untimed steps first");
  app.add_option("--batch_size", s.batch_size, "Batch size per process")
      ->check(CLI::PositiveNumber);
  app.add_option("--threads", s.threads, "torch intra-op threads per process")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  torch::set_num_threads(s.threads);
  const auto result = s.mode == "raw" ? run_raw(s) : run_accel(s);
  const char* rank = std::getenv("OMPI_COMM_WORLD_RANK");
  if (rank == nullptr || std::string(rank) == "0") std::cout << result.dump() << std::endl;
  return 0;
}
