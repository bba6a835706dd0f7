#include "cli/cli.hpp"

#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "cli/config_command.hpp"
#include "cli/env_report.hpp"
#include "cli/launch_command.hpp"
#include "cli/launch_flags.hpp"
#include "cli/sanity_test_command.hpp"
#include "cli/sync_command.hpp"
#include "plan/launch_error.hpp"

#ifndef ACCEL_VERSION
#define ACCEL_VERSION "unknown"
#endif

namespace accel::launch {
namespace {

// Accelerate accepts both --num_processes and --num-processes.
std::string names(const std::string& underscored) {
  std::string dashed = underscored;
  std::replace(dashed.begin(), dashed.end(), '_', '-');
  return dashed == underscored ? underscored : underscored + "," + dashed;
}

template <typename T>
void add_value(CLI::App* app, const std::string& flag, std::optional<T>& target,
               const std::string& help, const std::string& group) {
  app->add_option_function<T>(
         names(flag), [&target](const T& value) { target = value; }, help)
      ->group(group);
}

void add_launch_flags(CLI::App* app, LaunchFlags& f) {
  const std::string hardware = "Hardware selection";
  const std::string training = "Training";
  const std::string distributed = "Distributed";
  const std::string launcher = "Launcher";
  add_value(app, "--num_processes", f.num_processes,
            "Total number of processes to start (default: one per visible GPU, else 1)",
            distributed);
  add_value(app, "--num_machines", f.num_machines, "Number of machines (needs --mpirun_hostfile)",
            distributed);
  add_value(app, "--machine_rank", f.machine_rank,
            "Rank of this machine; accel-launch runs on machine 0 only", distributed);
  add_value(app, "--main_process_ip", f.main_process_ip,
            "Address of the machine of rank 0 (MASTER_ADDR)", distributed);
  add_value(app, "--main_process_port", f.main_process_port,
            "Port on the main machine (MASTER_PORT)", distributed);
  add_value(app, "--gpu_ids", f.gpu_ids,
            "GPUs to use on this machine, e.g. 0,1 (CUDA_VISIBLE_DEVICES)", hardware);
  app->add_flag(names("--cpu"), f.cpu, "Train on the CPU even when GPUs are visible")
      ->group(hardware);
  app->add_flag(names("--multi_gpu"), f.multi_gpu, "Distributed GPU training (one process per GPU)")
      ->group(hardware);
  add_value(app, "--num_cpu_threads_per_process", f.num_cpu_threads_per_process,
            "OMP_NUM_THREADS of every process", hardware);
  add_value(app, "--mixed_precision", f.mixed_precision, "no, fp16 or bf16", training);
  add_value(app, "--gradient_accumulation_steps", f.gradient_accumulation_steps,
            "Micro-batches per optimizer step (ACCELERATE_GRADIENT_ACCUMULATION_STEPS)", training);
  add_value(app, "--config_file", f.config_file,
            "Accelerate config file (default: $HF_HOME/accelerate/default_config.yaml)", launcher);
  add_value(app, "--mpirun_hostfile", f.mpirun_hostfile, "mpirun hostfile for multi-machine runs",
            distributed);
  add_value(app, "--mpirun_args", f.mpirun_args, "Extra arguments for mpirun, quoted as one string",
            launcher);
  app->add_flag(names("--oversubscribe"), f.oversubscribe,
                "Allow more processes than CPU cores (mpirun --oversubscribe)")
      ->group(launcher);
  app->add_flag_function(
         "--slurm,!--no_slurm", [&f](std::int64_t count) { f.slurm = count > 0; },
         "Launch with srun --mpi=pmix (automatic inside a Slurm allocation)")
      ->group(launcher);
  app->add_flag(names("--debug"), f.debug, "ACCELERATE_DEBUG_MODE=true; show mpirun's own reports")
      ->group(launcher);
  app->add_flag("-q," + names("--quiet"), f.quiet, "Print no notes or warnings")->group(launcher);
  app->add_option_function<std::string>(
         "-t,--tee", [&f](const std::string& value) { f.tee = value; },
         "Streams copied into --log_dir: 0 none, 1 stdout, 2 stderr, 3 both")
      ->group(launcher);
  add_value(app, "--log_dir", f.log_dir,
            "Write every rank's output to DIR/rank<N>.{stdout,stderr}.log", launcher);
  app->add_flag(names("--dry_run"), f.dry_run,
                "Print the mpirun command and environment; run nothing")
      ->group(launcher);
}

// `accel-launch test`: flags given before `test` count too; those after it win.
LaunchFlags merge_test_flags(const LaunchFlags& test_flags, const LaunchFlags& launch) {
  LaunchFlags merged = test_flags;
  merged.num_processes = test_flags.num_processes ? test_flags.num_processes : launch.num_processes;
  merged.config_file = test_flags.config_file ? test_flags.config_file : launch.config_file;
  merged.mpirun_args = test_flags.mpirun_args ? test_flags.mpirun_args : launch.mpirun_args;
  merged.oversubscribe = test_flags.oversubscribe || launch.oversubscribe;
  merged.cpu = test_flags.cpu || launch.cpu;
  merged.debug = test_flags.debug || launch.debug;
  merged.quiet = test_flags.quiet || launch.quiet;
  merged.dry_run = test_flags.dry_run || launch.dry_run;
  return merged;
}

// No subcommand: what CLI11 left over is the program and its arguments.
int launch_remaining(const CLI::App& app, LaunchFlags& launch) {
  std::vector<std::string> rest = app.remaining();
  if (!rest.empty() && rest.front() == "--") rest.erase(rest.begin());  // `accel-launch -- ./prog`
  if (rest.empty()) {
    fmt::print(stderr, "{}", app.help());
    fmt::print(stderr,
               "\naccel-launch: error: no program given; usage: accel-launch [flags] "
               "<program> [args...]\n");
    return kExitUsage;
  }
  if (rest.front().starts_with("-")) {
    fmt::print(stderr,
               "accel-launch: error: unknown flag '{}' (see accel-launch --help); to pass "
               "flags to mpirun use --mpirun_args \"...\"\n",
               rest.front());
    return kExitUsage;
  }
  launch.program = rest.front();
  launch.program_args.assign(rest.begin() + 1, rest.end());
  return run_launch(launch);
}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{
      "accel-launch: start a program on several processes through mpirun, with the flags "
      "and config files of `accelerate launch`.",
      "accel-launch"};
  app.set_version_flag("--version", std::string("accel-launch ") + ACCEL_VERSION);
  app.prefix_command();
  app.footer(
      "Usage: accel-launch [flags] <program> [program args...]\n"
      "       accel-launch config default|show | env | test | sync PATH...\n"
      "The program and everything after it are passed to the program unchanged.");

