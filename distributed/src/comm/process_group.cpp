// ProcessGroup helpers shared by the backends: op names, the timeout setting, the process-wide groups.
#include "accel/process_group.hpp"

#include <torch/torch.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

#include "accel/mpi_group.hpp"
#include "accel/state.hpp"
#include "accel/tracking/errors.hpp"

#if defined(ACCEL_WITH_CUDA)
#include "accel/nccl_group.hpp"
#endif

namespace accel {

std::string_view to_string(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAvg:
      return "avg";
    case ReduceOp::kMax:
      return "max";
    case ReduceOp::kMin:
      return "min";
    case ReduceOp::kProduct:
      return "product";
  }
  return "unknown";
}

std::chrono::milliseconds collective_timeout_from_env() {
  constexpr std::chrono::milliseconds kDefault{30LL * 60 * 1000};
  const char* value = std::getenv("ACCEL_COLLECTIVE_TIMEOUT");
  if (value == nullptr || *value == '\0') return kDefault;
  char* end = nullptr;
  errno = 0;
  const double seconds = std::strtod(value, &end);
  if (errno != 0 || end == value || *end != '\0' || !std::isfinite(seconds) || seconds <= 0) {
    throw InvalidValue(
        "ACCEL_COLLECTIVE_TIMEOUT='" + std::string(value) +
        "' is not a positive number of seconds; set e.g. ACCEL_COLLECTIVE_TIMEOUT=600 "
        "(10 minutes) or unset it for the default of 1800.");
  }
  return std::chrono::milliseconds(static_cast<long long>(std::ceil(seconds * 1000.0)));
}

at::Tensor ProcessGroup::allocate_reduction_buffer(std::int64_t numel, at::ScalarType dtype) {
  if (numel < 0) {
    throw InvalidValue("ProcessGroup::allocate_reduction_buffer: numel is " +
                       std::to_string(numel) + "; pass a count of elements >= 0.");
  }
  return torch::zeros({numel}, torch::TensorOptions().dtype(dtype).device(device()));
}

std::shared_ptr<ProcessGroup> cpu_process_group() {
  static const std::shared_ptr<ProcessGroup> group = std::make_shared<MpiGroup>();
  return group;
}

std::shared_ptr<ProcessGroup> default_process_group() {
  static const std::shared_ptr<ProcessGroup> group = []() -> std::shared_ptr<ProcessGroup> {
    const State& state = State::instance();
#if defined(ACCEL_WITH_CUDA)
    if (state.device().is_cuda()) {
      return std::make_shared<NcclGroup>(cpu_process_group(), state.device());
    }
#endif
    (void)state;
    return cpu_process_group();
  }();
  return group;
}

}  // namespace accel
