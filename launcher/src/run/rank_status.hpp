#pragma once
// The record a rank leaves behind when its program fails: written by the per-rank shim into the
// job's run folder as rank<N>.json (atomically: temporary file + rename), read by the supervisor
// to name the first failing rank, its host, how it ended and its last output lines.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace accel::launch {

struct RankStatus {
  int rank = 0;
  int world_size = 1;
  std::string host;
  long pid = 0;
  std::optional<int> exit_code;  // set when the program exited
  std::optional<int> signal;     // set when a signal killed it
  int forwarded_signal = 0;      // signal the shim passed on to the program before it ended
  bool parent_lost = false;      // mpirun/srun vanished and the shim killed the program
  std::int64_t finished_unix_ns = 0;
  std::vector<std::string> last_lines;

  // True when the rank ended on its own (not stopped by the launcher tearing the job down).
  bool failed_by_itself() const { return forwarded_signal == 0 && !parent_lost; }
  // Exit status a shell would report for it: the exit code, or 128 + signal.
  int shell_status() const { return exit_code ? *exit_code : 128 + signal.value_or(0); }
};

// "exited with code 3" / "was killed by signal 9 (SIGKILL)".
std::string describe_end(const RankStatus& status);
// "SIGKILL" for 9, "signal 77" when unknown.
std::string signal_name(int signal);

void write_rank_status(const std::filesystem::path& run_dir, const RankStatus& status);
// Every rank<N>.json in run_dir (unreadable or partial files are skipped).
std::vector<RankStatus> read_rank_statuses(const std::filesystem::path& run_dir);

// The rank that failed first: the earliest one that ended by itself, else the earliest of all.
std::optional<RankStatus> first_failure(const std::vector<RankStatus>& statuses);

}  // namespace accel::launch
