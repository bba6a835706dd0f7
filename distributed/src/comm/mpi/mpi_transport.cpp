// MpiTransport (see mpi_transport.hpp).
#include "comm/mpi/mpi_transport.hpp"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <climits>

#include "accel/tracking/errors.hpp"
#include "comm/group_registry.hpp"
#include "comm/operation_label.hpp"

namespace accel::detail {
namespace {

constexpr int kObjectTag = 0x4145;  // point-to-point object bytes
constexpr std::size_t kChunkBytes = std::size_t{1}
                                    << 30;  // MPI counts are int: move bytes in chunks

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, static_cast<std::size_t>(length));
}

std::string join_sizes(at::IntArrayRef sizes) {
  std::string out = "[";
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (i != 0) out += ", ";
    out += std::to_string(sizes[i]);
  }
  return out + "]";
}

// Allgather header: dtype, ndim, sizes[kMaxAllgatherDims] -- compared across ranks before moving data.
constexpr int kHeader = 2 + MpiTransport::kMaxAllgatherDims;

// Every rank's header, rank after rank.
std::vector<std::int64_t> exchange_headers(const at::Tensor& input, int size, MPI_Comm comm) {
  std::array<std::int64_t, kHeader> mine{};
  mine[0] = static_cast<std::int64_t>(input.scalar_type());
  mine[1] = input.dim();
  for (int d = 0; d < input.dim(); ++d) mine[2 + d] = input.size(d);
  std::vector<std::int64_t> all(static_cast<std::size_t>(kHeader) * size);
  check_mpi(
      MPI_Allgather(mine.data(), kHeader, MPI_INT64_T, all.data(), kHeader, MPI_INT64_T, comm),
      "MPI_Allgather");
  return all;
}

// Throws unless every rank passed rank 0's dtype and dimensions (but dimension 0).
void check_same_rows(const std::vector<std::int64_t>& all, int size) {
  const auto shape_of = [&](int r) {
    const std::int64_t* h = &all[static_cast<std::size_t>(r) * kHeader];
    std::vector<std::int64_t> s(h + 2, h + 2 + h[1]);
    return fmt::format("{} {}", c10::toString(static_cast<at::ScalarType>(h[0])), join_sizes(s));
  };
  for (int r = 1; r < size; ++r) {
    const std::int64_t* h = &all[static_cast<std::size_t>(r) * kHeader];
    bool same = h[0] == all[0] && h[1] == all[1];
    for (int d = 1; same && d < h[1]; ++d) same = h[2 + d] == all[2 + d];
    if (!same) {
      throw DistributedError(fmt::format(
          "accel: allgather: rank {} passed {} but rank 0 passed {}; only dimension 0 may differ "
          "between ranks (dtype and the other dimensions must match).",
          r, shape_of(r), shape_of(0)));
    }
  }
}

// MPI_Allgatherv of `rows[r]` rows of `row_size` bytes from each rank r into `output`.
void allgather_rows(const at::Tensor& input, at::Tensor& output,
                    const std::vector<std::int64_t>& rows, std::int64_t total_rows,
                    std::int64_t row_size, int rank, MPI_Comm comm) {
  if (row_size > INT_MAX || total_rows > INT_MAX) {
    throw DistributedError(fmt::format(
        "accel: allgather of {} rows of {} bytes exceeds MPI's int counts; split the tensor.",
        total_rows, row_size));
  }
  MPI_Datatype row_type = MPI_DATATYPE_NULL;
  MPI_Type_contiguous(static_cast<int>(row_size), MPI_BYTE, &row_type);
  MPI_Type_commit(&row_type);
  std::vector<int> counts(rows.size());
  std::vector<int> displacements(rows.size());
  int offset = 0;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    counts[r] = static_cast<int>(rows[r]);
    displacements[r] = offset;
    offset += counts[r];
  }
  const int rc = MPI_Allgatherv(input.data_ptr(), counts[rank], row_type, output.data_ptr(),
                                counts.data(), displacements.data(), row_type, comm);
  MPI_Type_free(&row_type);
  check_mpi(rc, "MPI_Allgatherv");
}

}  // namespace

