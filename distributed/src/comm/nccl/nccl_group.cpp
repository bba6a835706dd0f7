// NcclGroup (see accel/nccl_group.hpp). Compiled only when CUDA is enabled.
//
// Stream protocol for every operation:
//   caller's current stream --(ready event)--> group stream: NCCL call (+ copy back for non-contiguous
//   tensors) --(done event)--> Work::wait(): host polls the done event until the timeout, then the
//   caller's current stream waits for it. Tensors used on the group stream are recorded on it, so the
//   caching allocator does not hand their memory out before the operation finished.
#include "accel/nccl_group.hpp"

#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <optional>
#include <sstream>
#include <thread>

#include "accel/state.hpp"
#include "accel/tracking/errors.hpp"

namespace accel {
namespace {

using Clock = std::chrono::steady_clock;

void check_nccl(ncclResult_t result, const char* what) {
  if (result != ncclSuccess) {
    throw DistributedError(std::string("accel: ") + what +
                           " failed: " + ncclGetErrorString(result));
  }
}

bool nccl_type(at::ScalarType type, ncclDataType_t* out) {
  switch (type) {
    case at::kFloat:
      *out = ncclFloat32;
      return true;
    case at::kDouble:
      *out = ncclFloat64;
      return true;
    case at::kHalf:
      *out = ncclFloat16;
      return true;
    case at::kBFloat16:
      *out = ncclBfloat16;
      return true;
    case at::kChar:
      *out = ncclInt8;
      return true;
    case at::kByte:
      *out = ncclUint8;
      return true;
    case at::kInt:
      *out = ncclInt32;
      return true;
    case at::kLong:
      *out = ncclInt64;
      return true;
    default:
      return false;
  }
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return ncclSum;
    case ReduceOp::kAvg:
      return ncclAvg;
    case ReduceOp::kMax:
      return ncclMax;
    case ReduceOp::kMin:
      return ncclMin;
    case ReduceOp::kProduct:
      return ncclProd;
  }
  return ncclSum;
}

std::string describe_tensor(const at::Tensor& t) {
  std::ostringstream out;
  out << c10::toString(t.scalar_type()) << " " << t.sizes() << " ("
      << static_cast<std::uint64_t>(t.numel()) * t.element_size() << " bytes)";
  return out.str();
}

// Everything an operation in flight needs from its group (NcclGroup::Impl is this, nothing more).
struct NcclCommState {
  std::shared_ptr<ProcessGroup> bootstrap;
  torch::Device device = torch::kCPU;
  std::chrono::milliseconds timeout{0};
  int rank = 0;
  int size = 1;
  ncclComm_t comm = nullptr;
  std::optional<c10::cuda::CUDAStream> stream;
  std::atomic<std::uint64_t> sequence{0};

  [[noreturn]] void abort_on_timeout(std::uint64_t seq, const std::string& name) {
    const std::string message = "accel: collective timeout on " + State::instance().describe() +
                                ": NCCL operation #" + std::to_string(seq) + " '" + name +
                                "' did not complete within " + std::to_string(timeout.count()) +
                                " ms (ACCEL_COLLECTIVE_TIMEOUT). Some peer did not make the same "
                                "call (every rank must make the "
                                "same collective calls in the same order); the other ranks report "
                                "their own position. Aborting "
                                "the job (ncclCommAbort, MPI_Abort).\n";
    std::fputs(message.c_str(), stderr);
    std::fflush(stderr);
    ncclCommAbort(comm);
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized != 0) MPI_Abort(MPI_COMM_WORLD, 3);
    std::abort();
  }
};

}  // namespace

struct NcclGroup::Impl : NcclCommState {};

namespace {

class NcclWork final : public Work {
 public:
  NcclWork(NcclCommState* group, std::uint64_t seq, std::string name,
           std::vector<at::Tensor> result)
      : group_(group),
        seq_(seq),
        name_(std::move(name)),
        result_(std::move(result)),
        deadline_(Clock::now() + group->timeout) {}

  c10::cuda::CUDAEvent& done() { return done_; }

