#include "accel/mixed_precision.hpp"

#include <ATen/autocast_mode.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <string>

#include "accel/tracking/errors.hpp"

namespace accel {

MixedPrecision parse_mixed_precision(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "no" || lower.empty()) return MixedPrecision::no;
  if (lower == "fp16") return MixedPrecision::fp16;
  if (lower == "bf16") return MixedPrecision::bf16;
  throw InvalidValue(fmt::format(
      "mixed_precision '{}' is not supported: choose one of 'no', 'fp16', 'bf16' "
      "(option mixed_precision, flag --mixed_precision or env ACCELERATE_MIXED_PRECISION)",
      text));
}

std::string_view to_string(MixedPrecision precision) {
  switch (precision) {
    case MixedPrecision::fp16:
      return "fp16";
    case MixedPrecision::bf16:
      return "bf16";
    case MixedPrecision::no:
      break;
  }
  return "no";
}

std::optional<c10::ScalarType> autocast_dtype(MixedPrecision precision, c10::DeviceType device) {
  switch (precision) {
    case MixedPrecision::no:
      return std::nullopt;
    case MixedPrecision::bf16:
      return c10::ScalarType::BFloat16;
    case MixedPrecision::fp16:
      if (device != c10::DeviceType::CUDA) {
        throw InvalidValue(
            "mixed_precision 'fp16' needs a CUDA device, but this process runs on the CPU: "
            "use 'bf16' on the CPU, or 'no'");
      }
      return c10::ScalarType::Half;
  }
  return std::nullopt;
}

AutocastGuard::AutocastGuard(c10::DeviceType device, std::optional<c10::ScalarType> dtype,
                             bool cache_enabled)
    : device_(device) {
  if (!dtype) return;
  active_ = true;
  previous_enabled_ = at::autocast::is_autocast_enabled(device_);
  previous_dtype_ = at::autocast::get_autocast_dtype(device_);
  previous_cache_enabled_ = at::autocast::is_autocast_cache_enabled();
  at::autocast::set_autocast_enabled(device_, true);
  at::autocast::set_autocast_dtype(device_, *dtype);
  at::autocast::increment_nesting();
  at::autocast::set_autocast_cache_enabled(cache_enabled);
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(device_, previous_enabled_);
  at::autocast::set_autocast_dtype(device_, previous_dtype_);
  at::autocast::set_autocast_cache_enabled(previous_cache_enabled_);
}

GradScaler::GradScaler(GradScalerOptions options, torch::Device device)
    : options_(options), device_(device) {
  if (!(options_.init_scale > 0.0)) {
    throw InvalidValue(
        fmt::format("GradScaler init_scale must be > 0, got {}", options_.init_scale));
  }
  if (!(options_.growth_factor > 1.0)) {
    throw InvalidValue(
        fmt::format("GradScaler growth_factor must be > 1, got {}", options_.growth_factor));
  }
  if (!(options_.backoff_factor > 0.0 && options_.backoff_factor < 1.0)) {
    throw InvalidValue(fmt::format("GradScaler backoff_factor must be in (0, 1), got {}",
                                   options_.backoff_factor));
  }
  if (options_.growth_interval < 1) {
    throw InvalidValue(
        fmt::format("GradScaler growth_interval must be >= 1, got {}", options_.growth_interval));
  }
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(device_);
  scale_ = torch::full({}, options_.init_scale, f32);
  growth_tracker_ = torch::zeros({}, f32.dtype(torch::kInt32));
}

torch::Tensor GradScaler::scale(const torch::Tensor& loss) {
  if (!options_.enabled) return loss;
  return loss * scale_.to(loss.device(), /*non_blocking=*/true);
}

GradScaler::PerOptimizer& GradScaler::state_for(torch::optim::Optimizer& optimizer) {
  auto& state = per_optimizer_[&optimizer];
  if (!state.found_inf.defined()) {
    state.found_inf =
        torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat32).device(device_));
  }
  return state;
}

void GradScaler::unscale_(torch::optim::Optimizer& optimizer) {
  if (!options_.enabled) return;
  auto& state = state_for(optimizer);
  if (state.unscaled) {
    throw UsageError(
        "GradScaler::unscale_ was already called for this optimizer since the last update(): "
        "unscale the gradients once per optimizer step");
  }
  if (state.stepped) {
    throw UsageError("GradScaler::unscale_ called after step(): call update() first");
  }
  auto inv_scale = scale_.to(torch::kFloat64).reciprocal().to(torch::kFloat32);
  // The fused kernel wants one dtype per call (as torch.amp.GradScaler groups them).
  std::map<c10::ScalarType, std::vector<torch::Tensor>> grads_by_dtype;
  for (auto& group : optimizer.param_groups()) {
    for (auto& param : group.params()) {
      auto grad = param.mutable_grad();
      if (!grad.defined()) continue;
      if (grad.is_sparse()) {
        throw InvalidValue("GradScaler does not support sparse gradients");
      }
      if (grad.device() != device_) {
        throw InvalidValue(
            fmt::format("GradScaler on {} got a gradient on {}: move the model to the "
                        "accelerator's device before preparing it",
                        device_.str(), grad.device().str()));
      }
      grads_by_dtype[grad.scalar_type()].push_back(grad);
    }
  }
  for (auto& [dtype, grads] : grads_by_dtype) {
    at::_amp_foreach_non_finite_check_and_unscale_(grads, state.found_inf, inv_scale);
  }
  state.unscaled = true;
}

bool GradScaler::step(torch::optim::Optimizer& optimizer) {
  if (!options_.enabled) {
    optimizer.step();
    last_step_skipped_ = false;
    return true;
  }
  auto& state = state_for(optimizer);
  if (state.stepped) {
    throw UsageError("GradScaler::step called twice for one optimizer without update() in between");
  }
  if (!state.unscaled) unscale_(optimizer);
  const bool found_inf = state.found_inf.item<float>() != 0.0f;
  state.stepped = true;
  last_step_skipped_ = found_inf;
  if (found_inf) {
    ++skipped_steps_;
    return false;
  }
  optimizer.step();
  return true;
}

void GradScaler::update() {
  if (!options_.enabled) return;
  torch::Tensor found_inf_combined;
  for (auto& [optimizer, state] : per_optimizer_) {
    if (!state.unscaled && !state.stepped) continue;
    found_inf_combined = found_inf_combined.defined() ? found_inf_combined + state.found_inf
                                                      : state.found_inf.clone();
  }
  if (found_inf_combined.defined()) {
    at::_amp_update_scale_(scale_, growth_tracker_, found_inf_combined, options_.growth_factor,
                           options_.backoff_factor, options_.growth_interval);
  }
  per_optimizer_.clear();
}

double GradScaler::get_scale() const {
  return options_.enabled ? scale_.item<double>() : 1.0;
}

void GradScaler::save(torch::serialize::OutputArchive& archive) const {
  archive.write("scale", scale_.cpu());
  archive.write("growth_tracker", growth_tracker_.cpu());
  archive.write("skipped_steps", torch::tensor(skipped_steps_, torch::kInt64));
}

void GradScaler::load(torch::serialize::InputArchive& archive) {
  torch::Tensor scale, growth_tracker, skipped;
  archive.read("scale", scale);
  archive.read("growth_tracker", growth_tracker);
  archive.read("skipped_steps", skipped);
  scale_ = scale.to(device_, torch::kFloat32).reshape({});
  growth_tracker_ = growth_tracker.to(device_, torch::kInt32).reshape({});
  skipped_steps_ = skipped.item<int64_t>();
  per_optimizer_.clear();
}

}  // namespace accel
