#include "accel/optimizer.hpp"

#include <fmt/format.h>

#include "accel/tracking/errors.hpp"

namespace accel {

AcceleratedOptimizer::AcceleratedOptimizer(torch::optim::Optimizer& optimizer,
                                           std::shared_ptr<GradientState> state, GradScaler* scaler)
    : optimizer_(optimizer), state_(std::move(state)), scaler_(scaler) {}

void AcceleratedOptimizer::step() {
  if (!state_->sync_gradients) return;
  ++state_->optimizer_steps;
  if (scaler_ && scaler_->is_enabled()) {
    step_was_skipped_ = !scaler_->step(optimizer_);
    scaler_->update();
  } else {
    optimizer_.step();
    step_was_skipped_ = false;
  }
}

void AcceleratedOptimizer::zero_grad(bool set_to_none) {
  if (!state_->sync_gradients) return;
  // Not torch::optim::Optimizer::zero_grad: it calls detach_() on every gradient, which fails on the
  // Reducer's gradients (views into its buckets). This is Python's Optimizer.zero_grad instead.
  torch::NoGradGuard no_grad;
  for (auto& group : optimizer_.param_groups()) {
    for (auto& param : group.params()) {
      auto& grad = param.mutable_grad();
      if (!grad.defined()) continue;
      if (set_to_none) {
        grad.reset();
        continue;
      }
      if (grad.grad_fn()) {
        grad = grad.detach();
      } else {
        grad.requires_grad_(false);
      }
      grad.zero_();
    }
  }
}

double AcceleratedOptimizer::lr(std::size_t group) const {
  const auto& groups = optimizer_.param_groups();
  if (group >= groups.size()) {
    throw InvalidValue(
        fmt::format("optimizer has {} param groups, asked for group {}", groups.size(), group));
  }
  return groups[group].options().get_lr();
}

}  // namespace accel
