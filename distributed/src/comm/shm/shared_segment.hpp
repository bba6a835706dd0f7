#pragma once
// SharedSegment: one block of memory mapped by every rank of an MPI communicator whose ranks all run on
// this machine. Rank 0 creates an anonymous memory file (memfd), the others open it through
// /proc/<pid>/fd, and every rank maps all of it: rank r's region starts at region(r), and every rank may
// read and write every region. Nothing is left behind in /dev/shm or on disk, and /dev/shm's size limit
// (64 MiB in a default container) does not apply.
// Lifetime: the memory lives until the last rank's SharedSegment is destroyed; destruction only unmaps
// locally (it is not collective), so a segment may be released on one rank while its peers keep theirs.
#include <mpi.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace accel::detail {

class SharedSegment {
 public:
  // Collective over `comm` (every rank calls it with the same bytes_per_rank). Returns a segment on every
  // rank, or nullptr on every rank when any rank could not create, open or map it; then *why (when not
  // null) says what failed on this rank or that a peer failed.
  static std::shared_ptr<SharedSegment> create(MPI_Comm comm, std::size_t bytes_per_rank,
                                               std::string* why = nullptr);
  ~SharedSegment();
  SharedSegment(const SharedSegment&) = delete;
  SharedSegment& operator=(const SharedSegment&) = delete;

  char* region(int rank) const { return regions_[static_cast<std::size_t>(rank)]; }
  std::size_t region_bytes() const { return region_bytes_; }  // bytes_per_rank rounded up to a page
  int ranks() const { return static_cast<int>(regions_.size()); }

 private:
  SharedSegment(void* mapping, std::size_t mapping_bytes, std::size_t region_bytes, int ranks);

  void* mapping_;
  std::size_t mapping_bytes_;
  std::size_t region_bytes_;
  std::vector<char*> regions_;
};

}  // namespace accel::detail
