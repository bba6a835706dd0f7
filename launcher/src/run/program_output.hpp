#pragma once
// ProgramOutput: the rank shim's relay of its program's stdout and stderr. Each stream is relayed
// line by line to the shim's own stdout/stderr (each line after a prefix such as "[rank 3] " when
// one is given) and copied to a per-rank log file when one is open ('\r' redraws left out); the
// last lines of both are kept for the rank's failure record. Not thread-safe: it belongs to the
// shim's poll loop.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "run/output_lines.hpp"

namespace accel::launch {

class ProgramOutput {
 public:
  static constexpr int kStdout = 0;
  static constexpr int kStderr = 1;

  // Takes the read ends of the program's stdout and stderr pipes (closed at their end).
  ProgramOutput(int stdout_fd, int stderr_fd, std::string prefix);
  ~ProgramOutput();
  ProgramOutput(const ProgramOutput&) = delete;
  ProgramOutput& operator=(const ProgramOutput&) = delete;

  // Creates log_dir and opens rank<N>.stdout.log there (tee bit 1) and rank<N>.stderr.log (bit 2).
  void open_logs(const std::filesystem::path& log_dir, int tee, int rank);
  // The read end of kStdout or kStderr, for poll(); -1 once that stream has ended.
  int fd(int stream) const { return streams_[stream].from; }
  // Relays what is available on the stream (closing it at its end).
  void pump(int stream) { pump(streams_[stream]); }
  // Relays the output still buffered in the pipes, then closes them. Does not wait: the
  // program's own children may keep the pipes open.
  void drain();
  std::vector<std::string> last_lines() const { return last_.lines(); }

 private:
  // One relayed stream of the program (stdout or stderr).
  struct Stream {
    int from = -1;  // read end of the program's pipe; -1 once closed
    int to = -1;    // our own stdout/stderr
    std::ofstream log;
    LineSplitter splitter;
  };

  void emit(Stream& stream, const std::vector<std::string>& lines);
  // Reads what is available; returns false at end of stream.
  bool pump(Stream& stream);
  void finish(Stream& stream);

  std::string prefix_;
  LastLines last_;
  Stream streams_[2];
};

}  // namespace accel::launch
