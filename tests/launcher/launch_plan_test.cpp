// Resolution of a launch: flag > config file > default, and the invalid combinations.
#include "plan/launch_plan.hpp"

#include <catch2/catch.hpp>

#include "plan/launch_error.hpp"

using namespace accel::launch;

namespace {

AccelerateConfig config_with(int num_processes, const std::string& precision) {
  AccelerateConfig config;
  config.path = "/cfg.yaml";
  config.num_processes = ConfigEntry<int>{num_processes, 4};
  config.mixed_precision = ConfigEntry<std::string>{precision, 5};
  return config;
}

std::string origin_of(const LaunchPlan& plan, const std::string& name) {
  for (const auto& source : plan.sources) {
    if (source.name == name) return source.origin;
  }
  return "missing";
}

}  // namespace

TEST_CASE("flags win over the config file, which wins over defaults", "[launcher]") {
  HostFacts host;
  LaunchFlags flags;
  flags.program = "train";
  auto config = std::optional(config_with(3, "fp16"));

  LaunchPlan plan = resolve_launch_plan(flags, config, host);
  CHECK(plan.num_processes == 3);
  CHECK(origin_of(plan, "num_processes") == "config file /cfg.yaml:4");
  CHECK(plan.mixed_precision == "fp16");

  flags.num_processes = 2;
  flags.mixed_precision = "bf16";
  plan = resolve_launch_plan(flags, config, host);
  CHECK(plan.num_processes == 2);
  CHECK(origin_of(plan, "num_processes") == "--num_processes");
  CHECK(plan.mixed_precision == "bf16");

  plan = resolve_launch_plan(LaunchFlags{}, std::nullopt, host);
  CHECK(plan.num_processes == 1);
  CHECK(plan.mixed_precision == "no");
  CHECK(origin_of(plan, "mixed_precision") == "default");
}

TEST_CASE("the default process count is the number of visible GPUs, else 1", "[launcher]") {
  HostFacts host;
  host.gpu_count = 4;
  LaunchPlan plan = resolve_launch_plan(LaunchFlags{}, std::nullopt, host);
  CHECK(plan.num_processes == 4);
  CHECK_FALSE(plan.use_cpu);
  CHECK(plan.multi_gpu);
  LaunchFlags cpu;
  cpu.cpu = true;
  plan = resolve_launch_plan(cpu, std::nullopt, host);
  CHECK(plan.num_processes == 1);
  CHECK(plan.use_cpu);
  host.gpu_count = 0;
  plan = resolve_launch_plan(LaunchFlags{}, std::nullopt, host);
  CHECK(plan.num_processes == 1);
  CHECK(plan.use_cpu);
}

TEST_CASE("threads per process: flag, then OMP_NUM_THREADS, then cores shared on CPU",
          "[launcher]") {
  HostFacts host;
  host.physical_cores = 16;
  LaunchFlags flags;
  flags.num_processes = 4;
  CHECK(resolve_launch_plan(flags, std::nullopt, host).num_cpu_threads_per_process == 4);
  host.omp_num_threads = 3;
  CHECK(resolve_launch_plan(flags, std::nullopt, host).num_cpu_threads_per_process == 3);
  flags.num_cpu_threads_per_process = 7;
  CHECK(resolve_launch_plan(flags, std::nullopt, host).num_cpu_threads_per_process == 7);
}

TEST_CASE("config distributed_type and use_cpu choose the device kind", "[launcher]") {
  HostFacts host;
  host.gpu_count = 2;
  AccelerateConfig config;
  config.path = "/c.yaml";
  config.distributed_type = ConfigEntry<std::string>{"MULTI_CPU", 2};
  config.num_processes = ConfigEntry<int>{2, 3};
  LaunchPlan plan = resolve_launch_plan(LaunchFlags{}, config, host);
  CHECK(plan.use_cpu);
  CHECK_FALSE(plan.multi_gpu);
  config.distributed_type->value = "MULTI_GPU";
  plan = resolve_launch_plan(LaunchFlags{}, config, host);
  CHECK_FALSE(plan.use_cpu);
  CHECK(plan.multi_gpu);
  LaunchFlags cpu;
  cpu.cpu = true;  // the flag wins over the config
  CHECK(resolve_launch_plan(cpu, config, host).use_cpu);
}