void check_mpi(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    throw DistributedError(fmt::format("accel: {} failed: {}", what, mpi_error_text(rc)));
  }
}

MPI_Datatype reduction_type(at::ScalarType type) {
  switch (type) {
    case at::kFloat:
    case at::kHalf:
    case at::kBFloat16:
      return MPI_FLOAT;
    case at::kDouble:
      return MPI_DOUBLE;
    case at::kChar:
      return MPI_INT8_T;
    case at::kByte:
      return MPI_UINT8_T;
    case at::kShort:
      return MPI_INT16_T;
    case at::kInt:
      return MPI_INT32_T;
    case at::kLong:
      return MPI_INT64_T;
    default:
      return MPI_DATATYPE_NULL;
  }
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      return MPI_SUM;
    case ReduceOp::kMax:
      return MPI_MAX;
    case ReduceOp::kMin:
      return MPI_MIN;
    case ReduceOp::kProduct:
      return MPI_PROD;
  }
  return MPI_SUM;
}

void MpiTransport::open(int rank, int size) {
  rank_ = rank;
  size_ = size;
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &control_), "MPI_Comm_dup");
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
}

void MpiTransport::close() {
  if (mpi_usable()) {
    MPI_Comm_free(&comm_);
    MPI_Comm_free(&control_);
  }
}

// ---- chunked collectives (run on the communication thread, or a caller's) ----

void MpiTransport::allreduce_in_place(void* data, std::int64_t count, MPI_Datatype type,
                                      MPI_Op op) const {
  int type_size = 0;
  MPI_Type_size(type, &type_size);
  const std::int64_t per_chunk = static_cast<std::int64_t>(kChunkBytes) / type_size;
  auto* bytes = static_cast<char*>(data);
  for (std::int64_t done = 0; done < count || (count == 0 && done == 0);) {
    const std::int64_t n = std::min(per_chunk, count - done);
    check_mpi(
        MPI_Allreduce(MPI_IN_PLACE, bytes + done * type_size, static_cast<int>(n), type, op, comm_),
        "MPI_Allreduce");
    done += n;
    if (count == 0) break;
  }
}

void MpiTransport::broadcast_bytes(void* data, std::uint64_t bytes, int root) const {
  auto* p = static_cast<char*>(data);
  for (std::uint64_t done = 0; done < bytes;) {
    const auto n = static_cast<int>(std::min<std::uint64_t>(kChunkBytes, bytes - done));
    check_mpi(MPI_Bcast(p + done, n, MPI_BYTE, root, comm_), "MPI_Bcast");
    done += static_cast<std::uint64_t>(n);
  }
}

void MpiTransport::send_bytes(const std::string& bytes, int to) const {
  std::uint64_t n = bytes.size();
  check_mpi(MPI_Send(&n, 1, MPI_UINT64_T, to, kObjectTag, comm_), "MPI_Send");
  for (std::uint64_t done = 0; done < n;) {
    const auto chunk = static_cast<int>(std::min<std::uint64_t>(kChunkBytes, n - done));
    check_mpi(MPI_Send(bytes.data() + done, chunk, MPI_BYTE, to, kObjectTag, comm_), "MPI_Send");
    done += static_cast<std::uint64_t>(chunk);
  }
}

std::string MpiTransport::receive_bytes(int from) const {
  std::uint64_t n = 0;
  check_mpi(MPI_Recv(&n, 1, MPI_UINT64_T, from, kObjectTag, comm_, MPI_STATUS_IGNORE), "MPI_Recv");
  std::string out(n, '\0');
  for (std::uint64_t done = 0; done < n;) {
    const auto chunk = static_cast<int>(std::min<std::uint64_t>(kChunkBytes, n - done));
    check_mpi(
        MPI_Recv(out.data() + done, chunk, MPI_BYTE, from, kObjectTag, comm_, MPI_STATUS_IGNORE),
        "MPI_Recv");
    done += static_cast<std::uint64_t>(chunk);
  }
  return out;
}

