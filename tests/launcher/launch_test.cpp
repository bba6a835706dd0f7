// Real launches through the built accel-launch (mpirun underneath) of tests/launcher/launch_probe
// with 2 and 3 processes: what the ranks see, what the user sees when a rank fails or the job is
// interrupted, and how long the teardown takes.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>

#include "launch_harness.hpp"
#include "python.hpp"

using namespace accel::launch::testing;

namespace {

const std::string kProbe = LAUNCH_PROBE_EXE;

std::string rank_file(int rank, const char* suffix) {
  return "rank" + std::to_string(rank) + suffix;
}

// accel-launch with np ranks of the probe's "hang" mode (`behaviour`: graceful or stubborn, see
// launch_probe.cpp) writing into dir; signal(pid of accel-launch) runs once every rank has started.
LaunchResult launch_hanging_ranks(int np, const TempDir& dir, const std::string& behaviour,
                                  const std::function<void(pid_t)>& signal) {
  std::vector<std::string> started;
  for (int rank = 0; rank < np; ++rank) started.push_back(rank_file(rank, ".started"));
  return run_accel_launch(
      {"--num_processes", std::to_string(np), kProbe, "hang", dir.str(), behaviour},
      {.while_running = [&](pid_t pid) {
        REQUIRE(wait_for_files(dir.path(), started, 20));
        signal(pid);
      }});
}

}  // namespace

TEST_CASE("every rank sees its rank and the environment accelerate launch sets", "[launcher]") {
  const int np = GENERATE(2, 3);
  TempDir dir;
  auto result =
      run_accel_launch({"--num_processes", std::to_string(np), "--mixed_precision", "bf16",
                        "--gradient_accumulation_steps", "4", "--num_cpu_threads_per_process", "2",
                        "--main_process_port", "29611", kProbe, "env", dir.str()});
  INFO(result.err);
  REQUIRE(result.exit_status == 0);
  for (int rank = 0; rank < np; ++rank) {
    auto env = read_env_file(dir / rank_file(rank, ".env"));
    CHECK(env["RANK"] == std::to_string(rank));
    CHECK(env["LOCAL_RANK"] == std::to_string(rank));
    CHECK(env["WORLD_SIZE"] == std::to_string(np));
    CHECK(env["LOCAL_WORLD_SIZE"] == std::to_string(np));
    CHECK(env["OMPI_COMM_WORLD_SIZE"] == std::to_string(np));
    CHECK(env["ACCELERATE_MIXED_PRECISION"] == "bf16");
    CHECK(env["ACCELERATE_USE_CPU"] == "True");  // no GPU flag: CPU here
    CHECK(env["ACCELERATE_GRADIENT_ACCUMULATION_STEPS"] == "4");
    CHECK(env["ACCELERATE_DEBUG_MODE"] == "<unset>");
    CHECK(env["OMP_NUM_THREADS"] == "2");
    CHECK(env["MASTER_ADDR"] == "127.0.0.1");
    CHECK(env["MASTER_PORT"] == "29611");
    // Output is prefixed with the rank that printed it.
    CHECK(result.out.find("[rank " + std::to_string(rank) + "] rank " + std::to_string(rank) +
                          " of " + std::to_string(np) + " ready") != std::string::npos);
  }
}

TEST_CASE("a single process is not prefixed and gets no MASTER_ADDR", "[launcher]") {
  TempDir dir;
  auto result = run_accel_launch({"--cpu", kProbe, "env", dir.str()});
  REQUIRE(result.exit_status == 0);
  CHECK(result.out == "rank 0 of 1 ready\n");
  auto env = read_env_file(dir / "rank0.env");
  CHECK(env["MASTER_ADDR"] == "<unset>");
  CHECK(env["ACCELERATE_MIXED_PRECISION"] == "no");
}

