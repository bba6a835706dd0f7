// OperationLabel (see operation_label.hpp).
#include "comm/operation_label.hpp"

#include <fmt/format.h>

namespace accel::detail {

std::string human_bytes(std::uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  if (bytes < (1u << 20)) return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / 1024.0);
  if (bytes < (1u << 30)) return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
  return fmt::format("{:.2f} GiB", static_cast<double>(bytes) / (1 << 30));
}

OperationLabel OperationLabel::of_tensor(const char* kind, at::ScalarType dtype,
                                         at::IntArrayRef sizes, std::uint64_t bytes) {
  OperationLabel label;
  label.kind = kind;
  label.subject = Subject::kTensor;
  label.dtype = dtype;
  label.dims = static_cast<int>(sizes.size());
  for (int d = 0; d < label.dims && d < kMaxDims; ++d) label.sizes[d] = sizes[d];
  label.count = bytes;
  return label;
}

std::string OperationLabel::text() const {
  std::string out = kind;
  if (op) out += fmt::format("({})", to_string(*op));
  if (root >= 0) out += fmt::format("(root {})", root);
  switch (subject) {
    case Subject::kNone:
      break;
    case Subject::kTensor: {
      std::string shape = "[";
      for (int d = 0; d < dims && d < kMaxDims; ++d)
        shape += (d == 0 ? "" : ", ") + std::to_string(sizes[d]);
      if (dims > kMaxDims) shape += ", ...";
      out += fmt::format(" of {} {}] ({})", c10::toString(dtype), shape, human_bytes(count));
      break;
    }
    case Subject::kObjectBytes:
      out += " of " + human_bytes(count);
      break;
    case Subject::kUnknownObjectBytes:
      out += " of ?";
      break;
    case Subject::kElements:
      out += fmt::format(" of {} {}", count, c10::toString(dtype));
      break;
  }
  return out;
}

}  // namespace accel::detail
