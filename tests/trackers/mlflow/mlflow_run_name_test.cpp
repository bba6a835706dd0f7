// The Accelerator names the MLflow run after its run directory (<project>/version_<N>, or the
// run_name the user gave), unless init_kwargs gives a run name; the run's URL is printed once at
// start. Against a real `mlflow server` (mlflow_test_server.hpp), read back with the mlflow client.
#include <fcntl.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "accel/accelerator.hpp"
#include "mlflow_test_server.hpp"
// After LibTorch: c10 defines a one-argument CHECK that would replace Catch's.
#include <catch2/catch.hpp>

using namespace accel;
using nlohmann::json;

namespace {

test::MlflowServer& server() {
  static test::TempDir dir;
  static test::MlflowServer instance(dir.path() / "store");
  static bool started = [] {
    instance.start();
    ::setenv("MLFLOW_TRACKING_URI", instance.uri().c_str(), 1);  // log_with "mlflow" needs it
    return true;
  }();
  (void)started;
  return instance;
}

// stderr of fn, also printed.
template <class Fn>
std::string capture_stderr(Fn&& fn) {
  std::fflush(stderr);
  char name[] = "/tmp/accel_mlflow_run_name_XXXXXX";
  const int fd = ::mkstemp(name);
  REQUIRE(fd >= 0);
  const int saved = ::dup(2);
  ::dup2(fd, 2);
  try {
    fn();
  } catch (...) {
    std::fflush(stderr);
    ::dup2(saved, 2);
    ::close(saved);
    ::close(fd);
    ::unlink(name);
    throw;
  }
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  ::close(fd);
  std::ifstream in(name);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ::unlink(name);
  std::fputs(text.c_str(), stderr);
  return text;
}

// Starts the trackers, logs one value, ends. Returns what was printed on stderr, where the run's
// URL (and so its id) is.
std::string one_run(const std::filesystem::path& project_dir, const std::string& run_name,
                    const json& init_kwargs, std::filesystem::path* run_dir = nullptr) {
  return capture_stderr([&] {
    Accelerator acc(
        {.cpu = true, .log_with = {"mlflow"}, .project_dir = project_dir, .run_name = run_name});
    json kwargs = init_kwargs;
    kwargs["mlflow"]["tracking_uri"] = server().uri();
    acc.init_trackers("digits", {{"lr", 0.1}}, kwargs);
    acc.log({{"loss", 0.5}}, 0);
    auto report = acc.end_training();
    CHECK(report.complete());
    if (run_dir) *run_dir = acc.run_dir();
  });
}

// The run id in the printed URL ".../#/experiments/<id>/runs/<run id>".
std::string printed_run_id(const std::string& printed) {
  const auto at = printed.find("/runs/");
  REQUIRE(at != std::string::npos);
  const auto end = printed.find_first_of(" \n", at + 6);
  return printed.substr(at + 6, end == std::string::npos ? std::string::npos : end - at - 6);
}

}  // namespace

TEST_CASE("The MLflow run is named after the run directory, and its URL is printed once",
          "[mlflow][integration][runs]") {
  test::TempDir dir;
  std::filesystem::path first_dir;
  const std::string printed = one_run(dir.path(), "", json::object(), &first_dir);
  const std::string first = printed_run_id(printed);
  const std::string second = printed_run_id(one_run(dir.path(), "", json::object()));
  const std::string third = printed_run_id(one_run(dir.path(), "baseline", json::object()));
  const std::string given =
      printed_run_id(one_run(dir.path(), "", {{"mlflow", {{"run_name", "from-kwargs"}}}}));

  CHECK(first_dir == dir.path() / "digits" / "version_0");
  auto runs = test::read_runs(server().uri(), {first, second, third, given});
  CHECK(runs[first]["info"]["run_name"] == "digits/version_0");
  CHECK(runs[second]["info"]["run_name"] == "digits/version_1");
  CHECK(runs[third]["info"]["run_name"] == "baseline");
  CHECK(runs[given]["info"]["run_name"] == "from-kwargs");

  const std::string url = server().uri() + "/#/experiments/" +
                          runs[first]["info"]["experiment_id"].get<std::string>() + "/runs/" +
                          first;
  INFO(printed);
  CHECK_THAT(printed, Catch::Contains(url) && Catch::Contains("digits/version_0"));
  std::size_t count = 0;
  for (auto at = printed.find(url); at != std::string::npos; at = printed.find(url, at + 1))
    ++count;
  CHECK(count == 1);
}
