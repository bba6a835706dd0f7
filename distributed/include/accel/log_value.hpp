#pragma once
// accel::LogValue: what Accelerator::log accepts for one key — any accel::Value (number, string,
// Image, Histogram, Table, ScalarGroup) or a torch::Tensor holding one number (0-d or one element).
// Tensors are turned into tracking values at the boundary (accel_tracking has no LibTorch): see
// Accelerator::log for when that happens. Images and histograms from tensors: accel::image(t) and
// accel::histogram(t) (these read the tensor back to the host at once).
#include <torch/types.h>

#include <concepts>
#include <initializer_list>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "accel/tracking/values.hpp"

namespace accel {

class LogValue {
 public:
  template <class T>
  requires std::constructible_from<Value, T&&> &&
      (!std::same_as<std::decay_t<T>, torch::Tensor>)LogValue(T&& value)
      : storage_(Value(std::forward<T>(value))) {}                 // NOLINT: implicit on purpose
  LogValue(torch::Tensor tensor) : storage_(std::move(tensor)) {}  // NOLINT: implicit on purpose

  bool is_tensor() const { return std::holds_alternative<torch::Tensor>(storage_); }
  const torch::Tensor* tensor() const { return std::get_if<torch::Tensor>(&storage_); }
  const Value* value() const { return std::get_if<Value>(&storage_); }

 private:
  std::variant<Value, torch::Tensor> storage_;
};

// Ordered key → LogValue: acc.log({{"train/loss", loss}, {"lr", 1e-3}}, step).
using LogValues = std::vector<std::pair<std::string, LogValue>>;

// An image from a tensor: [H, W] (grey), [H, W, C] or [C, H, W] with C in {1, 3, 4} (channels-first
// is detected when the first dimension is 1, 3 or 4 and the last is not). uint8 is taken as is;
// floating values are taken in [0, 1] and clamped. Throws accel::InvalidValue naming the shape.
Image image(const torch::Tensor& tensor);
// A histogram of a tensor's values (any shape and floating/integer dtype), binned by the trackers.
Histogram histogram(const torch::Tensor& tensor);

}  // namespace accel
