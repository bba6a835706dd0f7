// GradScaler (skip on inf, back-off, growth, recovery, state round trip) and the autocast guard.
#include "accel/mixed_precision.hpp"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include "accel/tracking/errors.hpp"
// After LibTorch: c10 defines a one-argument CHECK that would replace Catch's.
#include <catch2/catch.hpp>

using accel::GradScaler;
using accel::GradScalerOptions;

namespace {
struct OneParameter {
  torch::Tensor weight = torch::ones({3}, torch::requires_grad());
  torch::optim::SGD sgd{std::vector<torch::Tensor>{weight}, torch::optim::SGDOptions(0.1)};
};
}  // namespace

TEST_CASE("GradScaler scales the loss and unscales the gradients before the step",
          "[mixed_precision]") {
  OneParameter p;
  GradScaler scaler({.init_scale = 1024.0}, torch::kCPU);
  auto loss = (p.weight * 2).sum();
  auto scaled = scaler.scale(loss);
  CHECK(scaled.item<double>() == Approx(6.0 * 1024));
  scaled.backward();
  CHECK(p.weight.grad()[0].item<double>() == Approx(2.0 * 1024));
  CHECK(scaler.step(p.sgd));
  // unscaled gradient 2 → weight 1 - 0.1 * 2
  CHECK(p.weight[0].item<double>() == Approx(0.8));
  scaler.update();
  CHECK(scaler.get_scale() == 1024.0);
  CHECK_FALSE(scaler.last_step_skipped());
}

TEST_CASE("GradScaler skips the step on inf, backs off, and recovers", "[mixed_precision]") {
  OneParameter p;
  GradScaler scaler(
      {.init_scale = 1024.0, .growth_factor = 2.0, .backoff_factor = 0.5, .growth_interval = 2},
      torch::kCPU);
  // An overflowing step: the gradient holds inf.
  p.weight.mutable_grad() = torch::tensor({1.0f, std::numeric_limits<float>::infinity(), 1.0f});
  const auto before = p.weight.detach().clone();
  CHECK_FALSE(scaler.step(p.sgd));
  scaler.update();
  CHECK(scaler.last_step_skipped());
  CHECK(scaler.skipped_steps() == 1);
  CHECK(torch::equal(p.weight.detach(), before));  // the weights did not move
  CHECK(scaler.get_scale() == 512.0);              // backed off

  // Two clean steps: the optimizer steps again and the scale grows after growth_interval = 2.
  for (int i = 0; i < 2; ++i) {
    p.sgd.zero_grad();
    scaler.scale((p.weight * 1.0).sum()).backward();
    CHECK(scaler.step(p.sgd));
    scaler.update();
    CHECK_FALSE(scaler.last_step_skipped());
  }
  CHECK(scaler.get_scale() == 1024.0);
  CHECK(p.weight[0].item<double>() == Approx(1.0 - 0.2));
  CHECK(scaler.skipped_steps() == 1);
}

TEST_CASE("GradScaler detects NaN too, and refuses a second unscale_", "[mixed_precision]") {
  OneParameter p;
  GradScaler scaler({.init_scale = 8.0}, torch::kCPU);
  p.weight.mutable_grad() = torch::tensor({1.0f, std::nanf(""), 1.0f});
  scaler.unscale_(p.sgd);
  CHECK_THROWS_AS(scaler.unscale_(p.sgd), accel::UsageError);
  CHECK_FALSE(scaler.step(p.sgd));
  scaler.update();
  CHECK(scaler.get_scale() == 4.0);
}

TEST_CASE("GradScaler state survives save and load", "[mixed_precision]") {
  OneParameter p;
  GradScaler scaler({.init_scale = 256.0}, torch::kCPU);
  p.weight.mutable_grad() = torch::full({3}, std::numeric_limits<float>::infinity());
  scaler.step(p.sgd);
  scaler.update();
  torch::serialize::OutputArchive out;
  scaler.save(out);
  std::ostringstream bytes;
  out.save_to(bytes);
  GradScaler restored({.init_scale = 1.0}, torch::kCPU);
  torch::serialize::InputArchive in;
  std::istringstream input(bytes.str());
  in.load_from(input);
  restored.load(in);
  CHECK(restored.get_scale() == 128.0);
  CHECK(restored.skipped_steps() == 1);
}

