#pragma once
// accel::Reducer: DDP-style gradient synchronisation for one model.
//
// At construction (collective over the group):
//   1. the model is checked to be the same on every rank: the list of parameters and buffers (name,
//      shape, dtype, requires_grad) is compared with rank 0's; the first difference is named in an
//      accel::DistributedError thrown on every rank ("parameter #3 'fc2.weight': rank 0 has [10, 64]
//      float, rank 1 has [10, 32] float");
//   2. every parameter and buffer is broadcast from rank 0 (so all ranks start identical);
//   3. the parameters that require grad are laid out in buckets, in REVERSE registration order (the order
//      in which backward usually produces their gradients). A bucket holds parameters of one dtype and
//      device in one flat contiguous tensor; the first bucket closes at first_bucket_bytes, the others at
//      bucket_bytes (a parameter larger than the limit gets a bucket of its own). Bucket storage comes from
//      group->allocate_reduction_buffer (MpiGroup on one machine: shared memory, reduced in place with no
//      copies; see mpi_group.hpp). Each parameter's .grad is made an alias of its slot in the bucket
//      (same memory; not an autograd view, so Optimizer::zero_grad() with or without set_to_none works),
//      so autograd accumulates straight into the bucket (no copy).
//   4. a post-accumulate-grad hook is installed on every such parameter.
// During backward (when sync is enabled, see no_sync):
//   * when a parameter's gradient has been accumulated, its hook marks it ready (copying the gradient into
//     its bucket slot first if .grad is not the slot alias, e.g. after zero_grad(set_to_none));
//   * when every parameter of bucket i is ready and buckets 0..i-1 have been launched, bucket i's
//     allreduce (average) is launched asynchronously on the process group, while backward continues;
//   * a callback queued on the autograd engine runs when backward finishes: it marks parameters whose hook
//     did not fire (unused this step, see find_unused_parameters), launches the remaining buckets, waits
//     for all of them (each averaged over ranks) and leaves every .grad as its averaged bucket slot, all
//     before backward() returns. Gradients are then identical on every rank.
// Unused parameters: with find_unused_parameters = false, a parameter that received no gradient in a
//   synchronised backward is an error (accel::DistributedError naming it, thrown out of backward()); with
//   true, its local contribution is its current .grad (zeros when undefined), and a parameter unused on
//   every rank keeps an undefined .grad, as in a single process.
// no_sync(): while a guard is alive, backward only accumulates locally (no communication); the next
//   synchronised backward reduces the sum of all accumulated gradients.
// Thread-safety: construct, call no_sync and run backward from the training thread; the hooks run on the
// autograd engine's threads. Not copyable or movable (hooks refer to it); destruction removes the hooks
// (gradients stay valid tensors).
#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "accel/process_group.hpp"

namespace accel {

struct ReducerOptions {
  std::size_t first_bucket_bytes = std::size_t{1} << 20;  // first bucket (1 MiB): starts comm early
  std::size_t bucket_bytes = std::size_t{25} << 20;       // later buckets (25 MiB)
  bool find_unused_parameters = false;                    // allow parameters without a gradient
  bool broadcast_initial_state = true;                    // broadcast params + buffers from rank 0
};

class Reducer {
 public:
  struct NamedTensor {
    std::string name;
    at::Tensor tensor;
  };

  // Registers module.named_parameters() (those requiring grad are synchronised) and
  // module.named_buffers(). Collective over group. Throws accel::InvalidValue for bad options
  // (zero bucket sizes) or parameters not on group->device(); accel::DistributedError for a model that
  // differs across ranks.
  Reducer(torch::nn::Module& module, std::shared_ptr<ProcessGroup> group,
          ReducerOptions options = {});
  // The same from explicit lists (for models that are not a torch::nn::Module).
  Reducer(std::vector<NamedTensor> parameters, std::vector<NamedTensor> buffers,
          std::shared_ptr<ProcessGroup> group, ReducerOptions options = {});
  ~Reducer();
  Reducer(const Reducer&) = delete;
  Reducer& operator=(const Reducer&) = delete;

  // RAII: communication is skipped while the guard lives; the previous setting is restored after.
  class [[nodiscard]] NoSyncGuard {
   public:
    explicit NoSyncGuard(Reducer& reducer);
    ~NoSyncGuard();
    NoSyncGuard(const NoSyncGuard&) = delete;
    NoSyncGuard& operator=(const NoSyncGuard&) = delete;

   private:
    Reducer& reducer_;
    bool previous_;
  };
  NoSyncGuard no_sync() { return NoSyncGuard(*this); }
  // The same switch without a guard (Accelerator's gradient accumulation): true = synchronise.
  void set_sync_enabled(bool enabled);
  bool sync_enabled() const;

  // Re-broadcasts every parameter and buffer from rank 0 (e.g. after loading a checkpoint on rank 0).
  void broadcast_state();

  // Introspection (tests, logging): parameter indices (registration order) per bucket, in launch order.
  std::vector<std::vector<std::size_t>> bucket_layout() const;
  // How many synchronised backward passes completed (each: all buckets reduced and written back).
  std::size_t synchronized_steps() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace accel
