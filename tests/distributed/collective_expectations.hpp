#pragma once
// What a collective should produce, computed locally: every rank's deterministic contribution, the
// expected reduction of all of them, and a comparison with a tolerance for fp16/bf16; and the
// MpiGroup the MPI tests share.
// Include after torch_catch.hpp.
#include <torch/torch.h>

#include "accel/mpi_group.hpp"
#include "accel/process_group.hpp"

namespace accel::test {

// The MpiGroup of this process over every rank, created on first use and kept until exit.
inline MpiGroup& world_group() {
  static MpiGroup instance;
  return instance;
}

// What rank r contributes: small positive values (products stay exact enough in fp16/bf16).
inline at::Tensor contribution(int r, at::IntArrayRef shape, at::ScalarType type) {
  const std::int64_t n = c10::multiply_integers(shape);
  at::Tensor values = (torch::arange(n, torch::kFloat64).remainder(5) + 1 + r).reshape(shape);
  if (r % 2 == 1) values = values.neg().add(7);  // mix orders so max/min differ from the last rank
  return values.to(type);
}

// op over the contributions of ranks 0..world-1, in float64.
inline at::Tensor expected(ReduceOp op, int world, at::IntArrayRef shape, at::ScalarType type) {
  at::Tensor acc = contribution(0, shape, type).to(torch::kFloat64);
  for (int r = 1; r < world; ++r) {
    const at::Tensor x = contribution(r, shape, type).to(torch::kFloat64);
    switch (op) {
      case ReduceOp::kSum:
      case ReduceOp::kAvg:
        acc = acc + x;
        break;
      case ReduceOp::kMax:
        acc = torch::maximum(acc, x);
        break;
      case ReduceOp::kMin:
        acc = torch::minimum(acc, x);
        break;
      case ReduceOp::kProduct:
        acc = acc * x;
        break;
    }
  }
  if (op == ReduceOp::kAvg) acc = acc / world;
  return acc;
}

// actual has dtype `type` and equals wanted (rounded to `type`) within 1e-6, or 1e-2 for fp16/bf16;
// on failure the first worst element is named.
inline void check_close(const at::Tensor& actual, const at::Tensor& wanted, at::ScalarType type) {
  const bool low_precision = type == torch::kHalf || type == torch::kBFloat16;
  CHECK(actual.scalar_type() == type);
  const at::Tensor a = actual.to(torch::kFloat64).reshape(-1);
  const at::Tensor w = wanted.to(type).to(torch::kFloat64).reshape(-1);
  const bool close = torch::allclose(a, w, low_precision ? 1e-2 : 1e-6, 1e-6);
  if (!close) {
    const auto worst = (a - w).abs().argmax().item<std::int64_t>();
    INFO("dtype " << c10::toString(type) << ", " << a.numel() << " elements; first worst index "
                  << worst << ": got " << a[worst].item<double>() << ", expected "
                  << w[worst].item<double>());
    CHECK(close);
  }
}

}  // namespace accel::test
