// ShmAllreduce (see shm_allreduce.hpp).
//
// Shared control segment: one region per rank = [ShmControl][staging half 0][staging half 1]; meeting s
// stages into half s % 2, so a half is rewritten only two meetings later, when every peer has surely
// finished reading it (it arrived at the meeting in between).
// Sequence numbers: every meeting point (the start of an operation, each later staged chunk) takes the
// next number; ranks agree on them because operations are collective and the chunking depends only on
// arguments every rank has checked to be equal. A rank publishes `arrive` = s once its inputs for s are
// in place, reduces its slice after every peer arrived, then publishes `done` = s; nobody touches a
// peer's memory for s after done. Waits compare "at least", so a step skipped on an error path (the
// mismatch throw) does not stall the next operation. The header of operation s is in slot s % 2: a rank
// is at most one meeting point ahead of the slowest peer, so a slot is never overwritten while read.
#include "comm/shm/shm_allreduce.hpp"

#include <fmt/format.h>
#include <strings.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "accel/tracking/errors.hpp"
#include "comm/shm/reduce_kernels.hpp"
#include "comm/shm/shared_flag.hpp"
#include "comm/shm/shared_segment.hpp"

namespace accel::detail {

namespace {

constexpr std::size_t kStagingBytes = std::size_t{1} << 20;  // per rank and half: the staged chunk
constexpr std::size_t kDirectBytes = std::size_t{32} << 10;  // up to this: one meeting, no slices
constexpr std::size_t kCacheLine = 64;
constexpr std::chrono::nanoseconds kSpin = std::chrono::microseconds(20);

enum class Mode : std::uint32_t { kStaged = 1, kInPlace = 2 };

struct Header {
  std::uint32_t sequence;
  Mode mode;
  std::int64_t numel;
  std::int32_t dtype;
  std::int32_t op;
  std::uint64_t segment;  // in place: allocate()'s id, the same on every rank
  std::uint64_t offset;   // in place: byte offset in the rank's region
};

ElementType element_type(at::ScalarType type) {
  switch (type) {
    case at::kDouble:
      return ElementType::kFloat64;
    case at::kHalf:
      return ElementType::kFloat16;
    case at::kBFloat16:
      return ElementType::kBFloat16;
    default:
      return ElementType::kFloat32;
  }
}

ElementOp element_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kMax:
      return ElementOp::kMax;
    case ReduceOp::kMin:
      return ElementOp::kMin;
    case ReduceOp::kProduct:
      return ElementOp::kProduct;
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      return ElementOp::kSum;
  }
  return ElementOp::kSum;
}

std::string describe(const Header& h) {
  return fmt::format("{} elements of {} ({})", h.numel,
                     c10::toString(static_cast<at::ScalarType>(h.dtype)),
                     to_string(static_cast<ReduceOp>(h.op)));
}

}  // namespace

struct ShmControl {
  SharedFlag arrive;
  SharedFlag done;
  alignas(kCacheLine) Header header[2];
};

namespace {
constexpr std::size_t kControlBytes = (sizeof(ShmControl) + 4095) / 4096 * 4096;  // whole pages
}  // namespace

struct ShmAllreduce::Placement {
  std::uint64_t segment = 0;
  std::size_t offset = 0;
  std::vector<char*> regions;  // every rank's region of the segment
};

// Buffers from allocate() that are alive on this rank, by the start of this rank's region.
struct ShmAllreduce::Registry {
  struct Entry {
    std::uint64_t segment;
    std::size_t bytes;
    std::vector<char*> regions;
  };
  std::mutex mutex;
  std::map<const char*, Entry> by_start;

  bool find(const at::Tensor& tensor, Placement& out) {
    const auto* begin = static_cast<const char*>(tensor.data_ptr());
    const std::size_t bytes = static_cast<std::size_t>(tensor.numel()) * tensor.element_size();
    std::lock_guard lock(mutex);
    auto it = by_start.upper_bound(begin);
    if (it == by_start.begin()) return false;
    --it;
    const std::size_t offset = static_cast<std::size_t>(begin - it->first);
    if (offset + bytes > it->second.bytes) return false;
    out.segment = it->second.segment;
    out.offset = offset;
    out.regions = it->second.regions;
    return true;
  }
};

bool shm_allreduce_enabled_from_env() {
  const char* value = std::getenv("ACCEL_SHM_ALLREDUCE");
  if (value == nullptr || *value == '\0') return true;
  for (const char* yes : {"1", "true", "on", "yes"}) {
    if (strcasecmp(value, yes) == 0) return true;
  }
  for (const char* no : {"0", "false", "off", "no"}) {
    if (strcasecmp(value, no) == 0) return false;
  }
  throw InvalidValue(
      "ACCEL_SHM_ALLREDUCE='" + std::string(value) +
      "' is not a switch; set it to 0 to reduce through MPI only, or to 1 (the default) "
      "to reduce through shared memory when every rank runs on this machine.");
}

