#pragma once
// MpiTransport: how an MpiGroup moves bytes with MPI.
//
// It owns the group's two duplicates of MPI_COMM_WORLD: `comm`, on which every collective below runs
// (its errors are returned, not fatal), and `control`, lent to the Watchdog for progress queries.
// MPI counts are int: tensors and objects of any size move in chunks of 1 GiB. The collectives are
// blocking (the same algorithms a program calling MPI_Allreduce itself gets); the group runs them on
// its communication thread, or on a caller's thread (see OperationQueue).
//
// Who calls it: MpiGroup, from inside its operations (one at a time), and to open/close the
// communicators. Every rank calls the collectives in the same order (they are collective over comm).
// Thread-safety: one operation at a time; open and close from the group's owner.
// Errors: a failing MPI call throws accel::DistributedError "accel: <call> failed: <MPI's text>";
// mismatched or oversized arguments throw accel::DistributedError saying which rank passed what.
#include <mpi.h>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "accel/process_group.hpp"

namespace accel::detail {

// Throws accel::DistributedError "accel: <what> failed: <MPI's error text>" unless rc is MPI_SUCCESS.
void check_mpi(int rc, const char* what);

// The MPI type a tensor of `type` is reduced as (fp16/bf16: float after conversion); MPI_DATATYPE_NULL
// when MPI cannot reduce it.
MPI_Datatype reduction_type(at::ScalarType type);
MPI_Op mpi_op(ReduceOp op);

class MpiTransport {
 public:
  // Dimensions an allgathered tensor may have (its shape travels in a fixed-size header).
  static constexpr int kMaxAllgatherDims = 8;

  // Collective over MPI_COMM_WORLD: duplicates it as comm, then as control.
  void open(int rank, int size);
  // Frees both communicators (when MPI is still usable). After every operation has finished.
  void close();
  MPI_Comm comm() const { return comm_; }
  MPI_Comm control() const { return control_; }

  // ---- chunked collectives on raw memory ----
  void allreduce_in_place(void* data, std::int64_t count, MPI_Datatype type, MPI_Op op) const;
  void broadcast_bytes(void* data, std::uint64_t bytes, int root) const;
  void send_bytes(const std::string& bytes, int to) const;
  std::string receive_bytes(int from) const;
  void barrier() const;

  // Allgather of a contiguous tensor with 1..kMaxAllgatherDims dimensions whose dimension 0 may
  // differ between ranks: one tensor per rank, in rank order. Throws when dtype or another
  // dimension differs between ranks, or when the rows exceed MPI's int counts.
  std::vector<at::Tensor> allgather(const at::Tensor& input) const;

  // ---- object collectives (bytes of any length) ----
  // Root's bytes into `bytes` on every rank.
  void broadcast_object(std::string& bytes, int root) const;
  // Every rank's bytes, in rank order, on root; empty elsewhere.
  std::vector<std::string> gather_object(const std::string& mine, int root) const;
  // Every rank's bytes, in rank order, on every rank (at most 2 GiB in total).
  std::vector<std::string> allgather_object(const std::string& mine) const;
  // Entry r of root's `entries` on rank r. valid: whether root's entries hold one per rank (root tells
  // every rank first, so a bad call fails everywhere instead of leaving the others waiting).
  std::string scatter_object(const std::vector<std::string>& entries, int root, bool valid) const;

 private:
  int rank_ = 0;
  int size_ = 1;
  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Comm control_ = MPI_COMM_NULL;
};

}  // namespace accel::detail
