// Failures of real MPI ranks (tests/launcher/launch_mpi_probe: an accel::Accelerator on the CPU)
// under accel-launch with 2 processes: a rank returning 3 from main, calling exit(3), throwing
// from init_trackers or SIGKILLed while its peer waits in an allreduce ends the whole job within
// 5 s and the summary names that rank; accel-launch SIGKILLed takes every process of the job with
// it; the progress bar draws under accel-launch in a terminal only.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <set>

#include "launch_harness.hpp"

using namespace accel::launch::testing;

namespace {

const std::string kProbe = LAUNCH_PROBE_EXE;
const std::string kMpiProbe = LAUNCH_MPI_PROBE_EXE;

pid_t read_pid(const fs::path& file) {
  std::ifstream in(file);
  pid_t pid = 0;
  in >> pid;
  return pid;
}

// Runs the MPI probe with 2 ranks; a rank fails once both are up (after writing failing.ns).
// seconds_after_failure: from that moment to accel-launch's exit.
struct FailureRun {
  LaunchResult result;
  double seconds_after_failure = -1;
  std::vector<pid_t> rank_pids;
};

FailureRun run_failure(const std::vector<std::string>& probe_args, const TempDir& dir) {
  FailureRun run;
  std::vector<std::string> args = {"--num_processes", "2", kMpiProbe};
  args.insert(args.end(), probe_args.begin(), probe_args.end());
  run.result = run_accel_launch(args, {.timeout_seconds = 90});
  const auto ended = std::chrono::system_clock::now();  // within 10 ms of the exit
  std::ifstream failing(dir / "failing.ns");
  long long failed_ns = 0;
  if (failing >> failed_ns) {
    const auto failed_at =
        std::chrono::system_clock::time_point(std::chrono::nanoseconds(failed_ns));
    run.seconds_after_failure = std::chrono::duration<double>(ended - failed_at).count();
  }
  for (int rank = 0; rank < 2; ++rank) {
    run.rank_pids.push_back(read_pid(dir / ("rank" + std::to_string(rank) + ".pid")));
  }
  return run;
}

void check_no_rank_left(const FailureRun& run) {
  for (pid_t pid : run.rank_pids) {
    INFO("rank PID " << pid);
    CHECK(pid > 0);
    if (pid > 0) {
      CHECK_FALSE(process_running(pid));
      if (process_running(pid)) kill(pid, SIGKILL);  // started by this test
    }
  }
}

}  // namespace

TEST_CASE(
    "a rank that returns 3 or calls exit(3) while its peer is in an allreduce ends the job in 5 s",
    "[launcher][failure]") {
  const std::string how = GENERATE(as<std::string>{}, "return", "exit");
  TempDir dir;
  const FailureRun run = run_failure({how, "1", "3", dir.str()}, dir);
  INFO(how << ":\n" << run.result.err);
  WARN(how << ": job ended " << run.seconds_after_failure << " s after the failure (total "
           << run.result.seconds << " s)");
  CHECK_FALSE(run.result.timed_out);
  CHECK(run.result.exit_status == 3);
  CHECK(run.seconds_after_failure >= 0);
  CHECK(run.seconds_after_failure < 5);
  CHECK(run.result.err.find("accel-launch: job failed: rank 1 (of 2) on host " + host_name() +
                            " exited with code 3") != std::string::npos);
  CHECK(run.result.err.find("| rank 1 gives up with code 3") != std::string::npos);
  CHECK(run.result.err.find("accel-launch exits with rank 1's status 3.") != std::string::npos);
  check_no_rank_left(run);
}

TEST_CASE("rank 0 throwing from init_trackers (its folder cannot be created) ends the job in 5 s",
          "[launcher][failure]") {
  const std::string mode = GENERATE(as<std::string>{}, "trackers", "trackers-caught");
  TempDir dir;
  const FailureRun run = run_failure({mode, dir.str()}, dir);
  INFO(mode << ":\n" << run.result.err);
  WARN(mode << ": job ended " << run.seconds_after_failure << " s after the failure (total "
            << run.result.seconds << " s)");
  CHECK_FALSE(run.result.timed_out);
  CHECK(run.seconds_after_failure >= 0);
  CHECK(run.seconds_after_failure < 5);
  const std::string named = "accel-launch: job failed: rank 0 (of 2) on host " + host_name();
  if (mode == "trackers") {
    CHECK(run.result.exit_status == 128 + SIGABRT);  // the uncaught exception aborts
    CHECK(run.result.err.find(named + " was killed by signal 6 (SIGABRT)") != std::string::npos);
  } else {
    CHECK(run.result.exit_status == 1);  // main caught it and returned 1
    CHECK(run.result.err.find(named + " exited with code 1") != std::string::npos);
    CHECK(run.result.err.find("| error: filesystem error: cannot create directories") !=
          std::string::npos);
  }
  // Its error line is in the summary (after Open MPI's crash backtrace, which is left out there).
  const std::string summary =
      run.result.err.substr(std::min(run.result.err.find(named), run.result.err.size()));
  CHECK(
      summary.find(mode == "trackers"
                       ? "|   what():  filesystem error: cannot create directories: Not a directory"
                       : "| error: filesystem error: cannot create directories: Not a directory") !=
      std::string::npos);
  CHECK(summary.find("not-a-dir/probe") != std::string::npos);
  check_no_rank_left(run);
}

