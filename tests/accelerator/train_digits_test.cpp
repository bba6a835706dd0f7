// The train_digits example end to end, on 2 processes under mpiexec: it learns (>= 95% held-out
// accuracy on every validation sample exactly once), writes its CSV log, and a run resumed from a
// mid-epoch checkpoint ends with exactly the weights of the uninterrupted run.
#include <nlohmann/json.hpp>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
// After LibTorch: c10 defines a one-argument CHECK that would replace Catch's.
#include <catch2/catch.hpp>

namespace fs = std::filesystem;

namespace {

fs::path work_dir() {
  auto dir = fs::temp_directory_path() / ("accel_train_digits_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
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

TEST_CASE("train_digits learns, logs and resumes bit for bit on 2 processes", "[example][integration]") {
  const auto dir = work_dir();
  const auto full = dir / "full";
  const auto resumed = dir / "resumed";
  fs::remove_all(full);
  fs::remove_all(resumed);

  REQUIRE(run_digits("--epochs 10 --checkpoint_every 30 --project_dir " + full.string()) == 0);
  std::ifstream metrics_file(full / "final_metrics.json");
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
  const auto checkpoint = full / "checkpoints" / "checkpoint_0";
  REQUIRE(fs::exists(checkpoint / "accel_checkpoint.json"));
  REQUIRE(run_digits("--epochs 10 --project_dir " + resumed.string() + " --resume_from " + checkpoint.string()) == 0);
  auto a = load_weights(full / "model" / "model.pt");
  auto b = load_weights(resumed / "model" / "model.pt");
  REQUIRE(a.size() == b.size());
  REQUIRE_FALSE(a.empty());
  for (const auto& [name, tensor] : a) {
    INFO(name);
    CHECK(torch::equal(tensor, b.at(name)));
  }
}
