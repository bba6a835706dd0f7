#include "accel/scheduler.hpp"

#include <fmt/format.h>

#include "accel/tracking/errors.hpp"

namespace accel {

LRScheduler::LRScheduler(torch::optim::Optimizer& optimizer) : optimizer_(optimizer) {
  for (const auto& group : optimizer_.param_groups()) base_lrs_.push_back(group.options().get_lr());
}

void LRScheduler::apply() {
  const double f = factor(step_count_);
  auto& groups = optimizer_.param_groups();
  for (std::size_t i = 0; i < groups.size() && i < base_lrs_.size(); ++i) {
    groups[i].options().set_lr(base_lrs_[i] * f);
  }
}

void LRScheduler::advance() {
  ++step_count_;
  apply();
}

void LRScheduler::step() {
  if (!preparation_ || !preparation_->step_with_optimizer) {
    advance();
    return;
  }
  if (preparation_->gradient_state && !preparation_->gradient_state->sync_gradients) return;
  if (preparation_->optimizer_step_was_skipped && preparation_->optimizer_step_was_skipped())
    return;
  const int times = preparation_->split_batches ? 1 : preparation_->num_processes;
  for (int i = 0; i < times; ++i) advance();
}

std::vector<double> LRScheduler::get_last_lr() const {
  std::vector<double> lrs;
  for (const auto& group : optimizer_.param_groups()) lrs.push_back(group.options().get_lr());
  return lrs;
}

void LRScheduler::save(torch::serialize::OutputArchive& archive) const {
  archive.write("step_count", torch::tensor(step_count_, torch::kInt64));
  archive.write("base_lrs", torch::tensor(base_lrs_, torch::kFloat64));
}

void LRScheduler::load(torch::serialize::InputArchive& archive) {
  torch::Tensor step_count, base_lrs;
  archive.read("step_count", step_count);
  archive.read("base_lrs", base_lrs);
  step_count_ = step_count.item<int64_t>();
  base_lrs_.assign(base_lrs.data_ptr<double>(), base_lrs.data_ptr<double>() + base_lrs.numel());
  apply();
}

LambdaLR::LambdaLR(torch::optim::Optimizer& optimizer, std::function<double(int64_t)> lambda)
    : LRScheduler(optimizer), lambda_(std::move(lambda)) {
  if (!lambda_) throw InvalidValue("LambdaLR needs a schedule function, got an empty one");
  apply();
}

std::function<double(int64_t)> linear_schedule_with_warmup(int64_t warmup_steps,
                                                           int64_t total_steps) {
  if (warmup_steps < 0 || total_steps < 1 || warmup_steps > total_steps) {
    throw InvalidValue(fmt::format(
        "linear_schedule_with_warmup: need 0 <= warmup_steps <= total_steps and total_steps >= 1, "
        "got warmup_steps {} and total_steps {}",
        warmup_steps, total_steps));
  }
  return [warmup_steps, total_steps](int64_t step) {
    if (step < warmup_steps)
      return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
    return std::max(0.0, static_cast<double>(total_steps - step) /
                             static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps)));
  };
}

}  // namespace accel
