#pragma once
// accel::ProcessGroupCollectives: tracking's accel::Collectives (sync_dist metric reduction) over a
// ProcessGroup. Each call is ONE collective on the whole buffer (a float64 tensor; copied to the group's
// device when that is not the CPU). Collective: every rank calls it in the same order with the same
// buffer length. Throws accel::DistributedError when the collective fails; a timeout aborts the job (see
// ProcessGroup). Thread-safety: the training thread only, like Collectives.
#include <memory>
#include <span>
#include <utility>

#include "accel/process_group.hpp"
#include "accel/tracking/collectives.hpp"

namespace accel {

class ProcessGroupCollectives final : public Collectives {
 public:
  explicit ProcessGroupCollectives(std::shared_ptr<ProcessGroup> group)
      : group_(std::move(group)) {}

  int rank() const override { return group_->rank(); }
  int world_size() const override { return group_->size(); }
  void allreduce_sum(std::span<double> values) override { reduce(values, ReduceOp::kSum); }
  void allreduce_max(std::span<double> values) override { reduce(values, ReduceOp::kMax); }
  void allreduce_min(std::span<double> values) override { reduce(values, ReduceOp::kMin); }

 private:
  void reduce(std::span<double> values, ReduceOp op) {
    at::Tensor host = torch::from_blob(values.data(), {static_cast<int64_t>(values.size())},
                                       torch::TensorOptions().dtype(torch::kFloat64));
    if (group_->device().is_cpu()) {
      group_->allreduce(host, op)->wait();
      return;
    }
    at::Tensor on_device = host.to(group_->device());
    group_->allreduce(on_device, op)->wait();
    host.copy_(on_device.cpu());
  }

  std::shared_ptr<ProcessGroup> group_;
};

}  // namespace accel