  LaunchFlags launch;
  add_launch_flags(&app, launch);

  CLI::App* config = app.add_subcommand("config", "Write or show an Accelerate config file");
  config->require_subcommand(1);
  std::optional<std::string> config_file;
  std::string mixed_precision = "no";
  bool force = false;
  CLI::App* config_default =
      config->add_subcommand("default", "Write a basic config for this machine");
  config_default->add_option_function<std::string>(
      names("--config_file"), [&](const std::string& v) { config_file = v; },
      "Where to write it (default: the default config location)");
  config_default->add_option(names("--mixed_precision"), mixed_precision, "no, fp16 or bf16");
  config_default->add_flag("--force", force, "Overwrite an existing file");
  CLI::App* config_show =
      config->add_subcommand("show", "Print the config file a launch would use");
  config_show->add_option_function<std::string>(
      names("--config_file"), [&](const std::string& v) { config_file = v; },
      "Config file to show");

  CLI::App* env = app.add_subcommand("env", "Print versions, hardware and the resolved config");
  env->add_option_function<std::string>(
      names("--config_file"), [&](const std::string& v) { config_file = v; },
      "Config file to report");

  LaunchFlags test_flags;
  CLI::App* test = app.add_subcommand(
      "test", "Check collectives, gradient sync, gathering and tracker gating over N processes");
  add_launch_flags(test, test_flags);

  std::vector<std::string> sync_paths;
  double sync_timeout = 60;
  CLI::App* sync = app.add_subcommand(
      "sync", "Deliver the tracker journals a run left (undelivered records) into its runs");
  sync->add_option("paths", sync_paths, "Journal files, or a run's project / logging directory")
      ->required();
  sync->add_option("--timeout", sync_timeout,
                   "Seconds to keep trying an unavailable backend per journal (default 60)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int status = app.exit(e);
    return status == 0 ? 0 : kExitUsage;
  }

  if (config_default->parsed()) return run_config_default(config_file, mixed_precision, force);
  if (config_show->parsed()) return run_config_show(config_file);
  if (env->parsed()) return run_env(config_file);
  if (sync->parsed()) return run_sync(sync_paths, sync_timeout);
  if (test->parsed()) return run_sanity_test(merge_test_flags(test_flags, launch));

  return launch_remaining(app, launch);
}

}  // namespace accel::launch
