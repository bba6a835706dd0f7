#pragma once
// Element-wise reduction across ranks' buffers, for the shared-memory allreduce (shm_allreduce.hpp).
// reduce_range(type, op, inputs, outputs, begin, end, divisor): for every i in [begin, end),
//   r = op(inputs[0][i], ..., inputs[n-1][i])   (accumulated in float for fp16/bf16, else in the type)
//   r = r / divisor                              (only when divisor != 1: the average)
//   outputs[k][i] = r for every k
// inputs and outputs point at element 0 of each buffer. Inputs and outputs may be the same buffers (each
// element is read before it is written); distinct ranks' ranges must not share a cache line for speed,
// not for correctness. Built without LibTorch and at -O3 so the loops vectorise.
#include <cstddef>
#include <vector>

namespace accel::detail {

enum class ElementType { kFloat32, kFloat64, kFloat16, kBFloat16 };
enum class ElementOp { kSum, kMax, kMin, kProduct };

void reduce_range(ElementType type, ElementOp op, const std::vector<const void*>& inputs,
                  const std::vector<void*>& outputs, std::size_t begin, std::size_t end,
                  double divisor);

}  // namespace accel::detail
