// MpiGroup (see accel/mpi_group.hpp): the front that checks arguments, labels each call and composes
// the group's parts (all in this folder):
//   * OperationQueue (operation_queue.hpp): the communication thread runs queued operations one at a
//     time, in call order, so callers overlap their own work with communication. A caller may run
//     operations itself, in the same order and under the same lock: a small one at submit when the
//     thread is idle, and any not yet started when it waits for it (Work::wait);
//   * Watchdog (watchdog.hpp): its thread wakes every 20 ms, answers peers' progress queries on the
//     control communicator and, when the running operation has exceeded the timeout, asks every peer
//     how far it got, prints the report and calls MPI_Abort. Both read and write the
//     OperationProgress (operation_progress.hpp);
//   * MpiTransport (mpi_transport.hpp): the blocking MPI collectives on `comm` (the same algorithms a
//     program calling MPI_Allreduce itself gets), in chunks, and the object collectives; or, for
//     floating-point allreduces on one machine, the shared-memory allreduce (comm/shm/).
#include "accel/mpi_group.hpp"

#include <fmt/format.h>
#include <mpi.h>
#include <torch/torch.h>

#include <algorithm>
#include <memory>
#include <optional>

#include "accel/state.hpp"
#include "accel/tracking/errors.hpp"
#include "comm/group_registry.hpp"
#include "comm/mpi/mpi_transport.hpp"
#include "comm/mpi/operation_progress.hpp"
#include "comm/mpi/operation_queue.hpp"
#include "comm/mpi/watchdog.hpp"
#include "comm/operation_label.hpp"
#include "comm/shm/shm_allreduce.hpp"

namespace accel {
namespace {

using detail::check_mpi;
using detail::MpiTransport;
using detail::OperationLabel;

OperationLabel tensor_label(const char* kind, const at::Tensor& t) {
  return OperationLabel::of_tensor(kind, t.scalar_type(), t.sizes(),
                                   static_cast<std::uint64_t>(t.numel()) * t.element_size());
}

OperationLabel object_label(const char* kind, int root, std::optional<std::uint64_t> bytes) {
  OperationLabel label;
  label.kind = kind;
  label.root = root;
  label.subject =
      bytes ? OperationLabel::Subject::kObjectBytes : OperationLabel::Subject::kUnknownObjectBytes;
  label.count = bytes.value_or(0);
  return label;
}

OperationLabel allreduce_label(const at::Tensor& tensor, ReduceOp op) {
  OperationLabel label = tensor_label("allreduce", tensor);
  label.op = op;
  return label;
}

void check_cpu(const at::Tensor& tensor, const char* op) {
  if (!tensor.defined()) {
    throw InvalidValue(fmt::format("MpiGroup::{}: the tensor is undefined; pass a tensor.", op));
  }
  if (!tensor.device().is_cpu()) {
    throw InvalidValue(
        fmt::format("MpiGroup::{}: tensor is on {}, but MpiGroup moves CPU tensors; move it with "
                    ".cpu() or use the "
                    "NCCL group (default_process_group()) for CUDA tensors.",
                    op, tensor.device().str()));
  }
}

}  // namespace

struct MpiGroup::Impl {
  std::chrono::milliseconds timeout{0};
  int rank = 0;
  int size = 1;
  bool local = true;  // single process without MPI: operations run inline

  detail::OperationProgress progress;
  detail::OperationQueue queue{progress};
  detail::Watchdog watchdog{progress};
  MpiTransport transport;

  std::unique_ptr<detail::ShmAllreduce> shm;  // null: every allreduce uses MPI
  std::string shm_status = "off: a single process";

  std::uint64_t registry_id = 0;

  void start(ProcessGroupOptions options) {
    const State& state = State::instance();
    timeout = options.timeout.count() > 0 ? options.timeout : collective_timeout_from_env();
    rank = state.rank();
    size = state.world_size();
    local = !state.uses_mpi();
    if (local) return;
    const bool shm_wanted = detail::shm_allreduce_enabled_from_env();
    transport.open(rank, size);
    start_shared_memory(shm_wanted);
    queue.start();
    watchdog.start(transport.control(), rank, size, timeout);
    registry_id = detail::register_group_shutdown([this] { stop(); });
  }

  // Collective: every rank takes the same decision (a rank whose environment says 0 turns it off for
  // all).
  void start_shared_memory(bool wanted) {
    int mine = wanted ? 1 : 0;
    int all = 0;
    check_mpi(MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, transport.comm()), "MPI_Allreduce");
    if (all == 0) {
      shm_status = "off: ACCEL_SHM_ALLREDUCE=0";
      return;
    }
    std::string why;
    shm = detail::ShmAllreduce::create(transport.comm(), &why);
    shm_status = shm ? std::string("on: every rank runs on this machine") : "off: " + why;
  }

