#pragma once
// accel::wandb::FileStream: what the online mode still has to send to W&B's file_stream endpoint,
// and the requests that send it, as wandb-core 0.31.0 builds them (core/internal/filestream;
// shared/research/wandb-formats.md §3):
//
//   {"files": {"wandb-history.jsonl": {"offset": <lines the server has>, "content": [<line>...]},
//              "output.log": {...}, "wandb-events.jsonl": {...},
//              "wandb-summary.json": {"offset": 0, "content": [<the whole summary>]}},
//    "uploaded": [<run files uploaded>], "complete": true, "exitcode": <n>}      (the last only)
//
// Lines wait in order per file; an offset moves on only when the server accepted the request
// that carried its lines (accepted()), so a request that failed is sent again with the same
// offsets and the same lines, and the server, which overwrites by offset, keeps each line once.
// Thread-safety: none (the tracker's worker thread owns it).
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace accel::wandb {

inline constexpr const char* kHistoryFile = "wandb-history.jsonl";
inline constexpr const char* kEventsFile = "wandb-events.jsonl";
inline constexpr const char* kConsoleFile = "output.log";
inline constexpr const char* kSummaryFile = "wandb-summary.json";

class FileStream {
 public:
  // One request: its body, and what accepted() moves on by.
  struct Request {
    nlohmann::json body;
    std::map<std::string, std::size_t> lines;  // per file: lines carried
    bool summary = false;                      // carries the summary as it is now
    uint64_t summary_version = 0;              // which summary it carries
    std::size_t uploaded = 0;                  // names carried in "uploaded"
  };

  // Everything added so far: per line file the lines added, and the summary's version.
  struct Mark {
    std::map<std::string, int64_t> lines;
    uint64_t summary_version = 0;
  };

  // A resumed run: the server already has `lines` lines of file, so its lines continue there
  // (called before any line of it is added).
  void start_at(const std::string& file, int64_t lines);
  // Appends a line to a line file (history, events, console), after the ones waiting.
  void add_line(const std::string& file, std::string line);
  // Replaces the summary (the whole of it: W&B's wandb-summary.json is one line).
  void set_summary(std::string summary);
  // Names a run file uploaded since the last request.
  void add_uploaded(std::string name);

  // Whether anything waits to be sent.
  bool has_pending() const;
  // Lines waiting, over all files, and their bytes (the summary and names not counted).
  std::size_t pending_lines() const;
  std::size_t pending_bytes() const { return pending_bytes_; }
  // What has been added so far, and whether the server has all of what a mark names.
  Mark mark() const;
  bool delivered(const Mark& mark) const;
  // Lines the server has of a file: its next offset.
  int64_t offset(const std::string& file) const;

  // The next request: at most max_lines lines of each file, the summary when it changed, the
  // uploaded names; complete + exitcode when final (then every line must fit: callers send until
  // nothing waits before the final one).
  Request next(std::size_t max_lines, std::optional<int> final_exit_code = std::nullopt) const;
  // The server accepted `request` (the last one next() gave; lines added since then keep
  // waiting: only the carried ones move on).
  void accepted(const Request& request);

 private:
  struct LineFile {
    int64_t offset = 0;  // lines the server has
    std::deque<std::string> waiting;
  };
  std::map<std::string, LineFile> files_;
  std::string summary_;
  uint64_t summary_version_ = 0;  // set_summary calls
  uint64_t summary_sent_ = 0;     // the version the server has
  std::vector<std::string> uploaded_;
  std::size_t pending_bytes_ = 0;
};

}  // namespace accel::wandb
