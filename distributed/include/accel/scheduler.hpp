#pragma once
// Learning-rate schedules whose state can be checkpointed (LibTorch's torch::optim::LRScheduler keeps
// its step count private, so it cannot be saved and restored).
//
// LRScheduler sets every param group's lr to base_lr * factor(step_count) on each step(), like
// PyTorch's LambdaLR. After Accelerator::prepare, step() follows Accelerate's AcceleratedScheduler:
// it does nothing on accumulation micro-batches, nothing when the fp16 scaler skipped the optimizer
// step, and otherwise advances once per process (num_processes times) unless split_batches is set —
// so a schedule written for the single-process number of steps ends at the same point.
// Used from the training thread only.
#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "accel/gradient_state.hpp"

namespace accel {

class LRScheduler {
 public:
  // Records each param group's current lr as its base lr and applies factor(0).
  explicit LRScheduler(torch::optim::Optimizer& optimizer);
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  void step();
  std::vector<double> get_last_lr() const;
  int64_t step_count() const { return step_count_; }
  torch::optim::Optimizer& optimizer() { return optimizer_; }

  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

  // Set by Accelerator::prepare (see the header comment).
  struct Preparation {
    std::shared_ptr<GradientState> gradient_state{};
    std::function<bool()> optimizer_step_was_skipped{};  // the fp16 scaler skipped the last step
    int num_processes = 1;
    bool split_batches = false;
    bool step_with_optimizer = true;
  };
  void prepare(Preparation preparation) { preparation_ = std::move(preparation); }

 protected:
  // Multiplier of the base lr after `step` steps. Must be deterministic (it is recomputed on load).
  virtual double factor(int64_t step) const = 0;
  // Call at the end of a derived constructor so that factor(0) is applied.
  void apply();

 private:
  void advance();
  torch::optim::Optimizer& optimizer_;
  std::vector<double> base_lrs_;
  int64_t step_count_ = 0;
  std::optional<Preparation> preparation_;
};

// lr = base_lr * lambda(step). Throws accel::InvalidValue for an empty function.
class LambdaLR final : public LRScheduler {
 public:
  LambdaLR(torch::optim::Optimizer& optimizer, std::function<double(int64_t)> lambda);

 protected:
  double factor(int64_t step) const override { return lambda_(step); }

 private:
  std::function<double(int64_t)> lambda_;
};

// Linear warm-up from 0 over warmup_steps, then linear decay to 0 at total_steps (transformers'
// get_linear_schedule_with_warmup). Throws accel::InvalidValue unless 0 <= warmup_steps <= total_steps.
std::function<double(int64_t)> linear_schedule_with_warmup(int64_t warmup_steps,
                                                           int64_t total_steps);

}  // namespace accel
