#include "accel/log_value.hpp"

#include <fmt/format.h>

#include <sstream>

#include "accel/tracking/errors.hpp"

namespace accel {

namespace {
std::string shape_of(const torch::Tensor& tensor) {
  std::ostringstream out;
  out << tensor.sizes();
  return out.str();
}
bool is_channel_count(int64_t n) {
  return n == 1 || n == 3 || n == 4;
}
}  // namespace

Image image(const torch::Tensor& tensor) {
  if (!tensor.defined()) throw InvalidValue("accel::image: the tensor is undefined");
  torch::Tensor hwc = tensor.detach();
  if (hwc.dim() == 2) {
    hwc = hwc.unsqueeze(2);
  } else if (hwc.dim() == 3) {
    if (is_channel_count(hwc.size(0)) && !is_channel_count(hwc.size(2)))
      hwc = hwc.permute({1, 2, 0});
  } else {
    throw InvalidValue(
        fmt::format("accel::image: a tensor of shape {} is not an image: use [H, W], [H, W, C] "
                    "or [C, H, W] with C in 1, 3, 4",
                    shape_of(tensor)));
  }
  hwc = hwc.to(torch::kCPU).contiguous();
  const int64_t h = hwc.size(0), w = hwc.size(1), c = hwc.size(2);
  if (hwc.scalar_type() == torch::kUInt8) {
    return Image::from_uint8({hwc.data_ptr<uint8_t>(), static_cast<std::size_t>(hwc.numel())}, h, w,
                             c);
  }
  if (!hwc.is_floating_point()) {
    throw InvalidValue(
        fmt::format("accel::image: dtype {} is not supported: use uint8 (0..255) or a floating "
                    "type (0..1)",
                    std::string(c10::toString(hwc.scalar_type()))));
  }
  auto floats = hwc.to(torch::kFloat32).contiguous();
  return Image::from_float({floats.data_ptr<float>(), static_cast<std::size_t>(floats.numel())}, h,
                           w, c);
}

Histogram histogram(const torch::Tensor& tensor) {
  if (!tensor.defined()) throw InvalidValue("accel::histogram: the tensor is undefined");
  auto flat = tensor.detach().to(torch::kCPU, torch::kFloat64).contiguous().reshape({-1});
  const double* data = flat.data_ptr<double>();
  return Histogram::from_samples(std::vector<double>(data, data + flat.numel()));
}

}  // namespace accel
