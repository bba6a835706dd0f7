#pragma once
// accel::State: who this process is in the job (rank, world size, local rank, node count, device).
//
// One per process, created on first use of State::instance() and torn down at process exit.
// Discovery:
//   * Started by a launcher (mpirun/mpiexec/accel-launch: OMPI_COMM_WORLD_SIZE; Slurm `srun --mpi=pmix`:
//     PMIX_RANK / SLURM_PROCID; MPICH/Hydra: PMI_RANK): MPI_Init_thread(MPI_THREAD_MULTIPLE) is called
//     (unless the program already initialised MPI itself; then accel uses it and does not finalise it).
//     rank/world_size come from MPI_COMM_WORLD, the local rank from MPI_Comm_split_type(SHARED), so they
//     are right whatever the launcher's environment looks like. MPI must provide MPI_THREAD_MULTIPLE
//     (collectives run on a communication thread per process group); otherwise accel::DistributedError.
//   * No launcher at all: a single process (rank 0 of 1). MPI is NOT initialised, so no MPI daemon is
//     needed; every collective is then a local operation. ACCEL_MPI_SINGLETON=1 forces MPI singleton
//     initialisation instead (for programs that call MPI themselves).
// After discovery the environment variables Accelerate/torch users read are exported (without
// overwriting values already set): RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, NODE_RANK.
// Device: cuda:<local_rank % device_count> when CUDA is built in and a GPU is visible (and ACCEL_USE_CPU
// is not "1"/"true"), else cpu.
// At exit: every live process group is shut down (communication threads joined, communicators freed)
// and MPI_Finalize is called, if accel initialised MPI.
// Thread-safety: instance() is safe from any thread; the accessors are const and never change.
#include <torch/types.h>

#include <string>

namespace accel {

class State {
 public:
  // The process-wide state, initialising MPI on first call. Throws accel::DistributedError when MPI
  // cannot be initialised (message names the launcher environment that was found and what to do).
  static const State& instance();

  int rank() const { return rank_; }                          // global rank, 0..world_size-1
  int world_size() const { return world_size_; }              // number of processes in the job
  int local_rank() const { return local_rank_; }              // rank among processes on this node
  int local_world_size() const { return local_world_size_; }  // processes on this node
  int num_nodes() const { return num_nodes_; }                // distinct nodes in the job
  int node_rank() const { return node_rank_; }                // index of this node, 0..num_nodes-1
  torch::Device device() const { return device_; }            // where this rank computes
  bool is_main_process() const { return rank_ == 0; }
  bool is_local_main_process() const { return local_rank_ == 0; }
  bool is_distributed() const { return world_size_ > 1; }
  // True when MPI was initialised (by accel or by the program); false in the no-launcher single process.
  bool uses_mpi() const { return uses_mpi_; }
  // "rank 1/4 (local 1/2, node 0/2) on cpu": for log lines and error messages.
  std::string describe() const;

  State(const State&) = delete;
  State& operator=(const State&) = delete;

 private:
  State();
  ~State();
  friend struct StateAccess;  // lets the implementation own the singleton

  int rank_ = 0;
  int world_size_ = 1;
  int local_rank_ = 0;
  int local_world_size_ = 1;
  int num_nodes_ = 1;
  int node_rank_ = 0;
  torch::Device device_ = torch::kCPU;
  bool uses_mpi_ = false;
  bool finalize_mpi_ = false;  // accel called MPI_Init_thread, so accel calls MPI_Finalize
};

}  // namespace accel
