#pragma once
// accel::sync_journal: delivers what a run left in a tracker's journal (records its backend never
// got: the server was down, the run was killed, end_training timed out) into the same run, and ends
// that run with its real final status. `accel-launch sync PATH...` calls it; programs with trackers
// of their own call it with a factory.
//
//   for (auto& journal : accel::find_journals("runs/digits")) {
//     auto result = accel::sync_journal(journal);
//     std::cout << accel::describe(result) << "\n";
//   }
//
// Promises:
//   - Records go out in the order the training loop made them, each once: what the backend
//     acknowledges is marked in the journal as it goes, so an interrupted sync continues where it
//     stopped, and a journal whose every record was delivered is deleted (a second sync sends
//     nothing).
//   - The tracker is recreated from the journal's identity (tracker name, project, logging dir,
//     init_kwargs, and the run it wrote to, from GeneralTracker::resume_info), so the records land
//     in the same run. Credentials come from the environment, as when training; the journal holds
//     none.
//   - The run ends with the status of the journal's finish record; a journal without one (the
//     process died before end_training) ends it failed.
//   - A journal still being written (its training process runs) is refused, not read.
// Thread-safety: one call per journal at a time (the journal's lock enforces it across processes).
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "accel/tracking/general_tracker.hpp"
#include "accel/tracking/registry.hpp"

namespace accel {

struct SyncOptions {
  // Give up (keeping the journal) when the backend has not taken everything by then.
  std::chrono::milliseconds timeout{60'000};
  // Backoff between attempts while the backend is unavailable (doubling up to the max).
  std::chrono::milliseconds retry_initial_delay{100};
  std::chrono::milliseconds retry_max_delay{5'000};
  // Builds the tracker; empty: the registered factory of the journal's tracker name.
  TrackerFactory factory{};
};

struct SyncResult {
  std::filesystem::path journal;
  std::string tracker;             // the tracker's name
  std::string run;                 // where the records went (the tracker's resume_info), as JSON
  uint64_t records = 0;            // records delivered by this call (config, log and finish)
  uint64_t logs = 0;               // of those, log records
  uint64_t remaining = 0;          // records still in the journal afterwards
  std::optional<RunStatus> ended;  // the status the run was ended with, if it was
  bool complete = false;           // everything is delivered and the journal is gone
  std::string error;               // why it stopped early; empty when complete
};

// The journal files under path: path itself when it is a file; else every "*.journal" below it (a
// project or logging directory, or its .accel_journal folder), sorted. Throws accel::InvalidValue
// when path does not exist.
std::vector<std::filesystem::path> find_journals(const std::filesystem::path& path);

// Delivers one journal. Errors of the backend or the tracker are reported in the result (the
// journal is kept); a file that is not a journal, or is in use, throws accel::TrackerError.
SyncResult sync_journal(const std::filesystem::path& journal, const SyncOptions& options = {});

// One line that says what sync_journal did, for people.
std::string describe(const SyncResult& result);

}  // namespace accel
