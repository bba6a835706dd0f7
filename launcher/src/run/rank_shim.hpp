#pragma once
// The per-rank shim: mpirun (or srun) starts `accel-launch --rank-shim ... -- program args` once
// per rank. The shim
//   - exports RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE from the MPI/Slurm rank variables;
//   - runs the program in its own process group, relaying its stdout/stderr line by line
//     (prefixed "[rank N] " when asked) and copying them to per-rank log files with --log-dir;
//   - passes one stop request on to the program (its process group): the user's signal as soon as
//     the supervisor writes it to <run-dir>/interrupt, SIGTERM as soon as another rank's failure
//     record appears there (both checked every 100 ms), or the SIGINT/SIGTERM mpirun/srun sends;
//     SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 are always passed on;
//   - kills the program when mpirun/srun disappears (mpirun SIGKILLs the shim, or the supervisor
//     kills mpirun);
//   - when the program fails, writes <run-dir>/rank<N>.json (see rank_status.hpp) and ends the
//     same way the program did (same exit code, or the same signal), so mpirun sees the truth.
//
// Arguments: --run-dir DIR [--prefix] [--log-dir DIR --tee 0..3] -- program [args...]
namespace accel::launch {

inline constexpr const char* kRankShimFlag = "--rank-shim";

// Runs the shim with the arguments that follow --rank-shim. Returns the exit status to end
// with (or does not return when the program was killed by a signal: the shim re-raises it).
int run_rank_shim(int argc, char** argv);

}  // namespace accel::launch