  void stop() {
    // Held from here on: no operation runs while the watchdog, the shared memory and the
    // communicators go. Not held (nothing to free): stopped already, or a single process.
    const std::unique_lock execute = queue.stop();
    if (!execute.owns_lock()) return;
    watchdog.stop();
    shm.reset();
    transport.close();
  }

  void check_root(int root, const char* op) const {
    if (root < 0 || root >= size) {
      throw InvalidValue(fmt::format("MpiGroup::{}: root {} is not a rank of this group (0..{}).",
                                     op, root, size - 1));
    }
  }
};

MpiGroup::MpiGroup(ProcessGroupOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->start(options);
}

MpiGroup::~MpiGroup() {
  if (impl_->registry_id != 0) detail::unregister_group_shutdown(impl_->registry_id);
  impl_->stop();
}

void MpiGroup::shutdown() {
  if (impl_->registry_id != 0) detail::unregister_group_shutdown(impl_->registry_id);
  impl_->registry_id = 0;
  impl_->stop();
}

int MpiGroup::rank() const {
  return impl_->rank;
}
int MpiGroup::size() const {
  return impl_->size;
}
std::chrono::milliseconds MpiGroup::timeout() const {
  return impl_->timeout;
}

WorkPtr MpiGroup::allreduce(const at::Tensor& tensor, ReduceOp op) {
  check_cpu(tensor, "allreduce");
  const at::ScalarType type = tensor.scalar_type();
  const MPI_Datatype mpi_type = detail::reduction_type(type);
  if (mpi_type == MPI_DATATYPE_NULL) {
    throw InvalidValue(
        fmt::format("MpiGroup::allreduce: dtype {} is not supported; use a floating "
                    "(float64/32/16, bfloat16) or "
                    "integer tensor (convert bool with .to(torch::kUInt8)).",
                    c10::toString(type)));
  }
  if (op == ReduceOp::kAvg && !at::isFloatingType(type)) {
    throw InvalidValue(
        fmt::format("MpiGroup::allreduce: ReduceOp::kAvg of an integer tensor ({}) would truncate; "
                    "reduce with kSum "
                    "and divide, or convert to a floating type first.",
                    c10::toString(type)));
  }
  Impl* impl = impl_.get();
  const bool through_shm = impl->shm && detail::ShmAllreduce::supports(type);
  auto run = [impl, tensor, op, mpi_type, through_shm]() -> std::vector<at::Tensor> {
    at::Tensor buffer;
    if (through_shm) {  // any floating type, reduced as it is (fp16/bf16 accumulated in float)
      buffer = tensor.contiguous();
      impl->shm->allreduce(buffer, op);
    } else {  // MPI has no fp16/bf16: reduce those in float
      const bool widen = tensor.scalar_type() == at::kHalf || tensor.scalar_type() == at::kBFloat16;
      buffer = widen ? tensor.to(at::kFloat, false, false, at::MemoryFormat::Contiguous)
                     : tensor.contiguous();
      if (!impl->local)
        impl->transport.allreduce_in_place(buffer.data_ptr(), buffer.numel(), mpi_type,
                                           detail::mpi_op(op));
      if (op == ReduceOp::kAvg && impl->size > 1) buffer.div_(impl->size);
    }
    if (!buffer.is_same(tensor)) tensor.copy_(buffer);
    return {tensor};
  };
  const auto bytes = static_cast<std::size_t>(tensor.numel()) * tensor.element_size();
  return impl->queue.submit(allreduce_label(tensor, op), std::move(run),
                            std::max<std::size_t>(bytes, 1));
}

WorkPtr MpiGroup::broadcast(const at::Tensor& tensor, int root) {
  check_cpu(tensor, "broadcast");
  impl_->check_root(root, "broadcast");
  Impl* impl = impl_.get();
  auto run = [impl, tensor, root]() -> std::vector<at::Tensor> {
    if (impl->local) return {tensor};
    at::Tensor buffer = tensor.contiguous();
    impl->transport.broadcast_bytes(
        buffer.data_ptr(), static_cast<std::uint64_t>(buffer.numel()) * buffer.element_size(),
        root);
    if (!buffer.is_same(tensor) && impl->rank != root) tensor.copy_(buffer);
    return {tensor};
  };
  OperationLabel label = tensor_label("broadcast", tensor);
  label.root = root;
  return impl->queue.submit(label, std::move(run));
}

WorkPtr MpiGroup::allgather(const at::Tensor& tensor) {
  check_cpu(tensor, "allgather");
  if (tensor.dim() > MpiTransport::kMaxAllgatherDims) {
    throw InvalidValue(
        fmt::format("MpiGroup::allgather: tensor has {} dimensions; at most {} are "
                    "supported (reshape it first).",
                    tensor.dim(), MpiTransport::kMaxAllgatherDims));
  }
  Impl* impl = impl_.get();
  auto run = [impl, tensor]() -> std::vector<at::Tensor> {
    const at::Tensor input = (tensor.dim() == 0 ? tensor.reshape({1}) : tensor).contiguous();
    if (impl->local) return {input.clone()};
    return impl->transport.allgather(input);
  };
  return impl->queue.submit(tensor_label("allgather", tensor), std::move(run));
}

