// An MPI program (accel::Accelerator on the CPU) the failure tests start under accel-launch. Every
// rank writes <dir>/rank<R>.pid (its PID) once its Accelerator exists. Modes:
//   return <rank> <code> <dir>   <rank> returns <code> from main; the others allreduce until
//   stopped exit <rank> <code> <dir>     <rank> calls exit(<code>); the others allreduce until
//   stopped kill <rank> <dir>            <rank> SIGKILLs itself; the others allreduce until stopped
//   trackers <dir>               every rank calls init_trackers with the tracker "folder" and the
//                                project folder <dir>/project, which holds a regular file
//                                "not-a-dir": on rank 0 alone (the tracker is main-process only)
//                                its factory cannot create <project>/not-a-dir/probe, and the
//                                exception ends main; rank 1 waits in init_trackers or allreduces
//   trackers-caught <dir>        the same, but main catches the exception, prints "error: <what>"
//                                and returns 1
//   bar <steps>                  a ProgressBar over <steps> steps of 20 ms (drawn by rank 0 when
//                                its defaults say so), then "bar enabled=<0|1>"
// The failing rank writes <dir>/failing.ns (wall time in ns) just before it fails.
// A rank left allreducing for 60 s returns 9 (the test then fails on the exit status).
#include <unistd.h>

#include <accel/accelerator.hpp>
#include <accel/tracking/general_tracker.hpp>
#include <accel/tracking/progress_bar.hpp>
#include <accel/tracking/registry.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace {

// <dir>/failing.ns: the wall time (ns since the epoch) just before this rank fails.
void write_failure_time(const std::string& dir) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  std::ofstream(dir + "/failing.ns")
      << std::chrono::duration_cast<std::chrono::nanoseconds>(now).count() << '\n';
}

void write_pid(const std::string& dir, int rank) {
  std::ofstream(dir + "/rank" + std::to_string(rank) + ".pid") << getpid() << '\n';
}

int allreduce_until_stopped(accel::Accelerator& accelerator) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto tensor = torch::ones({4});
  while (std::chrono::steady_clock::now() < deadline) {
    accelerator.reduce(tensor);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return 9;
}

// A tracker that writes into its own folder, created when the tracker is.
class FolderTracker : public accel::GeneralTracker {
 public:
  explicit FolderTracker(const accel::TrackerInit& init) {
    std::filesystem::create_directories(init.logging_dir / "not-a-dir" / init.run_name);  // throws
  }
  std::string name() const override { return "folder"; }
  bool requires_logging_directory() const override { return true; }
  void store_init_configuration(const nlohmann::json&) override {}
  void log(const accel::Values&, std::optional<int64_t>) override {}
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return 64;
  const std::string mode = argv[1];
  accel::AcceleratorOptions options;
  options.cpu = true;
  if (mode == "bar") {
    accel::Accelerator accelerator(options);
    const int steps = std::atoi(argv[2]);
    accel::ProgressBarOptions bar_options;
    bar_options.is_main_process = accelerator.is_main_process();
    bar_options.refresh_interval = std::chrono::milliseconds(0);
    accel::ProgressBar bar(bar_options);
    bar.start_epoch(0, steps);
    for (int i = 0; i < steps; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      bar.update();
    }
    bar.close();
    std::printf("bar enabled=%d\n", bar.enabled() ? 1 : 0);
    return 0;
  }
  if ((mode == "trackers" || mode == "trackers-caught") && argc == 3) {
    const std::string dir = argv[2];
    std::filesystem::create_directories(dir + "/project");
    std::ofstream(dir + "/project/not-a-dir") << "a regular file\n";
    accel::TrackerRegistration registration;
    registration.name = "folder";
    registration.factory = [](const accel::TrackerInit& init) {
      return std::make_unique<FolderTracker>(init);
    };
    registration.requires_logging_directory = true;
    accel::register_tracker(std::move(registration));
    options.log_with = {"folder"};
    options.project_dir = dir + "/project";
    accel::Accelerator accelerator(options);
    write_pid(dir, accelerator.process_index());
    std::printf("rank %d initialises its trackers\n", accelerator.process_index());
    std::fflush(stdout);
    if (accelerator.is_main_process()) write_failure_time(dir);  // its init_trackers fails
    if (mode == "trackers") {
      accelerator.init_trackers("probe");
      return allreduce_until_stopped(accelerator);
    }
    try {
      accelerator.init_trackers("probe");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return 1;
    }
    return allreduce_until_stopped(accelerator);
  }
  const bool with_code = mode == "return" || mode == "exit";
  if (!(with_code ? argc == 5 : mode == "kill" && argc == 4)) return 64;
  const int failing = std::atoi(argv[2]);
  const int code = with_code ? std::atoi(argv[3]) : 0;
  const std::string dir = argv[with_code ? 4 : 3];
  accel::Accelerator accelerator(options);
  const int rank = accelerator.process_index();
  write_pid(dir, rank);
  auto tensor = torch::ones({4});
  accelerator.reduce(tensor);  // everyone is up
  std::printf("probe line from rank %d\n", rank);
  std::fflush(stdout);
  if (rank != failing) return allreduce_until_stopped(accelerator);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the others wait in an allreduce
  std::fprintf(stderr, "rank %d gives up with code %d\n", rank, code);
  std::fflush(stderr);
  write_failure_time(dir);
  if (mode == "exit") std::exit(code);
  if (mode == "kill") raise(SIGKILL);
  return code;
}