std::unique_ptr<ShmAllreduce> ShmAllreduce::create(MPI_Comm comm, std::string* why) {
  int size = 1;
  MPI_Comm_size(comm, &size);
  if (size < 2) {
    if (why != nullptr) *why = "a single rank has nothing to share";
    return nullptr;
  }
  MPI_Comm node = MPI_COMM_NULL;
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int node_size = 0;
  MPI_Comm_size(node, &node_size);
  MPI_Comm_free(&node);
  int one_node = node_size == size ? 1 : 0;
  int all_one_node = 0;
  MPI_Allreduce(&one_node, &all_one_node, 1, MPI_INT, MPI_MIN, comm);
  if (all_one_node == 0) {
    if (why != nullptr) *why = "the ranks run on more than one machine";
    return nullptr;
  }
  auto segment = SharedSegment::create(comm, kControlBytes + 2 * kStagingBytes, why);
  if (!segment) return nullptr;
  return std::unique_ptr<ShmAllreduce>(new ShmAllreduce(comm, std::move(segment)));
}

ShmAllreduce::ShmAllreduce(MPI_Comm comm, std::shared_ptr<SharedSegment> control)
    : comm_(comm), control_(std::move(control)), registry_(std::make_shared<Registry>()) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

ShmAllreduce::~ShmAllreduce() = default;

bool ShmAllreduce::supports(at::ScalarType type) {
  return type == at::kFloat || type == at::kDouble || type == at::kHalf || type == at::kBFloat16;
}

ShmControl& ShmAllreduce::control(int rank) const {
  return *reinterpret_cast<ShmControl*>(control_->region(rank));
}

char* ShmAllreduce::staging(int rank, std::uint32_t meeting) const {
  return control_->region(rank) + kControlBytes + (meeting % 2) * kStagingBytes;
}

// Publishes this rank's arrival at the next meeting point and waits for every peer's. Arriving at s
// means being done with every earlier meeting, so `done` is advanced to s - 1 as well: meetings that
// end without a done step (direct, zero elements, a mismatch) never leave it 2^31 behind `arrive`,
// where the modulo-2^32 comparison would mistake it for being ahead. No one can be waiting for that
// value (each done that is waited for is published by the step itself), so no wake-up is needed.
std::uint32_t ShmAllreduce::arrive_all() {
  const std::uint32_t sequence = ++sequence_;
  control(rank_).done.advance(sequence - 1);
  control(rank_).arrive.publish(sequence);
  for (int r = 0; r < size_; ++r) control(r).arrive.wait_until(sequence, kSpin);
  return sequence;
}

void ShmAllreduce::wait_done(std::uint32_t sequence) {
  control(rank_).done.publish(sequence);
  for (int r = 0; r < size_; ++r) control(r).done.wait_until(sequence, kSpin);
}

// This rank's share of [0, count): boundaries on cache lines, so ranks never write the same line.
std::pair<std::size_t, std::size_t> ShmAllreduce::my_slice(std::size_t count,
                                                           std::size_t element_size) const {
  const std::size_t align = std::max<std::size_t>(1, kCacheLine / element_size);
  const auto bound = [&](int q) -> std::size_t {
    if (q >= size_) return count;
    const std::size_t b = count * static_cast<std::size_t>(q) / static_cast<std::size_t>(size_);
    return b - b % align;
  };
  return {bound(rank_), bound(rank_ + 1)};
}

at::Tensor ShmAllreduce::allocate(std::int64_t numel, at::ScalarType type) {
  const auto bytes = static_cast<std::size_t>(numel) * c10::elementSize(type);
  std::shared_ptr<SharedSegment> segment = SharedSegment::create(comm_, bytes);
  if (!segment) return torch::zeros({numel}, torch::TensorOptions().dtype(type));
  const std::uint64_t id = ++next_segment_id_;
  std::vector<char*> regions;
  for (int r = 0; r < size_; ++r) regions.push_back(segment->region(r));
  char* mine = segment->region(rank_);
  {
    std::lock_guard lock(registry_->mutex);
    registry_->by_start[mine] = Registry::Entry{id, segment->region_bytes(), regions};
  }
  std::shared_ptr<Registry> registry = registry_;
  return torch::from_blob(
      mine, {numel},
      [segment, registry, mine](void*) {
        std::lock_guard lock(registry->mutex);
        registry->by_start.erase(mine);
      },
      torch::TensorOptions().dtype(type));
}

// What the reduction paths need of one operation.
struct ShmAllreduce::Reduction {
  ElementType type;
  ElementOp op;
  double divisor;  // size for the average, else 1
  char* data;      // the caller's tensor
  std::size_t count;
  std::size_t element_size;
};