TEST_CASE("command-line flags win over the config file, which wins over defaults", "[launcher]") {
  TempDir dir;
  write_file(dir / "cfg.yaml",
             "compute_environment: LOCAL_MACHINE\n"
             "distributed_type: MULTI_CPU\n"
             "num_processes: 3\n"
             "mixed_precision: fp16\n"
             "gradient_accumulation_steps: 2\n"
             "main_process_port: 29622\n"
             "debug: true\n");
  fs::create_directory(dir / "out");
  auto result = run_accel_launch({"--config_file", (dir / "cfg.yaml").string(), "--mixed_precision",
                                  "bf16", kProbe, "env", (dir / "out").string()});
  INFO(result.err);
  REQUIRE(result.exit_status == 0);
  for (int rank = 0; rank < 3; ++rank) {
    auto env = read_env_file(dir / "out" / rank_file(rank, ".env"));
    CHECK(env["WORLD_SIZE"] == "3");                     // config
    CHECK(env["ACCELERATE_MIXED_PRECISION"] == "bf16");  // flag over config
    CHECK(env["ACCELERATE_GRADIENT_ACCUMULATION_STEPS"] == "2");
    CHECK(env["ACCELERATE_USE_CPU"] == "True");  // MULTI_CPU
    CHECK(env["ACCELERATE_DEBUG_MODE"] == "true");
    CHECK(env["MASTER_PORT"] == "29622");
  }

  SECTION("the default config file under $HF_HOME is read without --config_file") {
    TempDir home;
    fs::create_directories(home / "accelerate");
    write_file(home / "accelerate" / "default_config.yaml",
               "distributed_type: MULTI_CPU\nnum_processes: 2\nmixed_precision: fp16\n");
    TempDir out;
    auto launched =
        run_accel_launch({kProbe, "env", out.str()}, {.env = {{"HF_HOME", home.str()}}});
    REQUIRE(launched.exit_status == 0);
    CHECK(read_env_file(out / "rank1.env")["ACCELERATE_MIXED_PRECISION"] == "fp16");
    CHECK(read_env_file(out / "rank1.env")["WORLD_SIZE"] == "2");

    // As with `accelerate launch`, --cpu skips the default config file.
    TempDir cpu_out;
    launched = run_accel_launch({"--cpu", kProbe, "env", cpu_out.str()},
                                {.env = {{"HF_HOME", home.str()}}});
    REQUIRE(launched.exit_status == 0);
    CHECK(read_env_file(cpu_out / "rank0.env")["WORLD_SIZE"] == "1");
    CHECK(read_env_file(cpu_out / "rank0.env")["ACCELERATE_MIXED_PRECISION"] == "no");
  }
}

TEST_CASE("a config written by Python's accelerate config default loads and launches",
          "[launcher]") {
  TempDir dir;
  const std::string accelerate = accel::test::python_interpreter().parent_path() / "accelerate";
  const fs::path config = dir / "accelerate_default.yaml";
  auto written = run_command({accelerate, "config", "default", "--config_file", config.string(),
                              "--mixed_precision", "fp16"});
  INFO(written.err);
  REQUIRE(written.exit_status == 0);
  REQUIRE(fs::exists(config));

  fs::create_directory(dir / "out");
  auto result = run_accel_launch({"--config_file", config.string(), "--num_processes", "2", kProbe,
                                  "env", (dir / "out").string()});
  INFO(result.err);
  REQUIRE(result.exit_status == 0);
  CHECK(result.err.find("warning") == std::string::npos);  // every key it writes is known
  CHECK(read_env_file(dir / "out" / "rank1.env")["ACCELERATE_MIXED_PRECISION"] == "fp16");
  CHECK(read_env_file(dir / "out" / "rank1.env")["WORLD_SIZE"] == "2");
}

