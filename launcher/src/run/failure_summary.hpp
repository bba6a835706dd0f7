#pragma once
// What accel-launch prints on stderr when a job fails: a block between two rules of '=' naming
// the failing rank, its host, how it ended and where to look. Pure text; the supervisor writes it.
#include <string>
#include <vector>

#include "plan/mpirun_argv.hpp"
#include "run/mpirun_messages.hpp"
#include "run/rank_status.hpp"
#include "run/supervisor.hpp"

namespace accel::launch {

// A rank left its failure record: names it, how it ended and its last output lines, and says
// that accel-launch exits with `exit_status`.
std::string failure_summary(const RankStatus& failed, const std::vector<RankStatus>& all,
                            const SupervisorOptions& options, int exit_status);

// No failure record is visible: the failure happened on a machine whose run folder we cannot
// see, or before any rank started. Built from what mpirun/srun reported (`filter`) and its own
// exit status.
struct UnseenFailure {
  std::string text;
  int status = 0;  // the failing rank's shell status when mpirun named it, else launcher_status
};
UnseenFailure unseen_failure_summary(const MpirunArgv& job, const SupervisorOptions& options,
                                     const MpirunMessageFilter& filter, int launcher_status);

}  // namespace accel::launch
