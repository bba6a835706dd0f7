// `accel-launch test` end to end: accel-sanity-check over 2 and 3 processes must pass every check, and
// `accel-launch env` must report the LibTorch it was built with.
#include <catch2/catch.hpp>

#include "launch_harness.hpp"

using namespace accel::launch::testing;

namespace {

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("accel-launch test passes every check on 2 and 3 processes", "[launcher]") {
  const int np = GENERATE(2, 3);
  auto result =
      run_accel_launch({"test", "--num_processes", std::to_string(np)}, {.timeout_seconds = 600});
  INFO(result.out);
  INFO(result.err);
  REQUIRE(result.exit_status == 0);
  CHECK(result.out.find("accel sanity check: " + std::to_string(np) + " process(es)") !=
        std::string::npos);
  CHECK(count(result.out, "[ok]") == 6);
  CHECK(count(result.out, "FAILED") == 0);
  CHECK(result.out.find("accel-launch test: all checks passed") != std::string::npos);
}

TEST_CASE("accel-launch env reports the LibTorch accel was built with", "[launcher]") {
  auto result = run_accel_launch({"env"}, {.timeout_seconds = 120});
  REQUIRE(result.exit_status == 0);
  CHECK(result.out.find("- LibTorch: 2.") != std::string::npos);
  CHECK(result.out.find("- NCCL: ") != std::string::npos);
}
