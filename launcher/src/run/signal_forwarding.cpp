#include "run/signal_forwarding.hpp"

#include <fmt/format.h>

#include <fstream>
#include <string>

namespace accel::launch {
namespace {

namespace fs = std::filesystem;

// The signal to pass on for `received`: a SIGTERM that mpirun sends while the launcher is
// handling the user's Ctrl-C becomes that SIGINT again.
int signal_to_forward(int received, const fs::path& run_dir) {
  if (received != SIGTERM) return received;
  std::ifstream in(run_dir / "interrupt");
  int requested = 0;
  if (in >> requested && requested > 0 && requested < NSIG) return requested;
  return received;
}

// A stop the supervisor asks for through the run folder: the user's signal (written to
// "interrupt"), or SIGTERM once another rank has failed (its rank<N>.json exists). 0 = none.
int stop_requested_by_run_dir(const fs::path& run_dir, int own_rank) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(run_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name == "interrupt") return signal_to_forward(SIGTERM, run_dir);
    if (name.starts_with("rank") && name.ends_with(".json") &&
        name != fmt::format("rank{}.json", own_rank)) {
      return SIGTERM;
    }
  }
  return 0;
}

}  // namespace

void SignalForwarder::forward_pending(const SignalPipe& signals) {
  while (const auto signal = signals.next()) {
    if (*signal == SIGINT || *signal == SIGTERM) {
      request_stop(signal_to_forward(*signal, run_dir_));
    } else {
      kill(-program_group_, *signal);
    }
  }
}

void SignalForwarder::check_run_dir() {
  if (stop_signal_ != 0) return;
  if (int requested = stop_requested_by_run_dir(run_dir_, own_rank_)) request_stop(requested);
}

void SignalForwarder::request_stop(int signal) {
  if (stop_signal_ != 0) return;  // one stop request; mpirun's own SIGKILL follows if needed
  stop_signal_ = signal;
  kill(-program_group_, signal);
}

}  // namespace accel::launch
