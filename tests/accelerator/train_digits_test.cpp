// The train_digits example end to end, on 2 processes under mpiexec: it learns (>= 95% held-out
// accuracy on every validation sample exactly once), writes its CSV log, and a run resumed from a
// mid-epoch checkpoint ends with exactly the weights of the uninterrupted run. Two trainings into
// one project are two runs (own directories, checkpoints and TensorBoard HParams rows, read back
// by a real tensorboard server), and an unwritable project_dir fails on every rank before step 1.
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "python.hpp"
// After LibTorch: c10 defines a one-argument CHECK that would replace Catch's.
#include <catch2/catch.hpp>

namespace fs = std::filesystem;

namespace {

fs::path work_dir() {
  auto dir = fs::temp_directory_path() / ("accel_train_digits_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

int run_digits(const std::string& args) {
  const std::string command = std::string("timeout 600 ") + ACCEL_MPIEXEC + " -n 2 " +
                              [] {
                                std::string flags = ACCEL_MPIEXEC_FLAGS;
                                for (auto& c : flags) c = c == ';' ? ' ' : c;
                                return flags;
                              }() +
                              " " + TRAIN_DIGITS_EXE + " --no_progress_bar " + args;
  INFO(command);
  return std::system(command.c_str());
}

// Every tensor of a module archive (children are nested archives), keyed by dotted name.
void collect(torch::serialize::InputArchive& archive, const std::string& prefix,
             std::map<std::string, torch::Tensor>& out) {
  for (const auto& key : archive.keys()) {
    torch::Tensor tensor;
    if (archive.try_read(key, tensor)) {
      out[prefix + key] = tensor;
      continue;
    }
    torch::serialize::InputArchive child;
    if (archive.try_read(key, child)) collect(child, prefix + key + ".", out);
  }
}

std::map<std::string, torch::Tensor> load_weights(const fs::path& file) {
  torch::serialize::InputArchive archive;
  archive.load_from(file.string());
  std::map<std::string, torch::Tensor> weights;
  collect(archive, "", weights);
  return weights;
}

}  // namespace

TEST_CASE("train_digits learns, logs and resumes bit for bit on 2 processes",
          "[example][integration]") {
  const auto dir = work_dir();
  const auto full = dir / "full";
  const auto resumed = dir / "resumed";
  fs::remove_all(full);
  fs::remove_all(resumed);

  REQUIRE(run_digits("--epochs 10 --checkpoint_every 30 --project_dir " + full.string()) == 0);
  // Everything of the run is in its directory.
  const auto full_run = full / "digits" / "version_0";
  std::ifstream metrics_file(full_run / "final_metrics.json");
  REQUIRE(metrics_file.good());
  auto metrics = nlohmann::json::parse(metrics_file);
  CHECK(metrics["val_accuracy"].get<double>() >= 0.95);
  CHECK(metrics["val_samples"] == 359);  // 20% of 1,797 rows, each counted once over both ranks
  CHECK(metrics["num_processes"] == 2);

  // The csv tracker wrote a metrics.csv with the logged columns.
  bool found_csv = false;
  for (const auto& entry : fs::recursive_directory_iterator(full)) {
    if (entry.path().filename() != "metrics.csv") continue;
    std::ifstream csv(entry.path());
    std::string header;
    std::getline(csv, header);
    CHECK_THAT(header, Catch::Contains("train/loss") && Catch::Contains("val/accuracy"));
    found_csv = true;
  }
  CHECK(found_csv);

  // Step 30 is in the middle of epoch 2 (12 steps per epoch per process).
  const auto checkpoint = full_run / "checkpoints" / "checkpoint_0";
  REQUIRE(fs::exists(checkpoint / "accel_checkpoint.json"));
  // A checkpoint of another project_dir: a new run of this project, starting from it.
  REQUIRE(run_digits("--epochs 10 --project_dir " + resumed.string() + " --resume_from " +
                     checkpoint.string()) == 0);
  auto a = load_weights(full_run / "model" / "model.pt");
  auto b = load_weights(resumed / "digits" / "version_0" / "model" / "model.pt");
  REQUIRE(a.size() == b.size());
  REQUIRE_FALSE(a.empty());
  for (const auto& [name, tensor] : a) {
    INFO(name);
    CHECK(torch::equal(tensor, b.at(name)));
  }
}

namespace {

// The runs and HParams rows a real tensorboard server shows for logdir
// (tests/trackers/tensorboard/query_server.py).
nlohmann::json query_tensorboard(const fs::path& logdir) {
  using json = nlohmann::json;
  const json statuses = {"STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"};
  json queries = {
      {"runs", {"/data/runs", json::object()}},
      {"session_groups",
       {"/data/plugin/hparams/session_groups",
        {{"request",
          {{"experimentName", ""},
           {"allowedStatuses", statuses},
           {"startIndex", 0},
           {"sliceSize", 100},
           {"colParams", json::array({{{"hparam", "lr"}, {"order", "ORDER_ASC"}}})}}}}}}};
  return json::parse(accel::test::run_python_script(
      accel::test::test_script("trackers/tensorboard/query_server.py"),
      {logdir.string(), "false", queries.dump()}));
}

}  // namespace

TEST_CASE("Two trainings into one project are two runs; a rerun never touches the other run",
          "[example][integration][runs]") {
  const auto project = work_dir() / "two_runs";
  fs::remove_all(project);
  const std::string common =
      "--epochs 3 --checkpoint_every 10 --total_limit 2 --log_with csv,tensorboard --project_dir " +
      project.string();
  REQUIRE(run_digits(common + " --lr 0.005") == 0);
  REQUIRE(run_digits(common + " --lr 0.004") == 0);
  const auto runs = project / "digits";
  const std::vector<fs::path> dirs = {runs / "version_0", runs / "version_1"};
  for (const auto& run : dirs) {
    INFO(run);
    // 12 steps per epoch per process: checkpoints at steps 10, 20, 30; this run keeps its newest 2.
    CHECK(fs::exists(run / "checkpoints" / "checkpoint_1" / "accel_checkpoint.json"));
    CHECK(fs::exists(run / "checkpoints" / "checkpoint_2" / "accel_checkpoint.json"));
    CHECK_FALSE(fs::exists(run / "checkpoints" / "checkpoint_0"));
    CHECK(fs::exists(run / "model" / "model.pt"));
    CHECK(fs::exists(run / "final_metrics.json"));
    CHECK(fs::exists(run / "metrics.csv"));
  }
  CHECK_FALSE(fs::exists(project / "checkpoints"));
  CHECK_FALSE(fs::exists(project / "model"));

  // TensorBoard: one run per training, each HParams row with its own config and its own metrics.
  auto seen = query_tensorboard(runs);
  CHECK(seen["runs"] == nlohmann::json::array({"version_0", "version_1"}));
  auto groups = seen["session_groups"]["sessionGroups"];
  REQUIRE(groups.size() == 2);
  // Ordered by lr: version_1 (0.004) first.
  const std::vector<std::pair<double, fs::path>> expected = {{0.004, dirs[1]}, {0.005, dirs[0]}};
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& [lr, run] = expected[i];
    INFO(run);
    CHECK(groups[i]["hparams"]["lr"].get<double>() == Approx(lr));
    REQUIRE(groups[i]["sessions"].size() == 1);
    CHECK(groups[i]["sessions"][0]["name"].get<std::string>().find(run.filename().string()) !=
          std::string::npos);
    const auto metrics = nlohmann::json::parse(read_text(run / "final_metrics.json"));
    bool found = false;
    for (const auto& value : groups[i]["metricValues"]) {
      if (value["name"]["tag"] != "val/accuracy") continue;
      found = true;
      CHECK(value["value"].get<double>() ==
            Approx(metrics["val_accuracy"].get<double>()).epsilon(1e-6));
      CHECK(value["trainingStep"] == 36);
    }
    CHECK(found);
  }

  // Resuming run 0 continues in its directory: numbering after its checkpoints, run 1 untouched.
  REQUIRE(run_digits(common + " --lr 0.005 --resume_from " +
                     (dirs[0] / "checkpoints" / "checkpoint_1").string()) == 0);
  CHECK(fs::exists(dirs[0] / "checkpoints" / "checkpoint_3" / "accel_checkpoint.json"));
  CHECK(fs::exists(dirs[1] / "checkpoints" / "checkpoint_1" / "accel_checkpoint.json"));
  CHECK(fs::exists(dirs[1] / "checkpoints" / "checkpoint_2" / "accel_checkpoint.json"));
  CHECK_FALSE(fs::exists(runs / "version_2"));
}

TEST_CASE("An unwritable project_dir fails on every rank before the first step",
          "[example][integration][runs]") {
  const auto dir = work_dir() / "unwritable";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const auto file = dir / "a_file";
  std::ofstream(file) << "a regular file, not a directory";
  const auto output = dir / "output.txt";
  const int status = run_digits("--epochs 2 --project_dir " + (file / "runs").string() + " > " +
                                output.string() + " 2>&1");
  const std::string text = read_text(output);
  INFO(text);
  CHECK(status != 0);
  CHECK(text.find("epoch 0:") == std::string::npos);  // nothing was trained
  // Both ranks end with the same message naming the path and the fix (their lines may interleave).
  const std::string message = "the run's output directory cannot be written";
  std::size_t count = 0;
  for (auto at = text.find(message); at != std::string::npos; at = text.find(message, at + 1))
    ++count;
  CHECK(count == 2);
  CHECK_THAT(text, Catch::Contains((file / "runs").string()) &&
                       Catch::Contains("choose a writable project_dir"));
}