at::Tensor MpiGroup::allocate_reduction_buffer(std::int64_t numel, at::ScalarType dtype) {
  if (numel < 0) {
    throw InvalidValue(fmt::format(
        "MpiGroup::allocate_reduction_buffer: numel is {}; pass a count of elements >= 0.", numel));
  }
  Impl* impl = impl_.get();
  if (!impl->shm || !detail::ShmAllreduce::supports(dtype)) {
    return ProcessGroup::allocate_reduction_buffer(numel, dtype);
  }
  auto out = std::make_shared<at::Tensor>();
  OperationLabel label;
  label.kind = "allocate_reduction_buffer";
  label.subject = OperationLabel::Subject::kElements;
  label.dtype = dtype;
  label.count = static_cast<std::uint64_t>(numel);
  impl->queue
      .submit(label,
              [impl, out, numel, dtype]() -> std::vector<at::Tensor> {
                *out = impl->shm->allocate(numel, dtype);
                return {};
              })
      ->wait();
  return *out;
}

bool MpiGroup::uses_shared_memory() const {
  return impl_->shm != nullptr;
}
std::string MpiGroup::shared_memory_status() const {
  return impl_->shm_status;
}

WorkPtr MpiGroup::barrier() {
  Impl* impl = impl_.get();
  OperationLabel label;
  label.kind = "barrier";
  return impl->queue.submit(label, [impl]() -> std::vector<at::Tensor> {
    if (!impl->local) impl->transport.barrier();
    return {};
  });
}

std::string MpiGroup::broadcast_object(const std::string& bytes, int root) {
  impl_->check_root(root, "broadcast_object");
  Impl* impl = impl_.get();
  auto out = std::make_shared<std::string>();
  if (impl->rank == root) *out = bytes;
  impl->queue
      .submit(object_label(
                  "broadcast_object", root,
                  impl->rank == root ? std::optional<std::uint64_t>(bytes.size()) : std::nullopt),
              [impl, out, root]() -> std::vector<at::Tensor> {
                if (impl->local) return {};
                impl->transport.broadcast_object(*out, root);
                return {};
              })
      ->wait();
  return std::move(*out);
}

std::vector<std::string> MpiGroup::gather_object(const std::string& bytes, int root) {
  impl_->check_root(root, "gather_object");
  Impl* impl = impl_.get();
  auto out = std::make_shared<std::vector<std::string>>();
  auto mine = std::make_shared<std::string>(bytes);
  impl->queue
      .submit(object_label("gather_object", root, bytes.size()),
              [impl, out, mine, root]() -> std::vector<at::Tensor> {
                if (impl->local) {
                  out->push_back(*mine);
                  return {};
                }
                *out = impl->transport.gather_object(*mine, root);
                return {};
              })
      ->wait();
  return std::move(*out);
}

std::vector<std::string> MpiGroup::allgather_object(const std::string& bytes) {
  Impl* impl = impl_.get();
  auto out = std::make_shared<std::vector<std::string>>();
  auto mine = std::make_shared<std::string>(bytes);
  impl->queue
      .submit(object_label("allgather_object", -1, bytes.size()),
              [impl, out, mine]() -> std::vector<at::Tensor> {
                if (impl->local) {
                  out->push_back(*mine);
                  return {};
                }
                *out = impl->transport.allgather_object(*mine);
                return {};
              })
      ->wait();
  return std::move(*out);
}

std::string MpiGroup::scatter_object(const std::vector<std::string>& per_rank, int root) {
  impl_->check_root(root, "scatter_object");
  Impl* impl = impl_.get();
  const bool valid = impl->rank != root || per_rank.size() == static_cast<std::size_t>(impl->size);
  auto entries = std::make_shared<std::vector<std::string>>();
  if (impl->rank == root && valid) *entries = per_rank;
  auto out = std::make_shared<std::string>();
  try {
    OperationLabel label;
    label.kind = "scatter_object";
    label.root = root;
    impl->queue
        .submit(label,
                [impl, entries, out, root, valid]() -> std::vector<at::Tensor> {
                  if (impl->local) {
                    if (valid) *out = (*entries)[0];
                    return {};
                  }
                  *out = impl->transport.scatter_object(*entries, root, valid);
                  return {};
                })
        ->wait();
  } catch (const DistributedError&) {
    if (valid) throw;
  }
  if (!valid) {
    throw InvalidValue(
        fmt::format("MpiGroup::scatter_object: root passed {} entries but the group has {} ranks; "
                    "pass exactly one "
                    "entry per rank.",
                    per_rank.size(), impl->size));
  }
  return std::move(*out);
}

}  // namespace accel