void MpiTransport::barrier() const {
  check_mpi(MPI_Barrier(comm_), "MPI_Barrier");
}

std::vector<at::Tensor> MpiTransport::allgather(const at::Tensor& input) const {
  const std::vector<std::int64_t> all = exchange_headers(input, size_, comm_);
  check_same_rows(all, size_);
  std::vector<std::int64_t> rows(static_cast<std::size_t>(size_));
  std::int64_t total_rows = 0;
  for (int r = 0; r < size_; ++r) {
    rows[r] = all[static_cast<std::size_t>(r) * kHeader + 2];
    total_rows += rows[r];
  }
  std::vector<std::int64_t> out_shape(input.sizes().begin(), input.sizes().end());
  out_shape[0] = total_rows;
  at::Tensor output = torch::empty(out_shape, input.options());
  const std::int64_t row_elems = output.numel() / std::max<std::int64_t>(total_rows, 1);
  const std::int64_t row_size = row_elems * input.element_size();
  if (row_size > 0 && total_rows > 0) {
    allgather_rows(input, output, rows, total_rows, row_size, rank_, comm_);
  }
  auto parts = output.split_with_sizes(rows, 0);
  return std::vector<at::Tensor>(parts.begin(), parts.end());
}

// ---- object collectives ----

void MpiTransport::broadcast_object(std::string& bytes, int root) const {
  std::uint64_t n = bytes.size();
  check_mpi(MPI_Bcast(&n, 1, MPI_UINT64_T, root, comm_), "MPI_Bcast");
  bytes.resize(n);
  broadcast_bytes(bytes.data(), n, root);
}

std::vector<std::string> MpiTransport::gather_object(const std::string& mine, int root) const {
  std::vector<std::string> out;
  if (rank_ != root) {
    send_bytes(mine, root);
    return out;
  }
  out.resize(static_cast<std::size_t>(size_));
  for (int r = 0; r < size_; ++r) {
    out[r] = r == root ? mine : receive_bytes(r);
  }
  return out;
}

std::vector<std::string> MpiTransport::allgather_object(const std::string& mine) const {
  std::vector<std::string> out;
  std::uint64_t n = mine.size();
  std::vector<std::uint64_t> sizes(static_cast<std::size_t>(size_));
  check_mpi(MPI_Allgather(&n, 1, MPI_UINT64_T, sizes.data(), 1, MPI_UINT64_T, comm_),
            "MPI_Allgather");
  std::uint64_t total = 0;
  for (auto s : sizes) total += s;
  if (total > INT_MAX) {
    throw DistributedError(
        fmt::format("accel: allgather_object of {} in total exceeds 2 GiB; send smaller objects.",
                    human_bytes(total)));
  }
  std::vector<int> counts(sizes.size());
  std::vector<int> displacements(sizes.size());
  std::string all(total, '\0');
  int offset = 0;
  for (std::size_t r = 0; r < sizes.size(); ++r) {
    counts[r] = static_cast<int>(sizes[r]);
    displacements[r] = offset;
    offset += counts[r];
  }
  check_mpi(MPI_Allgatherv(mine.data(), static_cast<int>(n), MPI_BYTE, all.data(), counts.data(),
                           displacements.data(), MPI_BYTE, comm_),
            "MPI_Allgatherv");
  for (std::size_t r = 0; r < sizes.size(); ++r) {
    out.push_back(all.substr(static_cast<std::size_t>(displacements[r]), sizes[r]));
  }
  return out;
}

std::string MpiTransport::scatter_object(const std::vector<std::string>& entries, int root,
                                         bool valid) const {
  int ok = valid ? 1 : 0;
  check_mpi(MPI_Bcast(&ok, 1, MPI_INT, root, comm_), "MPI_Bcast");
  if (ok == 0) {
    throw DistributedError(fmt::format(
        "accel: scatter_object: root rank {} did not pass one entry per rank ({}).", root, size_));
  }
  if (rank_ != root) return receive_bytes(root);
  for (int r = 0; r < size_; ++r) {
    if (r != root) send_bytes(entries[r], r);
  }
  return entries[root];
}

}  // namespace accel::detail
