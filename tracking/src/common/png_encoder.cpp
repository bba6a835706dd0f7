#include "common/png_encoder.hpp"

#include <fmt/format.h>
#include <png.h>

#include "accel/tracking/errors.hpp"

namespace accel {

std::string encode_png(const Image& image, std::string_view what) {
  image.validate(what);
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(image.width);
  png.height = static_cast<png_uint_32>(image.height);
  png.format = image.channels == 1   ? PNG_FORMAT_GRAY
               : image.channels == 3 ? PNG_FORMAT_RGB
                                     : PNG_FORMAT_RGBA;
  const auto row_stride = static_cast<png_int_32>(image.width * image.channels);

  // libpng's simplified API: first call sizes the output, second call writes it.
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&png, nullptr, &size, 0, image.pixels.data(), row_stride,
                                 nullptr)) {
    std::string reason = png.message;
    png_image_free(&png);
    throw TrackerError(fmt::format("{}: PNG encoding of a {}x{}x{} image failed: {}", what,
                                   image.height, image.width, image.channels, reason));
  }
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&png, out.data(), &size, 0, image.pixels.data(), row_stride,
                                 nullptr)) {
    std::string reason = png.message;
    png_image_free(&png);
    throw TrackerError(fmt::format("{}: PNG encoding of a {}x{}x{} image failed: {}", what,
                                   image.height, image.width, image.channels, reason));
  }
  out.resize(size);
  return out;
}

}  // namespace accel