TEST_CASE("config default round trip: written, refused twice, shown, read by accelerate",
          "[launcher]") {
  TempDir dir;
  const std::string config = (dir / "sub" / "cfg.yaml").string();
  auto written =
      run_accel_launch({"config", "default", "--config_file", config, "--mixed_precision", "bf16"});
  REQUIRE(written.exit_status == 0);
  CHECK(written.out.find(config) != std::string::npos);

  auto again = run_accel_launch({"config", "default", "--config_file", config});
  CHECK(again.exit_status == 2);
  CHECK(again.err.find("already exists") != std::string::npos);
  CHECK(again.err.find("--force") != std::string::npos);
  CHECK(run_accel_launch(
            {"config", "default", "--config_file", config, "--mixed_precision", "bf16", "--force"})
            .exit_status == 0);

  auto shown = run_accel_launch({"config", "show", "--config_file", config});
  REQUIRE(shown.exit_status == 0);
  CHECK(shown.out.find("mixed_precision: 'bf16'") != std::string::npos);

  // Accelerate itself accepts the file.
  auto python = run_command(
      {accel::test::python_interpreter().string(), "-c",
       "import sys; from accelerate.commands.config.config_args import load_config_from_file as l; "
       "c = l(sys.argv[1]); print(c.mixed_precision, c.num_processes, c.distributed_type.value)",
       config});
  INFO(python.err);
  REQUIRE(python.exit_status == 0);
  CHECK(python.out.starts_with("bf16 "));

  TempDir out;
  auto launched =
      run_accel_launch({"--config_file", config, "--num_processes", "2", kProbe, "env", out.str()});
  REQUIRE(launched.exit_status == 0);
  CHECK(read_env_file(out / "rank0.env")["ACCELERATE_MIXED_PRECISION"] == "bf16");
}

TEST_CASE("a rank that exits 3 stops the job; the summary names it", "[launcher]") {
  const int np = GENERATE(2, 3);
  TempDir dir;
  auto result = run_accel_launch(
      {"--num_processes", std::to_string(np), kProbe, "fail", "1", "3", dir.str()});
  INFO(result.err);
  CHECK(result.exit_status == 3);
  CHECK(result.seconds < 10);
  CHECK(result.err.find("rank 1 (of " + std::to_string(np) + ") on host " + host_name() +
                        " exited with code 3") != std::string::npos);
  CHECK(result.err.find("| probe line 3 from rank 1") != std::string::npos);
  CHECK(result.err.find("| rank 1 gives up with code 3") != std::string::npos);
  CHECK(result.err.find("Primary job") == std::string::npos);  // mpirun's report is replaced
  // The other ranks were stopped with SIGTERM, which they could handle.
  for (int rank = 0; rank < np; ++rank) {
    if (rank == 1) continue;
    CHECK(read_file(dir / rank_file(rank, ".stopped")) == "15\n");
  }
}

TEST_CASE("a rank killed with SIGKILL is named with its signal", "[launcher]") {
  TempDir dir;
  auto result = run_accel_launch({"--num_processes", "3", kProbe, "kill", "2", dir.str()});
  INFO(result.err);
  CHECK(result.exit_status == 128 + SIGKILL);
  CHECK(result.seconds < 10);
  CHECK(result.err.find("rank 2 (of 3) on host " + host_name() +
                        " was killed by signal 9 (SIGKILL)") != std::string::npos);
  CHECK(result.err.find("| rank 2 about to be killed") != std::string::npos);
}

