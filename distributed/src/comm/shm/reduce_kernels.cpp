// reduce_range (see reduce_kernels.hpp): a block of up to kBlock elements is accumulated in a small
// local array (in L1), one input at a time, then divided (average) and stored to every output: each inner loop is
// a plain vectorisable loop over restrict pointers, whatever the number of ranks.
#include "comm/shm/reduce_kernels.hpp"

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>

namespace accel::detail {
namespace {

constexpr std::size_t kBlock = 1024;

struct Sum {
  template <typename A>
  A operator()(A a, A b) const {
    return a + b;
  }
};
struct Max {
  template <typename A>
  A operator()(A a, A b) const {
    return std::max(a, b);
  }
};
struct Min {
  template <typename A>
  A operator()(A a, A b) const {
    return std::min(a, b);
  }
};
struct Product {
  template <typename A>
  A operator()(A a, A b) const {
    return a * b;
  }
};

template <typename T, typename Acc, typename Op>
void reduce_typed(Op op, const std::vector<const void*>& inputs, const std::vector<void*>& outputs,
                  std::size_t begin, std::size_t end, double divisor_value) {
  const Acc divisor = static_cast<Acc>(divisor_value);
  const bool divided = divisor_value != 1.0;
  Acc acc[kBlock];
  for (std::size_t block = begin; block < end; block += kBlock) {
    const std::size_t n = std::min(kBlock, end - block);
    {
      const T* __restrict in = static_cast<const T*>(inputs[0]) + block;
      for (std::size_t j = 0; j < n; ++j) acc[j] = static_cast<Acc>(in[j]);
    }
    for (std::size_t p = 1; p < inputs.size(); ++p) {
      const T* __restrict in = static_cast<const T*>(inputs[p]) + block;
      for (std::size_t j = 0; j < n; ++j) acc[j] = op(acc[j], static_cast<Acc>(in[j]));
    }
    if (divided) {
      for (std::size_t j = 0; j < n; ++j) acc[j] /= divisor;
    }
    for (void* output : outputs) {
      T* __restrict out = static_cast<T*>(output) + block;
      for (std::size_t j = 0; j < n; ++j) out[j] = static_cast<T>(acc[j]);
    }
  }
}

template <typename T, typename Acc>
void reduce_op(ElementOp op, const std::vector<const void*>& inputs,
               const std::vector<void*>& outputs, std::size_t begin, std::size_t end,
               double divisor) {
  switch (op) {
    case ElementOp::kSum:
      return reduce_typed<T, Acc>(Sum{}, inputs, outputs, begin, end, divisor);
    case ElementOp::kMax:
      return reduce_typed<T, Acc>(Max{}, inputs, outputs, begin, end, divisor);
    case ElementOp::kMin:
      return reduce_typed<T, Acc>(Min{}, inputs, outputs, begin, end, divisor);
    case ElementOp::kProduct:
      return reduce_typed<T, Acc>(Product{}, inputs, outputs, begin, end, divisor);
  }
}

}  // namespace

void reduce_range(ElementType type, ElementOp op, const std::vector<const void*>& inputs,
                  const std::vector<void*>& outputs, std::size_t begin, std::size_t end,
                  double divisor) {
  if (begin >= end || inputs.empty()) return;
  switch (type) {
    case ElementType::kFloat32:
      return reduce_op<float, float>(op, inputs, outputs, begin, end, divisor);
    case ElementType::kFloat64:
      return reduce_op<double, double>(op, inputs, outputs, begin, end, divisor);
    case ElementType::kFloat16:
      return reduce_op<c10::Half, float>(op, inputs, outputs, begin, end, divisor);
    case ElementType::kBFloat16:
      return reduce_op<c10::BFloat16, float>(op, inputs, outputs, begin, end, divisor);
  }
}

}  // namespace accel::detail
