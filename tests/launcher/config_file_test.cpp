// Accelerate-compatible config files: what accelerate writes loads, bad files are rejected with
// the file, line and key, and unknown keys only warn.
#include "cli/config_file.hpp"

#include <catch2/catch.hpp>

#include "launch_harness.hpp"
#include "plan/launch_error.hpp"
#include "python.hpp"

using namespace accel::launch;
using namespace accel::launch::testing;

TEST_CASE("the JSON that `accelerate config default` writes loads without warnings", "[launcher]") {
  TempDir dir;
  const std::string accelerate = accel::test::python_interpreter().parent_path() / "accelerate";
  const fs::path path = dir / "default_config.yaml";
  auto written = run_command({accelerate, "config", "default", "--config_file", path.string()});
  INFO(written.err);
  REQUIRE(written.exit_status == 0);
  AccelerateConfig config = load_config_file(path);
  CHECK(config.warnings.empty());
  REQUIRE(config.distributed_type);
  CHECK(config.distributed_type->value == "NO");
  REQUIRE(config.num_processes);
  CHECK(config.num_processes->value == 1);
  REQUIRE(config.use_cpu);
  CHECK(config.use_cpu->value);
  REQUIRE(config.mixed_precision);
  CHECK(config.mixed_precision->value == "no");
}

TEST_CASE("YAML configs are read with their line numbers", "[launcher]") {
  TempDir dir;
  write_file(dir / "c.yaml",
             "compute_environment: LOCAL_MACHINE\n"
             "distributed_type: MULTI_GPU\n"
             "gpu_ids: 0,1\n"
             "num_processes: 2\n"
             "mpirun_config:\n"
             "  mpirun_hostfile: ~/hosts\n"
             "deepspeed_config: {}\n"
             "fsdp_config:\n"
             "  fsdp_version: 2\n");
  AccelerateConfig config = load_config_file(dir / "c.yaml");
  CHECK(config.gpu_ids->value == "0,1");
  CHECK(config.gpu_ids->line == 3);
  CHECK(config.num_processes->line == 4);
  CHECK(config.mpirun_hostfile->value == std::string(std::getenv("HOME")) + "/hosts");
  REQUIRE(config.warnings.size() == 1);  // empty deepspeed_config is silent; fsdp is not
  CHECK(config.warnings[0].find("c.yaml:8: key 'fsdp_config' is ignored") != std::string::npos);
}

TEST_CASE("invalid config files are rejected with file, line and key", "[launcher]") {
  TempDir dir;
  auto error_of = [&](const std::string& text) -> std::string {
    write_file(dir / "bad.yaml", text);
    try {
      load_config_file(dir / "bad.yaml");
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "no error";
  };
  CHECK_THAT(error_of("num_processes: 2\n  oops: [\n"),
             Catch::Contains("bad.yaml:") && Catch::Contains("not valid YAML"));
  CHECK_THAT(error_of("distributed_type: XLA\n"),
             Catch::Contains("bad.yaml:1: key 'distributed_type' is 'XLA'"));
  CHECK_THAT(error_of("compute_environment: AMAZON_SAGEMAKER\ndistributed_type: NO\n"),
             Catch::Contains("key 'compute_environment' is 'AMAZON_SAGEMAKER'"));
  CHECK_THAT(error_of("\nuse_cpu: maybe\n"),
             Catch::Contains("bad.yaml:2: key 'use_cpu' must be true or false, got 'maybe'"));
  CHECK_THAT(error_of("mixed_precision: fp8\n"),
             Catch::Contains("accel supports no, fp16 or bf16"));
  CHECK_THAT(error_of("num_processes: [1, 2]\n"),
             Catch::Contains("must be an integer, not a list"));
  CHECK_THAT(error_of(""), Catch::Contains("is empty"));
  CHECK_THAT(error_of("- a\n- b\n"), Catch::Contains("must be a mapping"));
}

TEST_CASE("default config location follows HF_HOME, then XDG_CACHE_HOME", "[launcher]") {
  const char* saved_hf = std::getenv("HF_HOME");
  const char* saved_xdg = std::getenv("XDG_CACHE_HOME");
  setenv("HF_HOME", "/data/hf", 1);
  CHECK(default_config_path() == "/data/hf/accelerate/default_config.yaml");
  unsetenv("HF_HOME");
  setenv("XDG_CACHE_HOME", "/data/cache", 1);
  CHECK(default_config_path() == "/data/cache/huggingface/accelerate/default_config.yaml");
  unsetenv("XDG_CACHE_HOME");
  CHECK(default_config_path() ==
        fs::path(std::getenv("HOME")) / ".cache/huggingface/accelerate/default_config.yaml");
  if (saved_hf) setenv("HF_HOME", saved_hf, 1);
  if (saved_xdg) setenv("XDG_CACHE_HOME", saved_xdg, 1);
}

TEST_CASE("write_default_config writes what load_config_file reads and refuses to overwrite",
          "[launcher]") {
  TempDir dir;
  const fs::path path = dir / "a" / "b.yaml";
  write_default_config(path, "fp16", /*gpu_count=*/4, /*force=*/false);
  AccelerateConfig config = load_config_file(path);
  CHECK(config.warnings.empty());
  CHECK(config.distributed_type->value == "MULTI_GPU");
  CHECK(config.num_processes->value == 4);
  CHECK_FALSE(config.use_cpu->value);
  CHECK(config.mixed_precision->value == "fp16");
  CHECK_THROWS_AS(write_default_config(path, "no", 0, false), ConfigError);
  write_default_config(path, "no", 0, true);
  CHECK(load_config_file(path).use_cpu->value);
  CHECK_THROWS_WITH(write_default_config(path, "fp8", 0, true),
                    Catch::Contains("'fp8' is not supported"));
}