TEST_CASE("SIGTERM or SIGINT to accel-launch reaches every rank; stubborn ranks are killed",
          "[launcher]") {
  const int np = GENERATE(2, 3);
  TempDir dir;

  SECTION("graceful ranks see the user's signal") {
    const int signal = GENERATE(SIGTERM, SIGINT);
    auto result = launch_hanging_ranks(np, dir, "graceful", [&](pid_t pid) { kill(pid, signal); });
    INFO(result.err);
    CHECK(result.exit_status == 128 + signal);
    CHECK(result.seconds_after_action < 10);
    for (int rank = 0; rank < np; ++rank) {
      CHECK(read_file(dir / rank_file(rank, ".stopped")) == std::to_string(signal) + "\n");
    }
  }
  SECTION("ranks that ignore SIGTERM are killed within 10 s") {
    auto result = launch_hanging_ranks(np, dir, "stubborn", [](pid_t pid) { kill(pid, SIGTERM); });
    INFO(result.err);
    CHECK(result.exit_status == 128 + SIGTERM);
    CHECK(result.seconds_after_action < 10);
    for (int rank = 0; rank < np; ++rank)
      CHECK_FALSE(fs::exists(dir / rank_file(rank, ".stopped")));
  }
  SECTION("a second signal kills at once") {
    auto result = launch_hanging_ranks(np, dir, "stubborn", [](pid_t pid) {
      kill(pid, SIGINT);
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      kill(pid, SIGINT);
    });
    INFO(result.err);
    CHECK(result.exit_status == 128 + SIGINT);
    CHECK(result.seconds_after_action < 2);
    CHECK(result.err.find("second interrupt") != std::string::npos);
  }
}

TEST_CASE("--dry_run prints the mpirun command and environment and starts nothing", "[launcher]") {
  TempDir dir;
  auto result = run_accel_launch({"--num_processes", "3", "--mixed_precision", "fp16", "--dry_run",
                                  "--mpirun_args", "--report-bindings --map-by 'slot'", kProbe,
                                  "env", dir.str()});
  INFO(result.err);
  REQUIRE(result.exit_status == 0);
  CHECK(result.out.find("-np 3") != std::string::npos);
  CHECK(result.out.find("-x ACCELERATE_MIXED_PRECISION=fp16") != std::string::npos);
  CHECK(result.out.find("ACCELERATE_MIXED_PRECISION=fp16\n") != std::string::npos);
  CHECK(result.out.find("--bind-to none") != std::string::npos);
  CHECK(result.out.find("--report-bindings --map-by slot") != std::string::npos);
  CHECK(result.out.find("--rank-shim") != std::string::npos);
  CHECK(result.out.find(kProbe + " env " + dir.str()) != std::string::npos);
  CHECK((result.out.find("--allow-run-as-root") != std::string::npos) == (geteuid() == 0));
  CHECK(result.out.find("num_processes                = 3            (--num_processes)") !=
        std::string::npos);
  CHECK(fs::is_empty(dir.path()));  // nothing ran
}

TEST_CASE("--log_dir keeps every rank's output; --tee picks the streams", "[launcher]") {
  TempDir dir;
  auto result =
      run_accel_launch({"--num_processes", "2", "--log_dir", dir.str(), kProbe, "print", "3"});
  REQUIRE(result.exit_status == 0);
  CHECK(read_file(dir / "rank1.stdout.log") ==
        "out 1 of rank 1\nout 2 of rank 1\nout 3 of rank 1\n");
  CHECK(read_file(dir / "rank0.stderr.log") ==
        "err 1 of rank 0\nerr 2 of rank 0\nerr 3 of rank 0\n");
  CHECK(result.out.find("[rank 1] out 3 of rank 1") != std::string::npos);  // still on the console

  TempDir only_stdout;
  result = run_accel_launch(
      {"--num_processes", "2", "--log_dir", only_stdout.str(), "--tee", "1", kProbe, "print", "1"});
  REQUIRE(result.exit_status == 0);
  CHECK(fs::exists(only_stdout / "rank0.stdout.log"));
  CHECK_FALSE(fs::exists(only_stdout / "rank0.stderr.log"));

  result = run_accel_launch({"--num_processes", "2", "--tee", "3", kProbe, "print", "1"});
  CHECK(result.exit_status == 2);
  CHECK(result.err.find("--tee 3 needs --log_dir") != std::string::npos);
}