TEST_CASE("A disabled GradScaler is the identity", "[mixed_precision]") {
  OneParameter p;
  GradScaler scaler({.enabled = false}, torch::kCPU);
  auto loss = p.weight.sum();
  CHECK(scaler.scale(loss).item<double>() == 3.0);
  CHECK(scaler.get_scale() == 1.0);
}

TEST_CASE("GradScaler options are validated", "[mixed_precision]") {
  CHECK_THROWS_AS(GradScaler({.init_scale = 0.0}, torch::kCPU), accel::InvalidValue);
  CHECK_THROWS_AS(GradScaler({.growth_factor = 1.0}, torch::kCPU), accel::InvalidValue);
  CHECK_THROWS_AS(GradScaler({.backoff_factor = 1.5}, torch::kCPU), accel::InvalidValue);
  CHECK_THROWS_AS(GradScaler({.growth_interval = 0}, torch::kCPU), accel::InvalidValue);
}

TEST_CASE("bf16 autocast on the CPU runs matmuls in bf16 and restores the previous state",
          "[mixed_precision]") {
  auto a = torch::randn({4, 8});
  auto b = torch::randn({8, 2});
  CHECK(torch::mm(a, b).scalar_type() == torch::kFloat32);
  {
    accel::AutocastGuard guard(c10::DeviceType::CPU, c10::ScalarType::BFloat16);
    CHECK(at::autocast::is_autocast_enabled(c10::DeviceType::CPU));
    auto product = torch::mm(a, b);
    CHECK(product.scalar_type() == torch::kBFloat16);
    // A linear layer too (what models use).
    torch::nn::Linear linear(8, 2);
    CHECK(linear->forward(a).scalar_type() == torch::kBFloat16);
    {
      accel::AutocastGuard nested(c10::DeviceType::CPU, c10::ScalarType::BFloat16);
      CHECK(torch::mm(a, b).scalar_type() == torch::kBFloat16);
    }
    CHECK(at::autocast::is_autocast_enabled(c10::DeviceType::CPU));
  }
  CHECK_FALSE(at::autocast::is_autocast_enabled(c10::DeviceType::CPU));
  CHECK(torch::mm(a, b).scalar_type() == torch::kFloat32);
}

TEST_CASE("A guard without dtype changes nothing", "[mixed_precision]") {
  accel::AutocastGuard guard(c10::DeviceType::CPU, std::nullopt);
  CHECK((torch::mm(torch::randn({2, 2}), torch::randn({2, 2})).scalar_type() == torch::kFloat32));
}

TEST_CASE("mixed_precision values are parsed with clear errors", "[mixed_precision]") {
  CHECK(accel::parse_mixed_precision("BF16") == accel::MixedPrecision::bf16);
  CHECK(accel::parse_mixed_precision("no") == accel::MixedPrecision::no);
  CHECK(accel::parse_mixed_precision("fp16") == accel::MixedPrecision::fp16);
  try {
    accel::parse_mixed_precision("fp8");
    FAIL("no exception");
  } catch (const accel::InvalidValue& e) {
    CHECK_THAT(e.what(), Catch::Contains("'fp8'") && Catch::Contains("bf16"));
  }
  CHECK_THROWS_AS(accel::autocast_dtype(accel::MixedPrecision::fp16, c10::DeviceType::CPU),
                  accel::InvalidValue);
  CHECK(accel::autocast_dtype(accel::MixedPrecision::bf16, c10::DeviceType::CPU) ==
        c10::ScalarType::BFloat16);
  CHECK_FALSE(accel::autocast_dtype(accel::MixedPrecision::no, c10::DeviceType::CPU).has_value());
}
