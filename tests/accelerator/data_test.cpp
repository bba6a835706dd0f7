// TensorDataset and DataLoader: batching, sharding across simulated ranks, padding bookkeeping,
// split_batches, drop_last, even_batches, epochs and resume positions.
#include "accel/data.hpp"

#include <torch/torch.h>

#include <set>

#include "accel/tracking/errors.hpp"
// After LibTorch: c10 defines a one-argument CHECK that would replace Catch's.
#include <catch2/catch.hpp>

using accel::DataLoader;
using accel::TensorDataset;

namespace {

TensorDataset numbered(int64_t n) {
  auto ids = torch::arange(n, torch::kInt64);
  return TensorDataset(ids.to(torch::kFloat32).unsqueeze(1), ids);
}

DataLoader sharded(int64_t n, accel::DataLoaderOptions options, int rank, int world,
                   bool split_batches = false, bool even_batches = true) {
  DataLoader loader(numbered(n), options);
  loader.shard({.rank = rank,
                .num_processes = world,
                .split_batches = split_batches,
                .even_batches = even_batches});
  return loader;
}

// Every target id the loader yields in one pass, and the ids of real (non-padded) rows.
std::pair<std::vector<int64_t>, std::vector<int64_t>> one_pass(DataLoader& loader) {
  std::vector<int64_t> all, real;
  for (const auto& batch : loader) {
    for (int64_t i = 0; i < batch.target.size(0); ++i) {
      all.push_back(batch.target[i].item<int64_t>());
      if (i < loader.real_rows_in_current_batch()) real.push_back(batch.target[i].item<int64_t>());
    }
  }
  return {all, real};
}

}  // namespace

TEST_CASE("TensorDataset validates its tensors", "[data]") {
  CHECK_THROWS_AS(TensorDataset(torch::zeros({3, 2}), torch::zeros({4})), accel::InvalidValue);
  CHECK_THROWS_AS(TensorDataset(torch::zeros({0, 2}), torch::zeros({0})), accel::InvalidValue);
  CHECK_THROWS_AS(DataLoader(numbered(4), {.batch_size = 0}), accel::InvalidValue);
  auto subset = numbered(10).subset(torch::tensor({7, 2}));
  CHECK(subset.size() == 2);
  CHECK(subset.target()[0].item<int64_t>() == 7);
}

