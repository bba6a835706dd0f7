// accel::NcclGroup on one rank (the first GPU). Prints "SKIPPED: no CUDA device" (ctest: skipped) on a
// machine without a GPU. Run as a plain process: the bootstrap group is then the single-process MpiGroup.
// clang-format off: torch_catch.hpp must stay the first include (include sorting would move it)
#include "torch_catch.hpp"  // first: see the header
// clang-format on
#include <torch/torch.h>

#include <iostream>

#include "accel/mpi_group.hpp"
#include "accel/nccl_group.hpp"
#include "accel/reducer.hpp"
#include "accel/tracking/errors.hpp"

#if defined(ACCEL_WITH_CUDA)

TEST_CASE("NcclGroup collectives on one GPU") {
  if (!accel::NcclGroup::available()) {
    std::cout << "SKIPPED: no CUDA device" << std::endl;
    return;
  }
  const torch::Device cuda(torch::kCUDA, 0);
  auto group = std::make_shared<accel::NcclGroup>(accel::cpu_process_group(), cuda);
  CHECK(group->backend() == "nccl");
  CHECK(group->size() == 1);
  CHECK(group->device() == cuda);

  for (auto type : {torch::kFloat32, torch::kFloat64, torch::kHalf, torch::kBFloat16}) {
    at::Tensor base =
        torch::arange(24, torch::TensorOptions().dtype(type).device(cuda)).reshape({4, 6});
    at::Tensor view = base.t();  // non-contiguous
    const at::Tensor before = view.clone();
    group->allreduce(view, accel::ReduceOp::kSum)->wait();
    CHECK(torch::equal(view.cpu(), before.cpu()));
    group->allreduce(view, accel::ReduceOp::kAvg)->wait();
    CHECK(torch::equal(view.cpu(), before.cpu()));
  }
  at::Tensor empty = torch::empty({0}, torch::TensorOptions().device(cuda));
  group->allreduce(empty)->wait();
  CHECK(empty.numel() == 0);

  at::Tensor t = torch::full({3, 2}, 5.0, torch::TensorOptions().device(cuda));
  group->broadcast(t, 0)->wait();
  CHECK(t.sum().item<double>() == 30.0);
  auto gathered = group->allgather(t);
  gathered->wait();
  REQUIRE(gathered->result().size() == 1);
  CHECK(torch::equal(gathered->result()[0].cpu(), t.cpu()));
  group->barrier()->wait();
  CHECK(group->broadcast_object("id", 0) == "id");

  at::Tensor on_cpu = torch::ones({2});
  CHECK_THROWS_AS(group->allreduce(on_cpu), accel::InvalidValue);

  // The reducer over NCCL: one rank, so gradients are unchanged.
  torch::nn::Linear layer(4, 3);
  layer->to(cuda);
  accel::Reducer reducer(*layer, group);
  at::Tensor x = torch::randn({5, 4}, torch::TensorOptions().device(cuda));
  layer->forward(x).sum().backward();
  const at::Tensor expected = x.sum(0).expand({3, 4}).cpu();
  CHECK(torch::allclose(layer->weight.grad().cpu(), expected, 1e-5, 1e-5));
  CHECK(reducer.synchronized_steps() == 1);
}

#else
TEST_CASE("NcclGroup collectives on one GPU") {
  std::cout << "SKIPPED: no CUDA device" << std::endl;
}
#endif
