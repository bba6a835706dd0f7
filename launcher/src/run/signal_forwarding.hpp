#pragma once
// SignalForwarder: how the rank shim passes signals and stop requests on to its program's process
// group (see rank_shim.hpp). One stop request is passed on, whichever comes first: the
// SIGINT/SIGTERM the shim receives (a SIGTERM that mpirun sends while the supervisor handles the
// user's Ctrl-C becomes that SIGINT again), the user's signal written to <run-dir>/interrupt, or
// SIGTERM once another rank's rank<N>.json appears there; mpirun's own SIGKILL follows if needed.
// SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 are always passed on. Not thread-safe.
#include <sys/types.h>

#include <csignal>
#include <filesystem>

#include "run/signal_pipe.hpp"

namespace accel::launch {

// The signals the shim catches and passes on.
inline constexpr int kForwardedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

class SignalForwarder {
 public:
  SignalForwarder(pid_t program_group, std::filesystem::path run_dir, int own_rank)
      : program_group_(program_group), run_dir_(std::move(run_dir)), own_rank_(own_rank) {}

  // Passes on every signal pending in `signals`.
  void forward_pending(const SignalPipe& signals);
  // Passes on the stop the supervisor asks for through the run folder, if any.
  void check_run_dir();
  // The stop request passed on to the program; 0 = none.
  int stop_signal() const { return stop_signal_; }

 private:
  void request_stop(int signal);

  pid_t program_group_;
  std::filesystem::path run_dir_;
  int own_rank_;
  int stop_signal_ = 0;
};

}  // namespace accel::launch
