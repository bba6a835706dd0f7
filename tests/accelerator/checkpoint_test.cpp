// Checkpoint directories: atomic commit, completion marker, automatic naming, pruning, RNG states.
#include "accel/checkpoint.hpp"

#include <torch/torch.h>
#include <unistd.h>

#include <fstream>
// After LibTorch: c10 defines a one-argument CHECK that would replace Catch's.
#include <catch2/catch.hpp>

namespace fs = std::filesystem;
namespace ckpt = accel::checkpoint;

namespace {
fs::path fresh_dir(const std::string& name) {
  auto dir =
      fs::temp_directory_path() / ("accel_checkpoint_test_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}
}  // namespace

TEST_CASE("commit renames a finished temp dir into place with a completion marker",
          "[checkpoint]") {
  auto root = fresh_dir("commit");
  auto final_dir = root / "checkpoint_0";
  auto temp = ckpt::temp_dir_for(final_dir);
  CHECK(temp == root / ".checkpoint_0.tmp");
  fs::create_directories(temp);
  ckpt::write_archive(temp / "value.pt",
                      [](auto& archive) { archive.write("x", torch::arange(3)); });
  CHECK_FALSE(fs::exists(final_dir));
  ckpt::commit(temp, final_dir, {{"num_processes", 2}});
  CHECK_FALSE(fs::exists(temp));
  auto marker = ckpt::require_complete(final_dir);
  CHECK(marker["num_processes"] == 2);
  CHECK(marker["complete"] == true);
  torch::Tensor x;
  ckpt::read_archive(final_dir / "value.pt", [&](auto& archive) { archive.read("x", x); });
  CHECK(torch::equal(x, torch::arange(3)));
  // Never over an existing checkpoint.
  fs::create_directories(temp);
  CHECK_THROWS_AS(ckpt::commit(temp, final_dir, {}), accel::CheckpointError);
}

TEST_CASE("A directory without the completion marker is refused with a clear message",
          "[checkpoint]") {
  auto dir = fresh_dir("incomplete") / "checkpoint_3";
  fs::create_directories(dir);
  std::ofstream(dir / "model_0.pt") << "half";
  try {
    ckpt::require_complete(dir);
    FAIL("no exception");
  } catch (const accel::CheckpointError& e) {
    CHECK_THAT(e.what(), Catch::Contains("checkpoint_3") && Catch::Contains("completion marker") &&
                             Catch::Contains("interrupted"));
  }
  CHECK_THROWS_AS(ckpt::require_complete(dir / "missing"), accel::CheckpointError);
  std::ofstream(dir / ckpt::kMarkerName) << "{not json";
  CHECK_THROWS_AS(ckpt::require_complete(dir), accel::CheckpointError);
}

TEST_CASE("A missing or corrupt file names itself", "[checkpoint]") {
  auto dir = fresh_dir("corrupt");
  try {
    ckpt::read_archive(dir / "optimizer_0.pt", [](auto&) {});
    FAIL("no exception");
  } catch (const accel::CheckpointError& e) {
    CHECK_THAT(e.what(), Catch::Contains("optimizer_0.pt"));
  }
  std::ofstream(dir / "model_0.pt") << "garbage";
  CHECK_THROWS_AS(ckpt::read_archive(dir / "model_0.pt", [](auto&) {}), accel::CheckpointError);
}

TEST_CASE("Automatic checkpoints are listed by index and pruned oldest first", "[checkpoint]") {
  auto root = fresh_dir("prune");
  for (int i : {0, 2, 10, 1}) fs::create_directories(root / ("checkpoint_" + std::to_string(i)));
  fs::create_directories(root / ".checkpoint_11.tmp");
  fs::create_directories(root / "checkpoint_x");
  auto found = ckpt::automatic_checkpoints(root);
  REQUIRE(found.size() == 4);
  CHECK(found.front().first == 0);
  CHECK(found.back().first == 10);
  auto deleted = ckpt::prune(root, 2);
  CHECK(deleted.size() == 2);
  CHECK_FALSE(fs::exists(root / "checkpoint_0"));
  CHECK_FALSE(fs::exists(root / "checkpoint_1"));
  CHECK(fs::exists(root / "checkpoint_2"));
  CHECK(fs::exists(root / "checkpoint_10"));
  CHECK(fs::exists(root / "checkpoint_x"));  // not ours: untouched
  CHECK(ckpt::automatic_index("runs/checkpoints/checkpoint_12") == 12);
  CHECK_FALSE(ckpt::automatic_index("checkpoint_").has_value());
  CHECK_FALSE(ckpt::automatic_index("checkpoint_1a").has_value());
}

TEST_CASE("RNG states restore the same random stream", "[checkpoint]") {
  auto dir = fresh_dir("rng");
  torch::manual_seed(5);
  torch::rand({3});
  ckpt::save_rng_states(dir / "random_states_0.pt", 17);
  auto expected = torch::rand({4});
  torch::rand({100});  // move on
  CHECK(ckpt::load_rng_states(dir / "random_states_0.pt") == 17);
  CHECK(torch::equal(torch::rand({4}), expected));
}
