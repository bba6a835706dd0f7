#include "run/failure_summary.hpp"

#include <fmt/format.h>

namespace accel::launch {
namespace {

constexpr const char* kRule =
    "========================================================================\n";

std::string indent_lines(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines) text += fmt::format("    | {}\n", line);
  return text;
}

// The rank mpirun named in its abort report, as a RankStatus.
RankStatus reported_rank(const MpirunFailureReport& report, int launcher_status) {
  RankStatus reported;
  reported.rank = *report.rank;
  reported.host = report.host;
  reported.exit_code = report.exit_code;
  reported.signal = report.signal;
  if (!reported.exit_code && !reported.signal) reported.exit_code = launcher_status;
  return reported;
}

}  // namespace

std::string failure_summary(const RankStatus& failed, const std::vector<RankStatus>& all,
                            const SupervisorOptions& options, int exit_status) {
  std::string text = kRule;
  text += fmt::format("accel-launch: job failed: rank {} (of {}) on host {} {}\n", failed.rank,
                      options.num_processes, failed.host.empty() ? "?" : failed.host,
                      describe_end(failed));
  text += fmt::format("  program: {}\n", options.program_line);
  if (failed.last_lines.empty()) {
    text += fmt::format("  rank {} printed nothing.\n", failed.rank);
  } else {
    text += fmt::format("  last {} lines of rank {}:\n", failed.last_lines.size(), failed.rank);
    text += indent_lines(failed.last_lines);
  }
  int stopped = 0;
  for (const auto& status : all) stopped += (status.rank != failed.rank);
  text +=
      fmt::format("  every other rank was stopped ({} of them ended by the teardown);\n", stopped);
  text += fmt::format("  accel-launch exits with rank {}'s status {}.\n", failed.rank, exit_status);
  text += kRule;
  return text;
}

UnseenFailure unseen_failure_summary(const MpirunArgv& job, const SupervisorOptions& options,
                                     const MpirunMessageFilter& filter, int launcher_status) {
  UnseenFailure summary{kRule, launcher_status};
  const MpirunFailureReport& report = filter.failure();
  if (filter.not_enough_slots()) {
    summary.text += fmt::format(
        "accel-launch: mpirun refused to start {} processes: there are fewer slots (CPU cores) "
        "than that. Pass --oversubscribe to run more processes than cores, lower "
        "--num_processes, or add machines with --mpirun_hostfile.\n",
        options.num_processes);
  } else if (report.rank) {
    const RankStatus reported = reported_rank(report, launcher_status);
    summary.status = reported.shell_status();
    summary.text += fmt::format(
        "accel-launch: job failed: rank {} (of {}) on host {} {}\n", reported.rank,
        options.num_processes, reported.host.empty() ? "?" : reported.host, describe_end(reported));
    summary.text += fmt::format(
        "  program: {}\n  (its output is above; the rank ran where its status "
        "file is not visible)\n",
        options.program_line);
  } else {
    summary.text += fmt::format(
        "accel-launch: {} failed with exit status {} before any rank reported; "
        "its messages are above (rerun with --debug for all of them)\n",
        job.via_slurm ? "srun" : "mpirun", launcher_status);
  }
  summary.text += kRule;
  return summary;
}

}  // namespace accel::launch