TEST_CASE("a rank SIGKILLed while its peer is in an allreduce ends the job in 5 s",
          "[launcher][failure]") {
  TempDir dir;
  const FailureRun run = run_failure({"kill", "1", dir.str()}, dir);
  INFO(run.result.err);
  WARN("SIGKILL: job ended " << run.seconds_after_failure << " s after the failure (total "
                             << run.result.seconds << " s)");
  CHECK_FALSE(run.result.timed_out);
  CHECK(run.result.exit_status == 128 + SIGKILL);
  CHECK(run.seconds_after_failure < 5);
  CHECK(run.result.err.find("accel-launch: job failed: rank 1 (of 2) on host " + host_name() +
                            " was killed by signal 9 (SIGKILL)") != std::string::npos);
  CHECK(run.result.err.find("| rank 1 gives up with code 0") !=
        std::string::npos);  // its last line
  check_no_rank_left(run);
}

TEST_CASE("accel-launch SIGKILLed takes mpirun, the shims and the ranks with it",
          "[launcher][failure]") {
  const std::string program = GENERATE(as<std::string>{}, "probe", "mpi");
  TempDir dir;
  std::vector<pid_t> job;
  std::vector<pid_t> left;
  double seconds_to_clean = -1;
  std::vector<std::string> args = {"--num_processes", "2"};
  std::vector<std::string> wanted;
  if (program == "probe") {
    args.insert(args.end(), {kProbe, "hang", dir.str(), "graceful"});
    wanted = {"rank0.started", "rank1.started"};
  } else {
    args.insert(args.end(), {kMpiProbe, "return", "-1", "0", dir.str()});  // both allreduce
    wanted = {"rank0.pid", "rank1.pid"};
  }
  auto result = run_accel_launch(
      args, {.timeout_seconds = 90, .while_running = [&](pid_t launcher) {
               REQUIRE(wait_for_files(dir.path(), wanted, 60));
               job = descendants(launcher);
               kill(launcher, SIGKILL);
               const auto killed = std::chrono::steady_clock::now();
               do {
                 left.clear();
                 for (pid_t pid : job) {
                   if (process_running(pid)) left.push_back(pid);
                 }
                 std::this_thread::sleep_for(std::chrono::milliseconds(20));
               } while (!left.empty() &&
                        std::chrono::steady_clock::now() - killed < std::chrono::seconds(5));
               seconds_to_clean =
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
             }});
  WARN(program << ": " << job.size() << " processes under accel-launch, all gone "
               << seconds_to_clean << " s after its SIGKILL");
  CHECK(result.exit_status == 128 + SIGKILL);
  CHECK(job.size() >= 3);  // mpirun and a shim and a program per rank
  std::set<pid_t> ranks;
  for (const char* name : {"rank0.pid", "rank1.pid"}) {
    if (fs::exists(dir / name)) ranks.insert(read_pid(dir / name));
  }
  for (pid_t pid : ranks) CHECK(std::find(job.begin(), job.end(), pid) != job.end());
  CHECK(left.empty());
  for (pid_t pid : left) {
    INFO("left running: " << pid);
    kill(pid, SIGKILL);  // this test started it
  }
}

TEST_CASE("the progress bar draws under accel-launch in a terminal, not into a file",
          "[launcher][bar]") {
  SECTION("in a pseudo-terminal (script)") {
    if (!fs::exists("/usr/bin/script")) {
      WARN("skipped: /usr/bin/script (util-linux) is not installed");
      return;
    }
    const std::string command =
        std::string(ACCEL_LAUNCH_EXE) + " --num_processes 2 " + kMpiProbe + " bar 10";
    auto result = run_command({"/usr/bin/script", "-qc", command, "/dev/null"},
                              {.env = {{"COLUMNS", "90"}}, .timeout_seconds = 90});
    INFO(result.out << result.err);
    CHECK(result.exit_status == 0);
    CHECK(result.out.find("[rank 0] bar enabled=1") != std::string::npos);
    CHECK(result.out.find("[rank 1] bar enabled=0") != std::string::npos);
    CHECK(result.out.find("10/10") != std::string::npos);
    CHECK(result.out.find("\r") != std::string::npos);
  }
  SECTION("under plain mpirun, output into a pipe or a file stays clean") {
    // mpirun gives the ranks a pseudo-terminal even when its own output is a file: isatty alone
    // would draw there.
    std::vector<std::string> argv = {ACCEL_MPIEXEC};
    if (geteuid() == 0) argv.push_back("--allow-run-as-root");
    argv.insert(argv.end(), {"--oversubscribe", "-np", "2", kMpiProbe, "bar", "3"});
    auto result = run_command(argv, {.timeout_seconds = 90});
    INFO(result.out << result.err);
    CHECK(result.exit_status == 0);
    CHECK(result.out == "bar enabled=0\nbar enabled=0\n");
  }
  SECTION("under plain mpirun in a terminal, rank 0 draws") {
    std::string command = std::string(ACCEL_MPIEXEC) +
                          (geteuid() == 0 ? " --allow-run-as-root" : "") +
                          " --oversubscribe -np 2 " + kMpiProbe + " bar 10";
    auto result = run_command({"/usr/bin/script", "-qc", command, "/dev/null"},
                              {.env = {{"COLUMNS", "90"}}, .timeout_seconds = 90});
    INFO(result.out << result.err);
    CHECK(result.exit_status == 0);
    CHECK(result.out.find("bar enabled=1") != std::string::npos);
    CHECK(result.out.find("bar enabled=0") != std::string::npos);
    CHECK(result.out.find("10/10") != std::string::npos);
  }
  SECTION("redirected to a file") {
    auto result =
        run_accel_launch({"--num_processes", "2", kMpiProbe, "bar", "10"}, {.timeout_seconds = 90});
    INFO(result.out << result.err);
    CHECK(result.exit_status == 0);
    CHECK(result.out.find("[rank 0] bar enabled=0") != std::string::npos);
    CHECK(result.out.find("Epoch") == std::string::npos);
    CHECK(result.out.find('\r') == std::string::npos);
  }
}