TEST_CASE("A single-process loader yields every sample once, in order, with a short last batch",
          "[data]") {
  DataLoader loader(numbered(10), {.batch_size = 4});
  CHECK(loader.size() == 3);
  std::vector<int64_t> sizes;
  std::vector<int64_t> ids;
  for (const auto& batch : loader) {
    sizes.push_back(batch.data.size(0));
    for (int64_t i = 0; i < batch.target.size(0); ++i)
      ids.push_back(batch.target[i].item<int64_t>());
  }
  CHECK((sizes == std::vector<int64_t>{4, 4, 2}));
  CHECK((ids == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  CHECK(loader.epoch() == 1);  // a finished pass advances the epoch
}

TEST_CASE("Shuffling differs per epoch and is identical for every rank", "[data]") {
  auto a = sharded(20, {.batch_size = 20, .shuffle = true, .seed = 3}, 0, 1);
  auto b = sharded(20, {.batch_size = 20, .shuffle = true, .seed = 3}, 0, 1);
  auto first = one_pass(a).first;
  CHECK(first == one_pass(b).first);
  auto second = one_pass(a).first;
  CHECK(first != second);
  CHECK(std::set<int64_t>(second.begin(), second.end()).size() == 20);
}

TEST_CASE("Ranks share the data: padded duplicates trail, real rows cover the dataset exactly once",
          "[data]") {
  for (int world : {2, 3}) {
    for (int64_t n : {10, 11, 7}) {
      std::multiset<int64_t> real_ids;
      std::set<int64_t> batches;
      for (int rank = 0; rank < world; ++rank) {
        auto loader = sharded(n, {.batch_size = 2, .shuffle = true, .seed = 1}, rank, world);
        auto [all, real] = one_pass(loader);
        CHECK(static_cast<int64_t>(all.size()) == loader.samples_per_process());
        CHECK(static_cast<int64_t>(real.size()) == loader.real_samples_per_process());
        batches.insert(loader.size());
        real_ids.insert(real.begin(), real.end());
      }
      INFO("world " << world << " n " << n);
      CHECK(batches.size() == 1);  // every rank has the same number of batches
      CHECK(static_cast<int64_t>(real_ids.size()) == n);
      CHECK(std::set<int64_t>(real_ids.begin(), real_ids.end()).size() ==
            static_cast<std::size_t>(n));
    }
  }
}

TEST_CASE("drop_last drops the incomplete batches and never pads", "[data]") {
  auto loader = sharded(11, {.batch_size = 2, .drop_last = true}, 1, 2);
  auto [all, real] = one_pass(loader);
  CHECK(loader.size() == 2);
  CHECK(all.size() == 4);
  CHECK(all == real);
}

TEST_CASE("even_batches = false gives the remainder to the first ranks without padding", "[data]") {
  std::vector<std::size_t> counts;
  std::multiset<int64_t> ids;
  for (int rank = 0; rank < 3; ++rank) {
    auto loader = sharded(10, {.batch_size = 4}, rank, 3, false, false);
    auto [all, real] = one_pass(loader);
    CHECK(all == real);
    counts.push_back(all.size());
    ids.insert(all.begin(), all.end());
  }
  CHECK((counts == std::vector<std::size_t>{4, 3, 3}));
  CHECK(ids.size() == 10);
}

TEST_CASE("split_batches gives each rank its share of the global batch", "[data]") {
  CHECK_THROWS_AS(sharded(10, {.batch_size = 5}, 0, 2, true), accel::InvalidValue);
  std::multiset<int64_t> real_ids;
  for (int rank = 0; rank < 2; ++rank) {
    auto loader = sharded(10, {.batch_size = 4}, rank, 2, true);
    CHECK(loader.batch_size() == 2);
    CHECK(loader.size() == 3);  // ceil(10 / 4) global batches
    auto [all, real] = one_pass(loader);
    CHECK(all.size() == 6);
    real_ids.insert(real.begin(), real.end());
  }
  CHECK(real_ids.size() == 10);
  CHECK(std::set<int64_t>(real_ids.begin(), real_ids.end()).size() == 10);
}

TEST_CASE("The gradient state sees the last batch of a pass", "[data]") {
  auto state = std::make_shared<accel::GradientState>();
  DataLoader loader(numbered(5), {.batch_size = 2});
  loader.shard({.gradient_state = state});
  std::vector<bool> ends;
  for (const auto& batch : loader) {
    (void)batch;
    ends.push_back(state->end_of_dataloader);
    CHECK(state->active_loader == &loader);
  }
  CHECK((ends == std::vector<bool>{false, false, true}));
}

TEST_CASE("A saved loader resumes after the last batch it yielded, in the same epoch", "[data]") {
  DataLoader reference(numbered(12), {.batch_size = 2, .shuffle = true, .seed = 9});
  one_pass(reference);                        // epoch 0
  auto expected = one_pass(reference).first;  // epoch 1

  DataLoader loader(numbered(12), {.batch_size = 2, .shuffle = true, .seed = 9});
  one_pass(loader);
  torch::serialize::OutputArchive out;
  std::vector<int64_t> seen;
  for (const auto& batch : loader) {
    for (int64_t i = 0; i < batch.target.size(0); ++i)
      seen.push_back(batch.target[i].item<int64_t>());
    if (seen.size() == 4) {
      loader.save(out);
      break;
    }
  }
  std::ostringstream bytes;
  out.save_to(bytes);
  DataLoader restored(numbered(12), {.batch_size = 2, .shuffle = true, .seed = 9});
  torch::serialize::InputArchive in;
  std::istringstream input(bytes.str());
  in.load_from(input);
  restored.load(in);
  CHECK(restored.epoch() == 1);
  auto rest = one_pass(restored).first;
  seen.insert(seen.end(), rest.begin(), rest.end());
  CHECK(seen == expected);
  CHECK(restored.epoch() == 2);
}

TEST_CASE("skip_first_batches applies to the next pass only", "[data]") {
  DataLoader loader(numbered(6), {.batch_size = 2});
  loader.skip_first_batches(2);
  CHECK((one_pass(loader).first == std::vector<int64_t>{4, 5}));
  CHECK(one_pass(loader).first.size() == 6);
  CHECK_THROWS_AS(loader.skip_first_batches(-1), accel::InvalidValue);
}
