// The mpirun/srun command and environment built for a plan.
#include "plan/mpirun_argv.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>

using namespace accel::launch;

namespace {

JobTools tools(bool root = false) {
  JobTools t;
  t.launcher = "/usr/bin/mpirun";
  t.self = "/opt/accel/bin/accel-launch";
  t.program = "/home/me/train";
  t.run_dir = "/tmp/accel-launch-abc";
  t.running_as_root = root;
  return t;
}

}  // namespace

TEST_CASE("the environment matches what accelerate launch sets", "[launcher]") {
  LaunchPlan plan;
  plan.use_cpu = false;
  plan.mixed_precision = "fp16";
  plan.gpu_ids = "0, 2";
  plan.debug = true;
  plan.gradient_accumulation_steps = 8;
  plan.num_cpu_threads_per_process = 6;
  plan.main_process_ip = "10.1.1.1";
  plan.main_process_port = 1234;
  EnvironmentList expected = {{"ACCELERATE_USE_CPU", "False"},
                              {"ACCELERATE_MIXED_PRECISION", "fp16"},
                              {"ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "8"},
                              {"ACCELERATE_DEBUG_MODE", "true"},
                              {"OMP_NUM_THREADS", "6"},
                              {"CUDA_VISIBLE_DEVICES", "0,2"},
                              {"MASTER_ADDR", "10.1.1.1"},
                              {"MASTER_PORT", "1234"}};
  CHECK(rank_environment(plan) == expected);
  plan.use_cpu = true;  // CPU runs leave the GPUs alone
  for (const auto& [name, value] : rank_environment(plan)) CHECK(name != "CUDA_VISIBLE_DEVICES");
}

TEST_CASE("mpirun command: process count, binding, root flag, hostfile, shim", "[launcher]") {
  LaunchPlan plan;
  plan.num_processes = 4;
  plan.num_machines = 2;
  plan.hostfile = "/hosts";
  plan.extra_mpirun_args = {"--mca", "btl", "tcp,self"};
  plan.program_args = {"--epochs", "3"};
  plan.log_dir = "/logs";
  plan.tee = 1;
  MpirunArgv job = build_mpirun_argv(plan, tools(/*root=*/false));
  const std::string line = shell_command_line(job.argv);
  CHECK(
      line ==
      "/usr/bin/mpirun -np 4 --hostfile /hosts --npernode 2 --bind-to none "
      "-x ACCELERATE_USE_CPU=False -x ACCELERATE_MIXED_PRECISION=no -x OMP_NUM_THREADS=1 "
      "--mca btl tcp,self /opt/accel/bin/accel-launch --rank-shim --run-dir /tmp/accel-launch-abc "
      "--prefix --log-dir /logs --tee 1 -- /home/me/train --epochs 3");
  CHECK_FALSE(job.via_slurm);

  plan = LaunchPlan{};
  plan.oversubscribe = true;
  job = build_mpirun_argv(plan, tools(/*root=*/true));
  CHECK(
      shell_command_line(job.argv) ==
      "/usr/bin/mpirun -np 1 --allow-run-as-root --bind-to none --oversubscribe "
      "-x ACCELERATE_USE_CPU=False -x ACCELERATE_MIXED_PRECISION=no -x OMP_NUM_THREADS=1 "
      "/opt/accel/bin/accel-launch --rank-shim --run-dir /tmp/accel-launch-abc -- /home/me/train");
}

TEST_CASE("srun command: pmix, task count, kill on bad exit, environment exported", "[launcher]") {
  LaunchPlan plan;
  plan.use_slurm = true;
  plan.num_processes = 8;
  plan.num_machines = 2;
  JobTools t = tools();
  t.launcher = "/usr/bin/srun";
  MpirunArgv job = build_mpirun_argv(plan, t);
  CHECK(job.via_slurm);
  CHECK(shell_command_line(job.argv) ==
        "/usr/bin/srun --mpi=pmix --ntasks=8 --nodes=2 --kill-on-bad-exit=1 --export=ALL "
        "/opt/accel/bin/accel-launch --rank-shim --run-dir /tmp/accel-launch-abc --prefix -- "
        "/home/me/train");
  CHECK(job.environment.front().first == "ACCELERATE_USE_CPU");
}

TEST_CASE("shell_command_line quotes what a shell would split", "[launcher]") {
  CHECK(shell_command_line({"a", "b c", "it's", ""}) == "a 'b c' 'it'\\''s' ''");
}

TEST_CASE("the progress bar variables follow accel-launch's stdout: terminal or not",
          "[launcher]") {
  // Not a terminal (a pipe): the ranks are told not to draw.
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  CHECK(console_environment(fds[1], 9) == EnvironmentList{{"ACCEL_PROGRESS_BAR", "0"}});
  close(fds[0]);
  close(fds[1]);

  // A pseudo-terminal 120 columns wide: draw, 120 less the "[rank 0] " prefix.
  const int master = posix_openpt(O_RDWR | O_NOCTTY);
  REQUIRE(master >= 0);
  REQUIRE(grantpt(master) == 0);
  REQUIRE(unlockpt(master) == 0);
  const int terminal = open(ptsname(master), O_RDWR | O_NOCTTY);
  REQUIRE(terminal >= 0);
  winsize size{};
  size.ws_col = 120;
  size.ws_row = 40;
  REQUIRE(ioctl(terminal, TIOCSWINSZ, &size) == 0);
  CHECK(console_environment(terminal, 9) ==
        EnvironmentList{{"ACCEL_PROGRESS_BAR", "1"}, {"ACCEL_PROGRESS_BAR_COLUMNS", "111"}});
  CHECK(console_environment(terminal, 0) ==
        EnvironmentList{{"ACCEL_PROGRESS_BAR", "1"}, {"ACCEL_PROGRESS_BAR_COLUMNS", "120"}});
  close(terminal);
  close(master);

  // Exported with -x when the launch passes its stdout.
  LaunchPlan plan;
  plan.num_processes = 2;
  plan.program = "/home/me/train";
  JobTools with_console = tools();
  REQUIRE(pipe(fds) == 0);
  with_console.console_fd = fds[1];
  const std::string line = shell_command_line(build_mpirun_argv(plan, with_console).argv);
  CHECK(line.find("-x ACCEL_PROGRESS_BAR=0 ") != std::string::npos);
  close(fds[0]);
  close(fds[1]);
}
