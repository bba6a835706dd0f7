// State discovery (see accel/state.hpp): MPI or a plain single process, local ranks from a
// shared-memory split of MPI_COMM_WORLD, device choice, exported environment, and orderly MPI
// shutdown at exit.
#include "accel/state.hpp"

#include <fmt/format.h>
#include <mpi.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

#include "accel/tracking/errors.hpp"
#include "comm/group_registry.hpp"

#if defined(ACCEL_WITH_CUDA)
#include <torch/cuda.h>
#endif

namespace accel {
namespace detail {
namespace {

struct GroupRegistry {
  std::mutex mutex;
  std::uint64_t next_id = 1;
  std::map<std::uint64_t, std::function<void()>> shutdowns;
};

GroupRegistry& registry() {
  static GroupRegistry* instance = new GroupRegistry();  // outlives every static group
  return *instance;
}

}  // namespace

std::uint64_t register_group_shutdown(std::function<void()> shutdown) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  const std::uint64_t id = r.next_id++;
  r.shutdowns.emplace(id, std::move(shutdown));
  return id;
}

void unregister_group_shutdown(std::uint64_t id) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  r.shutdowns.erase(id);
}

void shutdown_all_groups() {
  auto& r = registry();
  std::map<std::uint64_t, std::function<void()>> pending;
  {
    std::lock_guard lock(r.mutex);
    pending.swap(r.shutdowns);
  }
  for (auto it = pending.rbegin(); it != pending.rend(); ++it) it->second();
}

bool mpi_usable() {
  int initialized = 0;
  int finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized != 0 && finalized == 0;
}

}  // namespace detail

namespace {

bool env_is_true(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return false;
  const std::string v(value);
  return v == "1" || v == "true" || v == "TRUE" || v == "yes" || v == "on";
}

// Which launcher variable (if any) says this process is one rank of an MPI job.
const char* launcher_variable() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE",
                           "MV2_COMM_WORLD_RANK", "HYDRA_CONTROL_FD"}) {
    if (std::getenv(name) != nullptr) return name;
  }
  return nullptr;
}

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, static_cast<std::size_t>(length));
}

}  // namespace

// A failed exit (exit status != 0: a non-zero return from main, exit(n)) of an MPI rank ends the
// process at once: MPI_Finalize is collective and would wait for peers that are still computing
// (they may be blocked in a collective waiting for this rank), and the process groups' shutdown
// would wait for this rank's pending collectives. Stdio is flushed; later exit handlers (static
// destructors registered before the State, ~State included) are skipped. mpirun and accel-launch
// see the real exit status and tear the peers down (a rank that ends without MPI_Finalize aborts
// the job). A successful exit finalizes collectively as before.
void end_failed_mpi_rank(int status, void* /*unused*/) {
  if (status == 0 || !detail::mpi_usable()) return;
  std::fflush(nullptr);
  ::_exit(status);
}

struct StateAccess {
  static State& get() {
    static State state;
    // Registered after the State's destructor, so it runs before it.
    static const bool hooked = state.uses_mpi() && ::on_exit(end_failed_mpi_rank, nullptr) == 0;
    (void)hooked;
    return state;
  }
};

const State& State::instance() {
  return StateAccess::get();
}

State::State() {
  int already = 0;
  MPI_Initialized(&already);
  const char* launcher = launcher_variable();
  if (already != 0) {
    int provided = 0;
    MPI_Query_thread(&provided);
    if (provided < MPI_THREAD_MULTIPLE) {
      throw DistributedError(
          "accel: MPI was initialised by the program without MPI_THREAD_MULTIPLE (provided level " +
          std::to_string(provided) +
          "); accel runs collectives on a communication thread. Call MPI_Init_thread with "
          "MPI_THREAD_MULTIPLE, or let accel initialise MPI.");
    }
    uses_mpi_ = true;
  } else if (launcher != nullptr || env_is_true("ACCEL_MPI_SINGLETON")) {
    int provided = 0;
    const int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
    if (rc != MPI_SUCCESS) {
      throw DistributedError(fmt::format(
          "accel: MPI_Init_thread failed ({}) although the launcher variable {} is set. Start the "
          "program with mpirun/accel-launch from the same MPI installation accel was built with.",
          mpi_error_text(rc), launcher != nullptr ? launcher : "ACCEL_MPI_SINGLETON"));
    }
    finalize_mpi_ = true;
    uses_mpi_ = true;
    if (provided < MPI_THREAD_MULTIPLE) {
      MPI_Finalize();
      throw DistributedError(fmt::format(
          "accel: this MPI provides thread level {} but accel needs MPI_THREAD_MULTIPLE ({}). Use "
          "an MPI built with thread support (OpenMPI: --enable-mpi-thread-multiple, the default).",
          provided, static_cast<int>(MPI_THREAD_MULTIPLE)));
    }
  }

  if (uses_mpi_) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size_);
    MPI_Comm node_comm = MPI_COMM_NULL;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node_comm);
    MPI_Comm_rank(node_comm, &local_rank_);
    MPI_Comm_size(node_comm, &local_world_size_);
    // Nodes are numbered by their lowest global rank: node leaders (local rank 0) split off and
    // rank.
    MPI_Comm leaders = MPI_COMM_NULL;
    MPI_Comm_split(MPI_COMM_WORLD, local_rank_ == 0 ? 0 : MPI_UNDEFINED, rank_, &leaders);
    if (local_rank_ == 0) {
      MPI_Comm_rank(leaders, &node_rank_);
      MPI_Comm_size(leaders, &num_nodes_);
      MPI_Comm_free(&leaders);
    }
    MPI_Bcast(&node_rank_, 1, MPI_INT, 0, node_comm);
    MPI_Bcast(&num_nodes_, 1, MPI_INT, 0, node_comm);
    MPI_Comm_free(&node_comm);
  }

#if defined(ACCEL_WITH_CUDA)
  if (!env_is_true("ACCEL_USE_CPU") && torch::cuda::is_available()) {
    const auto count = static_cast<int>(torch::cuda::device_count());
    device_ = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank_ % count));
  }
#endif

  const auto export_default = [](const char* name, int value) {
    setenv(name, std::to_string(value).c_str(), /*overwrite=*/0);
  };
  export_default("RANK", rank_);
  export_default("WORLD_SIZE", world_size_);
  export_default("LOCAL_RANK", local_rank_);
  export_default("LOCAL_WORLD_SIZE", local_world_size_);
  export_default("NODE_RANK", node_rank_);
}

State::~State() {
  detail::shutdown_all_groups();
  if (finalize_mpi_ && detail::mpi_usable()) MPI_Finalize();
}

std::string State::describe() const {
  return fmt::format("rank {}/{} (local {}/{}, node {}/{}) on {}", rank_, world_size_, local_rank_,
                     local_world_size_, node_rank_, num_nodes_, device_.str());
}

}  // namespace accel