  bool is_completed() const override { return done_.query(); }
  void wait() override {
    while (!done_.query()) {
      if (Clock::now() > deadline_) group_->abort_on_timeout(seq_, name_);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    done_.block(c10::cuda::getCurrentCUDAStream(group_->device.index()));
  }
  bool wait(std::chrono::milliseconds timeout) override {
    const auto until = Clock::now() + timeout;
    while (!done_.query()) {
      if (Clock::now() > deadline_) group_->abort_on_timeout(seq_, name_);
      if (Clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    done_.block(c10::cuda::getCurrentCUDAStream(group_->device.index()));
    return true;
  }
  const std::vector<at::Tensor>& result() const override { return result_; }

 private:
  NcclCommState* group_;
  std::uint64_t seq_;
  std::string name_;
  std::vector<at::Tensor> result_;
  Clock::time_point deadline_;
  c10::cuda::CUDAEvent done_;
};

void check_device(const at::Tensor& tensor, const torch::Device& device, const char* op) {
  if (!tensor.defined() || tensor.device() != device) {
    throw InvalidValue(
        std::string("NcclGroup::") + op + ": tensor is " +
        (tensor.defined() ? "on " + tensor.device().str() : std::string("undefined")) +
        " but this group works on " + device.str() + "; move it with .to(" + device.str() + ").");
  }
}

void record_on(const at::Tensor& t, const c10::cuda::CUDAStream& stream) {
  if (t.numel() > 0) c10::cuda::CUDACachingAllocator::recordStream(t.storage().data_ptr(), stream);
}

}  // namespace

bool NcclGroup::available() {
  return torch::cuda::is_available();
}

NcclGroup::NcclGroup(std::shared_ptr<ProcessGroup> bootstrap, torch::Device device,
                     ProcessGroupOptions options)
    : impl_(std::make_unique<Impl>()) {
  if (!device.is_cuda()) {
    throw InvalidValue("NcclGroup: device " + device.str() +
                       " is not a CUDA device; use MpiGroup for "
                       "CPU tensors.");
  }
  if (!bootstrap)
    throw InvalidValue("NcclGroup: the bootstrap group is null; pass cpu_process_group().");
  if (!device.has_index()) {
    device =
        torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(State::instance().local_rank() %
                                                                  torch::cuda::device_count()));
  }
  Impl& impl = *impl_;
  impl.bootstrap = std::move(bootstrap);
  impl.device = device;
  impl.timeout = options.timeout.count() > 0 ? options.timeout : collective_timeout_from_env();
  impl.rank = impl.bootstrap->rank();
  impl.size = impl.bootstrap->size();

  ncclUniqueId id;
  std::memset(&id, 0, sizeof(id));
  std::string id_bytes;
  if (impl.rank == 0) {
    check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    id_bytes.assign(reinterpret_cast<const char*>(&id), sizeof(id));
  }
  id_bytes = impl.bootstrap->broadcast_object(id_bytes, 0);
  if (id_bytes.size() != sizeof(id)) {
    throw DistributedError("accel: NcclGroup: received a malformed ncclUniqueId from rank 0.");
  }
  std::memcpy(&id, id_bytes.data(), sizeof(id));
  c10::cuda::CUDAGuard guard(device);
  check_nccl(ncclCommInitRank(&impl.comm, impl.size, id, impl.rank), "ncclCommInitRank");
  impl.stream = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index());
}

NcclGroup::~NcclGroup() {
  if (impl_->comm != nullptr) {
    if (impl_->stream) cudaStreamSynchronize(impl_->stream->stream());
    ncclCommDestroy(impl_->comm);
  }
}

int NcclGroup::rank() const {
  return impl_->rank;
}
int NcclGroup::size() const {
  return impl_->size;
}
torch::Device NcclGroup::device() const {
  return impl_->device;
}
std::chrono::milliseconds NcclGroup::timeout() const {
  return impl_->timeout;
}

namespace {

// Runs `body` on the group stream after everything queued so far on the caller's stream.
template <typename Body>
std::shared_ptr<NcclWork> launch(NcclCommState& impl, const std::string& name,
                                 std::vector<at::Tensor> result, Body body) {
  c10::cuda::CUDAGuard guard(impl.device);
  const std::uint64_t seq = ++impl.sequence;
  auto work = std::make_shared<NcclWork>(&impl, seq, name, std::move(result));
  c10::cuda::CUDAStream caller = c10::cuda::getCurrentCUDAStream(impl.device.index());
  c10::cuda::CUDAEvent ready;
  ready.record(caller);
  ready.block(*impl.stream);
  {
    c10::cuda::CUDAStreamGuard on_group_stream(*impl.stream);
    body(impl.stream->stream());
  }
  work->done().record(*impl.stream);
  return work;
}

}  // namespace

WorkPtr NcclGroup::allreduce(const at::Tensor& tensor, ReduceOp op) {
  check_device(tensor, impl_->device, "allreduce");
  ncclDataType_t type;
  if (!nccl_type(tensor.scalar_type(), &type)) {
    throw InvalidValue(std::string("NcclGroup::allreduce: dtype ") +
                       c10::toString(tensor.scalar_type()) +
                       " is not supported by NCCL; use a "
                       "floating or 8/32/64-bit integer tensor.");
  }
  if (op == ReduceOp::kAvg && !at::isFloatingType(tensor.scalar_type())) {
    throw InvalidValue(
        "NcclGroup::allreduce: ReduceOp::kAvg needs a floating tensor; reduce with kSum "
        "and divide.");
  }
  Impl& impl = *impl_;
  at::Tensor buffer = tensor.contiguous();  // on the caller's stream, before the ready event
  return launch(impl, "allreduce(" + std::string(to_string(op)) + ") of " + describe_tensor(tensor),
                {tensor}, [&](cudaStream_t stream) {
                  check_nccl(ncclAllReduce(buffer.data_ptr(), buffer.data_ptr(),
                                           static_cast<std::size_t>(buffer.numel()), type,
                                           nccl_op(op), impl.comm, stream),
                             "ncclAllReduce");
                  if (!buffer.is_same(tensor)) tensor.copy_(buffer);
                  record_on(buffer, *impl.stream);
                  record_on(tensor, *impl.stream);
                });
}

WorkPtr NcclGroup::broadcast(const at::Tensor& tensor, int root) {
  check_device(tensor, impl_->device, "broadcast");
  if (root < 0 || root >= impl_->size) {
    throw InvalidValue("NcclGroup::broadcast: root " + std::to_string(root) +
                       " is not a rank of this group (0.." + std::to_string(impl_->size - 1) +
                       ").");
  }
  Impl& impl = *impl_;
  at::Tensor buffer = tensor.contiguous();
  return launch(impl, "broadcast(root " + std::to_string(root) + ") of " + describe_tensor(tensor),
                {tensor}, [&](cudaStream_t stream) {
                  const auto bytes =
                      static_cast<std::size_t>(buffer.numel()) * buffer.element_size();
                  check_nccl(ncclBroadcast(buffer.data_ptr(), buffer.data_ptr(), bytes, ncclUint8,
                                           root, impl.comm, stream),
                             "ncclBroadcast");
                  if (!buffer.is_same(tensor) && impl.rank != root) tensor.copy_(buffer);
                  record_on(buffer, *impl.stream);
                  record_on(tensor, *impl.stream);
                });
}

WorkPtr NcclGroup::allgather(const at::Tensor& tensor) {
  check_device(tensor, impl_->device, "allgather");
  Impl& impl = *impl_;
  const at::Tensor input = (tensor.dim() == 0 ? tensor.reshape({1}) : tensor).contiguous();
  // Shapes travel over the bootstrap group first (host side), so every rank can size its output.
  std::ostringstream header;
  header << static_cast<int>(input.scalar_type());
  for (auto s : input.sizes()) header << ' ' << s;
  const std::vector<std::string> headers = impl.bootstrap->allgather_object(header.str());
  std::vector<std::int64_t> rows;
  for (int r = 0; r < impl.size; ++r) {
    std::istringstream in(headers[r]);
    int type = 0;
    in >> type;
    std::vector<std::int64_t> sizes;
    for (std::int64_t s = 0; in >> s;) sizes.push_back(s);
    bool same = type == static_cast<int>(input.scalar_type()) &&
                sizes.size() == static_cast<std::size_t>(input.dim());
    for (std::size_t d = 1; same && d < sizes.size(); ++d) same = sizes[d] == input.size(d);
    if (!same) {
      throw DistributedError("accel: allgather: rank " + std::to_string(r) + " passed '" +
                             headers[r] + "' (dtype code and sizes) but rank " +
                             std::to_string(impl.rank) + " passed '" + header.str() +
                             "'; only dimension 0 may differ.");
    }
    rows.push_back(sizes[0]);
  }
  std::vector<std::int64_t> out_shape(input.sizes().begin(), input.sizes().end());
  std::int64_t total = 0;
  for (auto r : rows) total += r;
  out_shape[0] = total;
  at::Tensor output = torch::empty(out_shape, input.options());
  const std::int64_t row_bytes =
      input.size(0) > 0 ? input.numel() / input.size(0) * input.element_size()
                        : (total > 0 ? output.numel() / total * output.element_size() : 0);
  auto parts = output.split_with_sizes(rows, 0);
  return launch(impl, "allgather of " + describe_tensor(tensor),
                std::vector<at::Tensor>(parts.begin(), parts.end()), [&](cudaStream_t stream) {
                  check_nccl(ncclGroupStart(), "ncclGroupStart");
                  std::int64_t offset = 0;
                  for (int r = 0; r < impl.size; ++r) {
                    auto* out = static_cast<char*>(output.data_ptr()) + offset * row_bytes;
                    check_nccl(ncclBroadcast(r == impl.rank ? input.data_ptr() : out, out,
                                             static_cast<std::size_t>(rows[r] * row_bytes),
                                             ncclUint8, r, impl.comm, stream),
                               "ncclBroadcast");
                    offset += rows[r];
                  }
                  check_nccl(ncclGroupEnd(), "ncclGroupEnd");
                  record_on(input, *impl.stream);
                  record_on(output, *impl.stream);
                });
}

WorkPtr NcclGroup::barrier() {
  at::Tensor token = torch::zeros({1}, torch::TensorOptions().device(impl_->device));
  WorkPtr work = allreduce(token, ReduceOp::kSum);
  return work;
}

std::string NcclGroup::broadcast_object(const std::string& bytes, int root) {
  return impl_->bootstrap->broadcast_object(bytes, root);
}
std::vector<std::string> NcclGroup::gather_object(const std::string& bytes, int root) {
  return impl_->bootstrap->gather_object(bytes, root);
}
std::vector<std::string> NcclGroup::allgather_object(const std::string& bytes) {
  return impl_->bootstrap->allgather_object(bytes);
}
std::string NcclGroup::scatter_object(const std::vector<std::string>& per_rank, int root) {
  return impl_->bootstrap->scatter_object(per_rank, root);
}

}  // namespace accel
