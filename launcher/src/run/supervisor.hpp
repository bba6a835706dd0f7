#pragma once
// Running a job and watching it until it ends.
//
// The supervisor starts mpirun/srun in its own process group (so a terminal's Ctrl-C reaches
// only accel-launch), relays its stderr (holding back mpirun's own abort reports), and
//   - on the first SIGINT/SIGTERM/SIGHUP writes the signal to <run-dir>/interrupt, which every
//     local shim passes on to its program within 100 ms (graceful stop); after
//     kGracefulStopSeconds it sends SIGTERM to mpirun/srun, which stops the remaining ranks (on
//     other machines, too) and SIGKILLs them a second later; a second signal SIGKILLs the job;
//   - watches the run folder: once a rank has failed, the other local shims stop their programs
//     with SIGTERM and mpirun aborts the job (SIGTERM, then SIGKILL one second later); the job must
//     be gone within kTeardownSeconds, else it is SIGKILLed;
//   - prints a summary naming the first failing rank, its host, its exit code or signal and its
//     last output lines, and returns that rank's exit status (128 + signal for a signal).
// Not thread-safe; call once per process (it installs signal handlers).
#include <filesystem>
#include <string>

#include "plan/mpirun_argv.hpp"

namespace accel::launch {

inline constexpr int kGracefulStopSeconds = 5;
inline constexpr int kTeardownSeconds = 9;

struct SupervisorOptions {
  std::filesystem::path run_dir;
  int num_processes = 1;
  std::string program_line;  // the program and its arguments, for the summary
  bool debug = false;        // show mpirun's own reports too
};

// Returns the exit status accel-launch should end with.
int supervise(const MpirunArgv& job, const SupervisorOptions& options);

}  // namespace accel::launch
