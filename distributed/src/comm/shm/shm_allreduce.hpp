#pragma once
// ShmAllreduce: allreduce through memory shared by the ranks, used by MpiGroup when every rank of the job
// runs on this machine (ACCEL_SHM_ALLREDUCE=0 turns it off).
//
// Two paths, chosen per operation, identically on every rank:
//   * in place: the tensor lies in a buffer from allocate() (the Reducer's gradient buckets) at the same
//     offset on every rank. Each rank reduces its own 1/n slice, reading that slice from every rank's
//     buffer and writing the result into every rank's buffer: 2 x size bytes of memory traffic per rank,
//     the average folded into the same pass, no copies. MPI_Allreduce moves several times more.
//   * staged: any other tensor goes through a per-rank staging area in chunks: copy in, reduce the slice
//     into every staging area, copy out. Up to 32 KiB ("direct"), every rank instead reduces the whole
//     tensor from every staging area into its own tensor: one meeting instead of two.
// Ranks meet through SharedFlags (spin briefly, then sleep on a futex). Before any data moves, every
// rank publishes what it passes (element count, dtype, op); a mismatch throws accel::DistributedError
// on every rank, naming each rank's arguments, instead of corrupting memory or hanging.
// A rank that never arrives leaves its peers waiting: MpiGroup's watchdog reports and aborts as for
// any other operation.
// Thread-safety: allreduce and allocate are called by one thread at a time (MpiGroup runs operations one
// at a time); tensors from allocate() may be released from any thread.
#include <mpi.h>
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "accel/process_group.hpp"

namespace accel::detail {

class SharedSegment;
struct ShmControl;

// ACCEL_SHM_ALLREDUCE: unset, "1", "true" or "on" = enabled; "0", "false" or "off" = disabled.
// Throws accel::InvalidValue naming any other value.
bool shm_allreduce_enabled_from_env();

class ShmAllreduce {
 public:
  // Collective over comm. nullptr on every rank when the ranks do not all share this machine, when there
  // is a single rank, or when the shared memory could not be set up; *why then says which.
  static std::unique_ptr<ShmAllreduce> create(MPI_Comm comm, std::string* why);
  ~ShmAllreduce();
  ShmAllreduce(const ShmAllreduce&) = delete;
  ShmAllreduce& operator=(const ShmAllreduce&) = delete;

  // float32, float64, float16, bfloat16 (accumulated in float).
  static bool supports(at::ScalarType type);

  // Collective: a zero-filled 1-D CPU tensor in memory every rank maps; allreduce reduces it in place.
  // An ordinary tensor when the shared memory could not be had (on every rank alike).
  at::Tensor allocate(std::int64_t numel, at::ScalarType type);

  // Collective, in place, on a contiguous CPU tensor of a supported type.
  void allreduce(const at::Tensor& tensor, ReduceOp op);

 private:
  struct Registry;
  struct Placement;
  ShmAllreduce(MPI_Comm comm, std::shared_ptr<SharedSegment> control);

  ShmControl& control(int rank) const;
  char* staging(int rank, std::uint32_t meeting) const;  // half meeting % 2 of rank's staging area
  std::uint32_t arrive_all();
  void wait_done(std::uint32_t sequence);
  std::pair<std::size_t, std::size_t> my_slice(std::size_t count, std::size_t element_size) const;

  // The steps of allreduce (one operation's arguments in a Reduction, on the caller's stack).
  struct Reduction;
  [[noreturn]] void throw_mismatched_arguments(std::uint32_t sequence);
  void reduce_direct(const Reduction& r, std::uint32_t sequence);
  void reduce_in_place(const Reduction& r, const Placement& placement, std::uint32_t sequence);
  void reduce_staged(const Reduction& r, std::uint32_t sequence, bool all_staged);

  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  std::shared_ptr<SharedSegment> control_;
  std::shared_ptr<Registry> registry_;
  std::uint32_t sequence_ = 0;
  std::uint64_t next_segment_id_ = 0;
  std::vector<const void*> inputs_;  // scratch lists of buffers for reduce_range
  std::vector<void*> outputs_;
};

}  // namespace accel::detail
