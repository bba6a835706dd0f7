// A small program the launcher tests start under accel-launch. Its rank comes from $RANK (set by
// the per-rank shim). Modes:
//   env <dir>                       write <dir>/rank<R>.env with the variables a launch sets
//   fail <rank> <code> <dir>        print three lines; <rank> exits with <code>, the others wait
//   kill <rank> <dir>               print a line; <rank> SIGKILLs itself, the others wait
//   hang <dir> graceful|stubborn    wait forever; graceful ranks stop on SIGINT/SIGTERM,
//                                   stubborn ones ignore both
//   print <n>                       print n numbered lines to stdout and to stderr
// Waiting ranks write <dir>/rank<R>.started, and <dir>/rank<R>.stopped (the signal number) when
// a signal stops them.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

namespace {

int rank() {
  const char* value = std::getenv("RANK");
  return value ? std::atoi(value) : -1;
}

std::string g_dir;
volatile std::sig_atomic_t g_stop_signal = 0;

void on_stop(int signal) {
  g_stop_signal = signal;
}

void touch(const std::string& path, const std::string& content) {
  std::ofstream(path) << content << '\n';
}

// Waits up to a minute; returns 0 after writing the stop marker when a signal arrives.
int wait_for_stop(bool graceful) {
  std::signal(SIGINT, graceful ? on_stop : SIG_IGN);
  std::signal(SIGTERM, graceful ? on_stop : SIG_IGN);
  touch(g_dir + "/rank" + std::to_string(rank()) + ".started", "1");
  for (int i = 0; i < 600 && g_stop_signal == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (g_stop_signal == 0) return 9;  // nobody stopped us: the test fails on the exit status
  touch(g_dir + "/rank" + std::to_string(rank()) + ".stopped", std::to_string(g_stop_signal));
  std::printf("rank %d stopped by signal %d\n", rank(), static_cast<int>(g_stop_signal));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 64;
  const std::string mode = argv[1];
  if (mode == "env" && argc == 3) {
    std::ofstream out(std::string(argv[2]) + "/rank" + std::to_string(rank()) + ".env");
    for (const char* name :
         {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "ACCELERATE_USE_CPU",
          "ACCELERATE_MIXED_PRECISION", "ACCELERATE_GRADIENT_ACCUMULATION_STEPS",
          "ACCELERATE_DEBUG_MODE", "OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "MASTER_ADDR",
          "MASTER_PORT", "OMPI_COMM_WORLD_SIZE", "SLURM_PROCID"}) {
      const char* value = std::getenv(name);
      out << name << '=' << (value ? value : "<unset>") << '\n';
    }
    std::printf("rank %d of %s ready\n", rank(), std::getenv("WORLD_SIZE"));
    return 0;
  }
  if (mode == "fail" && argc == 5) {
    g_dir = argv[4];
    for (int i = 1; i <= 3; ++i) std::printf("probe line %d from rank %d\n", i, rank());
    std::fflush(stdout);
    if (rank() == std::atoi(argv[2])) {
      std::fprintf(stderr, "rank %d gives up with code %s\n", rank(), argv[3]);
      return std::atoi(argv[3]);
    }
    return wait_for_stop(true);
  }
  if (mode == "kill" && argc == 4) {
    g_dir = argv[3];
    std::printf("rank %d about to be killed\n", rank());
    std::fflush(stdout);
    if (rank() == std::atoi(argv[2])) {
      // Let the other ranks start waiting first.
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      raise(SIGKILL);
    }
    return wait_for_stop(true);
  }
  if (mode == "hang" && argc == 4) {
    g_dir = argv[2];
    return wait_for_stop(std::string(argv[3]) == "graceful");
  }
  if (mode == "print" && argc == 3) {
    for (int i = 1; i <= std::atoi(argv[2]); ++i) {
      std::printf("out %d of rank %d\n", i, rank());
      std::fprintf(stderr, "err %d of rank %d\n", i, rank());
    }
    return 0;
  }
  return 64;
}
