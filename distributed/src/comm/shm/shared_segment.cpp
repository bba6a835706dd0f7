// SharedSegment (see shared_segment.hpp).
#include "comm/shm/shared_segment.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace accel::detail {
namespace {

constexpr std::size_t kPage = 4096;

std::string errno_text(const char* what) {
  return fmt::format("{}: {}", what, std::strerror(errno));
}

}  // namespace

std::shared_ptr<SharedSegment> SharedSegment::create(MPI_Comm comm, std::size_t bytes_per_rank,
                                                     std::string* why) {
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  const std::size_t region = (std::max<std::size_t>(bytes_per_rank, 1) + kPage - 1) / kPage * kPage;
  const std::size_t total = region * static_cast<std::size_t>(size);
  std::string error;

  // Rank 0 creates the file and tells the others where to find it and how to recognise it:
  // {pid, fd, ok, device, inode}. A rank in another PID namespace (a container per rank) could open some
  // other process's file under the same path; the identity check makes that a clean fallback.
  int fd = -1;
  std::int64_t where[5] = {static_cast<std::int64_t>(getpid()), -1, 0, 0, 0};
  if (rank == 0) {
    fd = static_cast<int>(memfd_create("accel-shared", MFD_CLOEXEC));
    if (fd < 0) {
      error = errno_text("memfd_create");
    } else if (ftruncate(fd, static_cast<off_t>(total)) != 0) {
      error = errno_text("ftruncate");
    } else {
      struct stat info {};
      fstat(fd, &info);
      where[1] = fd;
      where[2] = 1;
      where[3] = static_cast<std::int64_t>(info.st_dev);
      where[4] = static_cast<std::int64_t>(info.st_ino);
    }
  }
  MPI_Bcast(where, 5, MPI_INT64_T, 0, comm);
  if (rank != 0 && where[2] == 1) {
    const std::string path = fmt::format("/proc/{}/fd/{}", where[0], where[1]);
    fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    struct stat info {};
    if (fd < 0) {
      error = errno_text(("open " + path).c_str());
    } else if (fstat(fd, &info) != 0 || static_cast<std::int64_t>(info.st_dev) != where[3] ||
               static_cast<std::int64_t>(info.st_ino) != where[4] ||
               static_cast<std::size_t>(info.st_size) != total) {
      error = path + " is not rank 0's shared memory (ranks in different PID namespaces?)";
    }
  }
  void* mapping = MAP_FAILED;
  if (fd >= 0 && error.empty()) {
    mapping = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mapping == MAP_FAILED) error = errno_text("mmap");
  }
  // Every rank has opened the file (or failed) once this returns, so rank 0 may close it.
  int ok = error.empty() && where[2] == 1 ? 1 : 0;
  int all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm);
  if (fd >= 0) close(fd);
  if (all_ok == 0) {
    if (mapping != MAP_FAILED) munmap(mapping, total);
    if (why != nullptr) {
      *why = !error.empty()  ? error
             : where[2] == 1 ? std::string("a peer rank could not map the shared memory")
                             : std::string("rank 0 could not create the shared memory");
    }
    return nullptr;
  }
  return std::shared_ptr<SharedSegment>(new SharedSegment(mapping, total, region, size));
}

SharedSegment::SharedSegment(void* mapping, std::size_t mapping_bytes, std::size_t region_bytes,
                             int ranks)
    : mapping_(mapping), mapping_bytes_(mapping_bytes), region_bytes_(region_bytes) {
  for (int r = 0; r < ranks; ++r) {
    regions_.push_back(static_cast<char*>(mapping) + static_cast<std::size_t>(r) * region_bytes);
  }
}

SharedSegment::~SharedSegment() {
  munmap(mapping_, mapping_bytes_);
}

}  // namespace accel::detail
