#pragma once
// OperationLabel: what a queued collective is, kept as plain values and turned into text only when
// someone reads it (a timeout report, a peer's progress query, an error). Building the text on every
// call would cost more than a small allreduce itself.
// text() gives e.g. "allreduce(sum) of float32 [256] (1.0 KiB)", "broadcast(root 0) of int64 [3] (24 B)",
// "gather_object(root 1) of 12 B", "barrier".
#include <c10/core/ScalarType.h>
#include <c10/util/ArrayRef.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "accel/process_group.hpp"

namespace accel::detail {

struct OperationLabel {
  static constexpr int kMaxDims = 8;  // dimensions kept; more are shown as "..."

  const char* kind = "";  // static text: "allreduce", "broadcast", "barrier", ...
  std::optional<ReduceOp> op;
  int root = -1;  // rooted operations; -1: none

  // One of: a tensor, a byte count of an object ("?" when unknown on this rank), an element count.
  enum class Subject {
    kNone,
    kTensor,
    kObjectBytes,
    kUnknownObjectBytes,
    kElements
  } subject = Subject::kNone;
  at::ScalarType dtype = at::kFloat;
  int dims = 0;
  std::array<std::int64_t, kMaxDims> sizes{};
  std::uint64_t count = 0;  // tensor: bytes; object: bytes; elements: elements

  static OperationLabel of_tensor(const char* kind, at::ScalarType dtype, at::IntArrayRef sizes,
                                  std::uint64_t bytes);
  std::string text() const;
};

// "1.0 KiB", "512 B", "2.00 GiB".
std::string human_bytes(std::uint64_t bytes);

}  // namespace accel::detail