void ShmAllreduce::allreduce(const at::Tensor& tensor, ReduceOp op) {
  const auto count = static_cast<std::size_t>(tensor.numel());
  const std::size_t element_size = tensor.element_size();
  const Reduction reduction{element_type(tensor.scalar_type()),
                            element_op(op),
                            op == ReduceOp::kAvg ? static_cast<double>(size_) : 1.0,
                            static_cast<char*>(tensor.data_ptr()),
                            count,
                            element_size};
  const std::size_t chunk = kStagingBytes / element_size;
  const bool direct = count * element_size <= kDirectBytes;

  Placement placement;
  const bool in_place = !direct && registry_->find(tensor, placement);
  // A staged tensor's first chunk goes in before the first meeting, so a small operation meets once
  // (direct) and a larger one twice per chunk (arrive, done).
  const std::uint32_t first_meeting = sequence_ + 1;
  if (!in_place && count > 0) {  // (a zero-element tensor may have no data pointer at all)
    std::memcpy(staging(rank_, first_meeting), reduction.data,
                std::min(count, chunk) * element_size);
  }
  Header& mine = control(rank_).header[first_meeting % 2];
  mine = Header{first_meeting,
                in_place ? Mode::kInPlace : Mode::kStaged,
                static_cast<std::int64_t>(count),
                static_cast<std::int32_t>(tensor.scalar_type()),
                static_cast<std::int32_t>(op),
                placement.segment,
                placement.offset};
  const std::uint32_t sequence = arrive_all();

  bool same_arguments = true;
  bool all_in_place = true;
  bool all_staged = true;
  for (int r = 0; r < size_; ++r) {
    const Header& h = control(r).header[sequence % 2];
    same_arguments =
        same_arguments && h.numel == mine.numel && h.dtype == mine.dtype && h.op == mine.op;
    all_in_place = all_in_place && h.mode == Mode::kInPlace && h.segment == mine.segment &&
                   h.offset == mine.offset;
    all_staged = all_staged && h.mode == Mode::kStaged;
  }
  if (!same_arguments) throw_mismatched_arguments(sequence);
  if (count == 0) return;

  if (direct) {
    reduce_direct(reduction, sequence);
  } else if (all_in_place) {
    reduce_in_place(reduction, placement, sequence);
  } else {
    reduce_staged(reduction, sequence, all_staged);
  }
}

void ShmAllreduce::throw_mismatched_arguments(std::uint32_t sequence) {
  std::string ranks;
  for (int r = 0; r < size_; ++r) {
    ranks += fmt::format("\n    rank {}: {}", r, describe(control(r).header[sequence % 2]));
  }
  throw DistributedError(fmt::format(
      "accel: allreduce: the ranks passed different tensors or ops:{}\n  Every rank must "
      "allreduce "
      "tensors with the same number of elements and dtype, with the same op, in the same order.",
      ranks));
}

// Reused from call to call (operations run one at a time): no allocation on the small-tensor path.
void ShmAllreduce::reduce_direct(const Reduction& r, std::uint32_t sequence) {
  std::vector<const void*>& inputs = inputs_;
  std::vector<void*>& outputs = outputs_;
  inputs.clear();
  outputs.clear();
  // Every rank reduces the whole (small) tensor from every staging area straight into its own
  // tensor. No second meeting: a peer reuses this staging half only two meetings later, which it
  // cannot reach before this rank arrived at the next one.
  for (int rank = 0; rank < size_; ++rank) inputs.push_back(staging(rank, sequence));
  outputs.push_back(r.data);
  reduce_range(r.type, r.op, inputs, outputs, 0, r.count, r.divisor);
}

void ShmAllreduce::reduce_in_place(const Reduction& r, const Placement& placement,
                                   std::uint32_t sequence) {
  std::vector<const void*>& inputs = inputs_;
  std::vector<void*>& outputs = outputs_;
  inputs.clear();
  outputs.clear();
  for (char* region : placement.regions) {
    inputs.push_back(region + placement.offset);
    outputs.push_back(region + placement.offset);
  }
  const auto [begin, end] = my_slice(r.count, r.element_size);
  reduce_range(r.type, r.op, inputs, outputs, begin, end, r.divisor);
  wait_done(sequence);
}

void ShmAllreduce::reduce_staged(const Reduction& r, std::uint32_t sequence, bool all_staged) {
  std::vector<const void*>& inputs = inputs_;
  std::vector<void*>& outputs = outputs_;
  const std::size_t element_size = r.element_size;
  const std::size_t chunk = kStagingBytes / element_size;
  for (std::size_t first = 0; first < r.count; first += chunk) {
    const std::size_t n = std::min(chunk, r.count - first);
    if (first > 0 || !all_staged) {
      // Later chunks, and the first one again when some rank was in place (the meeting moved on to the
      // other staging half): copy in, meet again.
      std::memcpy(staging(rank_, sequence_ + 1), r.data + first * element_size, n * element_size);
      sequence = arrive_all();
    }
    inputs.clear();
    outputs.clear();
    for (int rank = 0; rank < size_; ++rank) {
      inputs.push_back(staging(rank, sequence));
      outputs.push_back(staging(rank, sequence));
    }
    const auto [begin, end] = my_slice(n, element_size);
    reduce_range(r.type, r.op, inputs, outputs, begin, end, r.divisor);
    wait_done(sequence);
    std::memcpy(r.data + first * element_size, staging(rank_, sequence), n * element_size);
  }
}

}  // namespace accel::detail
