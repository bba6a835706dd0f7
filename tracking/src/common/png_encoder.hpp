#pragma once
// accel::encode_png: an accel::Image (8-bit, height x width x channels, 1/3/4 channels) as PNG
// bytes, encoded with libpng. Used for TensorBoard's Summary.Image. Thread-safety: pure function.
#include <string>
#include <string_view>

#include "accel/tracking/values.hpp"

namespace accel {

// Throws accel::InvalidValue naming `what` and the shape when the image is empty or malformed,
// accel::TrackerError if libpng reports an error.
std::string encode_png(const Image& image, std::string_view what = "image");

}  // namespace accel
