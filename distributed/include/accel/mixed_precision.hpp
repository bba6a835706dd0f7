#pragma once
// Mixed precision: the autocast guard and the fp16 gradient scaler.
//
// AutocastGuard turns ATen's autocast on for one device type for the lifetime of the guard (Python's
// `torch.autocast(device_type, dtype)`): bf16 on CPU and CUDA, fp16 on CUDA. Nesting works; the cast
// cache is cleared when the outermost guard ends. Autocast state is thread-local: a guard affects only
// the thread that created it, and must be destroyed on that thread.
//
// GradScaler is PyTorch's `torch.amp.GradScaler` in C++, built on the fused ATen kernels
// `_amp_foreach_non_finite_check_and_unscale_` and `_amp_update_scale_`: scale the loss, unscale the
// gradients once per optimizer step, skip the step when a gradient is inf/NaN, then grow or back off
// the scale. Used from the training thread only.
#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>
#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <string_view>
#include <unordered_map>

namespace accel {

enum class MixedPrecision { no, fp16, bf16 };

// "no" | "fp16" | "bf16" (case-insensitive). Throws accel::InvalidValue naming the value and the choices.
MixedPrecision parse_mixed_precision(std::string_view text);
std::string_view to_string(MixedPrecision precision);

// The autocast dtype for `precision` on `device` (nullopt for "no"). Throws accel::InvalidValue for fp16
// on a CPU device (LibTorch's CPU fp16 autocast is slow and unsupported by accel: use bf16 there).
std::optional<c10::ScalarType> autocast_dtype(MixedPrecision precision, c10::DeviceType device);

// RAII: autocast to `dtype` on `device` while alive. dtype nullopt = a guard that changes nothing
// (so `auto amp = acc.autocast();` is valid whatever the configured precision). Not copyable or movable.
class AutocastGuard {
 public:
  AutocastGuard(c10::DeviceType device, std::optional<c10::ScalarType> dtype,
                bool cache_enabled = true);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  c10::DeviceType device_;
  bool active_ = false;
  bool previous_enabled_ = false;
  c10::ScalarType previous_dtype_ = c10::ScalarType::Undefined;
  bool previous_cache_enabled_ = true;
};

struct GradScalerOptions {
  double init_scale = 65536.0;
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
  bool enabled = true;  // a disabled scaler is the identity and never skips a step
};

class GradScaler {
 public:
  // Throws accel::InvalidValue for a non-positive scale, growth_factor <= 1, backoff_factor not in
  // (0, 1) or growth_interval < 1.
  GradScaler(GradScalerOptions options, torch::Device device);

  bool is_enabled() const { return options_.enabled; }
  // loss * scale (the loss unchanged when disabled). No device sync.
  torch::Tensor scale(const torch::Tensor& loss);
  // Divides the optimizer's gradients by the scale in place and records whether any was inf/NaN.
  // At most once per optimizer between two update() calls; a second call throws accel::UsageError.
  void unscale_(torch::optim::Optimizer& optimizer);
  // Unscales (if not done yet) and runs optimizer.step() unless a gradient was inf/NaN.
  // Returns true when the step ran. Reads one value back from the device (the found-inf flag).
  bool step(torch::optim::Optimizer& optimizer);
  // Backs the scale off after an inf/NaN step, or grows it after growth_interval clean steps.
  void update();

  double get_scale() const;  // reads the scale back (device sync on CUDA)
  bool last_step_skipped() const { return last_step_skipped_; }
  int64_t skipped_steps() const { return skipped_steps_; }

  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

 private:
  struct PerOptimizer {
    bool unscaled = false;
    bool stepped = false;
    torch::Tensor found_inf;
  };
  PerOptimizer& state_for(torch::optim::Optimizer& optimizer);

  GradScalerOptions options_;
  torch::Device device_;
  torch::Tensor scale_;           // float32 [1] on device_
  torch::Tensor growth_tracker_;  // int32 [1] on device_
  std::unordered_map<const torch::optim::Optimizer*, PerOptimizer> per_optimizer_;
  bool last_step_skipped_ = false;
  int64_t skipped_steps_ = 0;
};

}  // namespace accel