TEST_CASE("invalid values and combinations are refused with their origin", "[launcher]") {
  HostFacts host;
  auto error_of = [&](LaunchFlags flags, std::optional<AccelerateConfig> config = std::nullopt) {
    try {
      resolve_launch_plan(flags, config, host);
    } catch (const accel::launch::LaunchError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  LaunchFlags f;
  f.cpu = f.multi_gpu = true;
  CHECK_THAT(error_of(f), Catch::Contains("--cpu and --multi_gpu cannot be used together"));
  f = {};
  f.multi_gpu = true;
  f.num_processes = 1;
  CHECK_THAT(error_of(f), Catch::Contains("needs at least 2 processes"));
  f = {};
  f.gpu_ids = "0;1";
  CHECK_THAT(error_of(f), Catch::Contains("gpu_ids = 0;1 (from --gpu_ids) is invalid"));
  f = {};
  f.machine_rank = 1;
  CHECK_THAT(error_of(f), Catch::Contains("run it only there, with machine_rank 0"));
  f = {};
  f.num_machines = 2;
  f.num_processes = 4;
  CHECK_THAT(error_of(f), Catch::Contains("--mpirun_hostfile FILE"));
  f.mpirun_hostfile = "/hosts";
  f.num_processes = 3;
  CHECK_THAT(error_of(f), Catch::Contains("must be a multiple of num_machines"));
  f.num_processes = 4;
  CHECK_THAT(error_of(f), Catch::Contains("--main_process_ip"));
  f = {};
  f.main_process_port = 70000;
  CHECK_THAT(error_of(f), Catch::Contains("main_process_port = 70000"));
  f = {};
  f.tee = "5";
  CHECK_THAT(error_of(f), Catch::Contains("--tee 5 is invalid"));
  AccelerateConfig minus_one = config_with(-1, "no");
  CHECK_THAT(error_of(LaunchFlags{}, minus_one), Catch::Contains("pass --num_processes N"));
  f = {};
  f.num_processes = 2;
  CHECK(error_of(f, minus_one) == "no error");
}

TEST_CASE("multi-machine launches use the hostfile and the main process address", "[launcher]") {
  LaunchFlags f;
  f.num_machines = 2;
  f.num_processes = 8;
  f.mpirun_hostfile = "/hosts";
  f.main_process_ip = "10.0.0.1";
  LaunchPlan plan = resolve_launch_plan(f, std::nullopt, HostFacts{});
  CHECK(plan.hostfile == "/hosts");
  CHECK(plan.main_process_ip == "10.0.0.1");
  CHECK(plan.main_process_port == 29500);
}

TEST_CASE("Slurm is chosen inside an allocation unless told otherwise", "[launcher]") {
  HostFacts host;
  host.slurm_job_id = "77";
  LaunchPlan plan = resolve_launch_plan(LaunchFlags{}, std::nullopt, host);
  CHECK(plan.use_slurm);
  REQUIRE_FALSE(plan.notices.empty());
  LaunchFlags f;
  f.slurm = false;
  CHECK_FALSE(resolve_launch_plan(f, std::nullopt, host).use_slurm);
  f = {};
  f.mpirun_hostfile = "/hosts";  // an explicit host list means mpirun
  CHECK_FALSE(resolve_launch_plan(f, std::nullopt, host).use_slurm);
  CHECK_FALSE(resolve_launch_plan(LaunchFlags{}, std::nullopt, HostFacts{}).use_slurm);
}

TEST_CASE("--mpirun_args is split like a shell would", "[launcher]") {
  CHECK(split_shell_words("--mca btl self,tcp  -x 'A=b c' \"D=\\\"e\\\"\" f\\ g") ==
        std::vector<std::string>{"--mca", "btl", "self,tcp", "-x", "A=b c", "D=\"e\"", "f g"});
  CHECK(split_shell_words("   ").empty());
  CHECK_THROWS_AS(split_shell_words("-x 'open"), UsageError);
}
