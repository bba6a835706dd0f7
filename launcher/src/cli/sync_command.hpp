#pragma once
// `accel-launch sync PATH... [--timeout S]`: delivers the tracker journals a run left (a journal
// file, a run's project or logging directory, or its .accel_journal folder) into the runs they were
// written for (accel::sync_journal), printing one line per journal. Exit status: 0 when every
// journal was delivered (or had nothing left), 1 when some records remain, 2 for a bad path.
#include <string>
#include <vector>

namespace accel::launch {

int run_sync(const std::vector<std::string>& paths, double timeout_seconds);

}  // namespace accel::launch