TEST_CASE("inside a Slurm allocation the job starts through srun --mpi=pmix", "[launcher]") {
  TempDir dir;
  // A stand-in srun: starts --ntasks copies of the command with Slurm's rank variables.
  write_file(dir / "srun",
             "#!/bin/sh\n"
             "echo \"$@\" > \"$(dirname \"$0\")/srun.args\"\n"
             "n=1\n"
             "for a in \"$@\"; do case $a in --ntasks=*) n=${a#--ntasks=};; esac; done\n"
             "while [ $# -gt 0 ]; do case $1 in --*) shift;; *) break;; esac; done\n"
             "i=0; pids=\"\"\n"
             "while [ $i -lt $n ]; do SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_NTASKS=$n \"$@\" & "
             "pids=\"$pids $!\"; i=$((i+1)); done\n"
             "rc=0; for p in $pids; do wait $p || rc=$?; done; exit $rc\n");
  fs::permissions(dir / "srun", fs::perms::owner_all);
  fs::create_directory(dir / "out");
  const std::string path = dir.str() + ":" + std::getenv("PATH");
  auto result = run_accel_launch({"--num_processes", "2", kProbe, "env", (dir / "out").string()},
                                 {.env = {{"SLURM_JOB_ID", "4242"}, {"PATH", path}}});
  INFO(result.err);
  REQUIRE(result.exit_status == 0);
  CHECK(result.err.find("inside Slurm allocation 4242: launching with srun --mpi=pmix") !=
        std::string::npos);
  CHECK(read_file(dir / "srun.args").starts_with("--mpi=pmix --ntasks=2 --kill-on-bad-exit=1"));
  for (int rank = 0; rank < 2; ++rank) {
    auto env = read_env_file(dir / "out" / rank_file(rank, ".env"));
    CHECK(env["RANK"] == std::to_string(rank));
    CHECK(env["WORLD_SIZE"] == "2");
    CHECK(env["ACCELERATE_MIXED_PRECISION"] == "no");
  }
  auto forced_mpirun = run_accel_launch({"--num_processes", "2", "--no_slurm", "--dry_run", kProbe},
                                        {.env = {{"SLURM_JOB_ID", "4242"}, {"PATH", path}}});
  CHECK(forced_mpirun.out.find("-np 2") != std::string::npos);
}

