#pragma once
// accel::AcceleratedOptimizer: what Accelerator::prepare returns for a torch optimizer (Accelerate's
// AcceleratedOptimizer). step() and zero_grad() act only on micro-batches that synchronise gradients,
// so the same loop body is right with and without gradient accumulation; with fp16 the step goes
// through the GradScaler (unscale, skip on inf/NaN, update the scale) and step_was_skipped() says so.
// The wrapped optimizer stays owned by the caller and must outlive the Accelerator.
// Used from the training thread only.
#include <torch/optim/optimizer.h>

#include <memory>

#include "accel/gradient_state.hpp"
#include "accel/mixed_precision.hpp"

namespace accel {

class AcceleratedOptimizer {
 public:
  AcceleratedOptimizer(torch::optim::Optimizer& optimizer, std::shared_ptr<GradientState> state,
                       GradScaler* scaler);
  AcceleratedOptimizer(const AcceleratedOptimizer&) = delete;
  AcceleratedOptimizer& operator=(const AcceleratedOptimizer&) = delete;

  void step();
  // Like Python's Optimizer.zero_grad (LibTorch's detach_()es gradients, which the Reducer's bucket
  // views do not allow: always zero through this wrapper). set_to_none = false keeps the gradients
  // as bucket views and saves the Reducer a copy per step.
  void zero_grad(bool set_to_none = true);
  bool step_was_skipped() const { return step_was_skipped_; }
  torch::optim::Optimizer& optimizer() { return optimizer_; }
  const torch::optim::Optimizer& optimizer() const { return optimizer_; }
  // The lr of param group `group` (0 by default).
  double lr(std::size_t group = 0) const;

 private:
  torch::optim::Optimizer& optimizer_;
  std::shared_ptr<GradientState> state_;
  GradScaler* scaler_;
  bool step_was_skipped_ = false;
};

}  // namespace accel
