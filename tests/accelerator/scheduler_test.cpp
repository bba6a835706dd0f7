// LRScheduler / LambdaLR and the Accelerate stepping rules after prepare.
#include "accel/scheduler.hpp"

#include <torch/torch.h>

#include "accel/tracking/errors.hpp"
// After LibTorch: c10 defines a one-argument CHECK that would replace Catch's.
#include <catch2/catch.hpp>

namespace {
struct Setup {
  torch::Tensor weight = torch::zeros({2}, torch::requires_grad());
  torch::optim::SGD sgd{std::vector<torch::Tensor>{weight}, torch::optim::SGDOptions(1.0)};
};
}  // namespace

TEST_CASE("LambdaLR sets lr = base_lr * lambda(step)", "[scheduler]") {
  Setup s;
  accel::LambdaLR schedule(s.sgd, [](int64_t step) { return 1.0 / static_cast<double>(step + 1); });
  CHECK(schedule.get_last_lr()[0] == 1.0);
  schedule.step();
  CHECK(schedule.get_last_lr()[0] == 0.5);
  CHECK(s.sgd.param_groups()[0].options().get_lr() == 0.5);
  CHECK_THROWS_AS(accel::LambdaLR(s.sgd, nullptr), accel::InvalidValue);
}

TEST_CASE("linear_schedule_with_warmup warms up then decays to zero", "[scheduler]") {
  auto f = accel::linear_schedule_with_warmup(2, 10);
  CHECK(f(0) == 0.0);
  CHECK(f(1) == 0.5);
  CHECK(f(2) == 1.0);
  CHECK(f(6) == 0.5);
  CHECK(f(10) == 0.0);
  CHECK(f(12) == 0.0);
  CHECK_THROWS_AS(accel::linear_schedule_with_warmup(5, 3), accel::InvalidValue);
}

TEST_CASE("A prepared scheduler follows the optimizer steps like Accelerate", "[scheduler]") {
  Setup s;
  accel::LambdaLR schedule(s.sgd, [](int64_t step) { return static_cast<double>(step); });
  auto state = std::make_shared<accel::GradientState>();
  bool skipped = false;
  schedule.prepare({.gradient_state = state,
                    .optimizer_step_was_skipped = [&] { return skipped; },
                    .num_processes = 3});
  state->sync_gradients = false;  // accumulating: nothing
  schedule.step();
  CHECK(schedule.step_count() == 0);
  state->sync_gradients = true;  // a real step on 3 processes: three steps of the schedule
  schedule.step();
  CHECK(schedule.step_count() == 3);
  skipped = true;  // the fp16 scaler skipped the optimizer step: nothing
  schedule.step();
  CHECK(schedule.step_count() == 3);
  CHECK(schedule.get_last_lr()[0] == 3.0);

  accel::LambdaLR split(s.sgd, [](int64_t step) { return static_cast<double>(step); });
  split.prepare({.gradient_state = state, .num_processes = 3, .split_batches = true});
  split.step();
  CHECK(split.step_count() == 1);
}

TEST_CASE("A scheduler's state round-trips and re-applies the lr", "[scheduler]") {
  Setup s;
  accel::LambdaLR schedule(s.sgd, [](int64_t step) { return 0.1 * static_cast<double>(step); });
  for (int i = 0; i < 4; ++i) schedule.step();
  torch::serialize::OutputArchive out;
  schedule.save(out);
  std::ostringstream bytes;
  out.save_to(bytes);
  Setup t;
  accel::LambdaLR restored(t.sgd, [](int64_t step) { return 0.1 * static_cast<double>(step); });
  torch::serialize::InputArchive in;
  std::istringstream input(bytes.str());
  in.load_from(input);
  restored.load(in);
  CHECK(restored.step_count() == 4);
  CHECK(t.sgd.param_groups()[0].options().get_lr() == Approx(0.4));
}