TEST_CASE("mistakes get clear errors and distinct exit codes", "[launcher]") {
  TempDir dir;
  SECTION("program not found") {
    auto r = run_accel_launch({"--num_processes", "2", "./no-such-program"});
    CHECK(r.exit_status == 127);
    CHECK(r.err.find("program './no-such-program' does not exist") != std::string::npos);
    r = run_accel_launch({"no-such-program-on-path"});
    CHECK(r.exit_status == 127);
    CHECK(r.err.find("not on PATH") != std::string::npos);
  }
  SECTION("program not executable") {
    write_file(dir / "script.sh", "echo hi\n");
    auto r = run_accel_launch({(dir / "script.sh").string()});
    CHECK(r.exit_status == 126);
    CHECK(r.err.find("chmod +x") != std::string::npos);
  }
  SECTION("mpirun missing") {
    auto r = run_accel_launch({"--num_processes", "2", kProbe, "print", "1"},
                              {.env = {{"ACCEL_MPIRUN", "/nonexistent/mpirun"}}});
    CHECK(r.exit_status == 127);
    CHECK(r.err.find("ACCEL_MPIRUN is set to '/nonexistent/mpirun'") != std::string::npos);
  }
  SECTION("invalid flag values") {
    auto r = run_accel_launch({"--num_processes", "two", kProbe});
    CHECK(r.exit_status == 2);
    CHECK(r.err.find("--num_processes") != std::string::npos);
    r = run_accel_launch({"--mixed_precision", "fp8", kProbe});
    CHECK(r.exit_status == 2);
    CHECK(r.err.find(
              "mixed_precision = fp8 (from --mixed_precision) is invalid: use no, fp16 or bf16") !=
          std::string::npos);
    r = run_accel_launch({"--num_processes", "0", kProbe});
    CHECK(r.exit_status == 2);
    CHECK(r.err.find("at least 1") != std::string::npos);
    r = run_accel_launch({"--cpu", "--multi_gpu", kProbe});
    CHECK(r.exit_status == 2);
    r = run_accel_launch({"--no-such-flag", kProbe});
    CHECK(r.exit_status == 2);
    CHECK(r.err.find("--no-such-flag") != std::string::npos);
  }
  SECTION("bad YAML names the line; unsupported settings name the key") {
    write_file(dir / "bad.yaml", "num_processes: 2\nmixed_precision: [fp16\n");
    auto r = run_accel_launch({"--config_file", (dir / "bad.yaml").string(), kProbe});
    CHECK(r.exit_status == 2);
    CHECK(r.err.find("bad.yaml:") != std::string::npos);
    CHECK(r.err.find("not valid YAML") != std::string::npos);
    write_file(dir / "ds.yaml",
               "compute_environment: LOCAL_MACHINE\ndistributed_type: DEEPSPEED\n");
    r = run_accel_launch({"--config_file", (dir / "ds.yaml").string(), kProbe});
    CHECK(r.exit_status == 2);
    CHECK(r.err.find("ds.yaml:2: key 'distributed_type' is 'DEEPSPEED'") != std::string::npos);
    write_file(dir / "missing_dir_ref.yaml", "num_processes: lots\n");
    r = run_accel_launch({"--config_file", (dir / "missing_dir_ref.yaml").string(), kProbe});
    CHECK(r.err.find("key 'num_processes' must be an integer, got 'lots'") != std::string::npos);
    r = run_accel_launch({"--config_file", (dir / "nope.yaml").string(), kProbe});
    CHECK(r.exit_status == 2);
    CHECK(r.err.find("no such file") != std::string::npos);
  }
  SECTION("unknown config keys warn and still launch") {
    write_file(dir / "extra.yaml", "distributed_type: NO\nnum_processes: 1\nshiny_new_key: 3\n");
    fs::create_directory(dir / "out");
    auto r = run_accel_launch(
        {"--config_file", (dir / "extra.yaml").string(), kProbe, "env", (dir / "out").string()});
    CHECK(r.exit_status == 0);
    CHECK(r.err.find("extra.yaml:3: unknown key 'shiny_new_key' is ignored") != std::string::npos);
  }
  SECTION("more processes than slots suggests --oversubscribe") {
    auto r = run_accel_launch({"--num_processes", "512", kProbe, "print", "1"},
                              {.env = {{"OMPI_MCA_rmaps_base_oversubscribe", std::nullopt}}});
    CHECK(r.exit_status != 0);
    CHECK(r.err.find("Pass --oversubscribe") != std::string::npos);
  }
}

TEST_CASE("env prints versions, hardware and the resolved config", "[launcher]") {
  TempDir home;
  auto r = run_accel_launch({"env"}, {.env = {{"HF_HOME", home.str()}}});
  REQUIRE(r.exit_status == 0);
  CHECK(r.out.find("- accel version: ") != std::string::npos);
  CHECK(r.out.find("- MPI: " + fs::path(ACCEL_MPIEXEC).filename().string() + " (Open") !=
        std::string::npos);
  CHECK(r.out.find("- System RAM: ") != std::string::npos);
  CHECK(r.out.find("- config file: none (looked for " + home.str() +
                   "/accelerate/default_config.yaml)") != std::string::npos);
  CHECK(r.out.find("\t- num_processes: 1 (default)") != std::string::npos);
}

#if !ACCEL_HAS_SANITY_CHECK
TEST_CASE("accel-launch test says how to build the sanity program when it is missing",
          "[launcher]") {
  auto r = run_accel_launch({"test"});
  CHECK(r.exit_status == 127);
  CHECK(r.err.find("-DACCEL_BUILD_DISTRIBUTED=ON") != std::string::npos);
}
#endif

TEST_CASE("`--` before the program is accepted", "[launcher]") {
  TempDir dir;
  auto r = run_accel_launch({"--num_processes", "2", "--", kProbe, "env", dir.str()});
  CHECK(r.exit_status == 0);
  CHECK(fs::exists(dir / "rank1.env"));
}
