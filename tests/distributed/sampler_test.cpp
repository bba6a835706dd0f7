// accel::DistributedSampler: same order as torch.utils.data.DistributedSampler (checked against the
// real one from .venv), complete and disjoint shards, split_batches, skip_first_batches, and use as the
// sampler of a LibTorch data loader.
// clang-format off: torch_catch.hpp must stay the first include (include sorting would move it)
#include "torch_catch.hpp"  // first: see the header
// clang-format on
#include <torch/torch.h>

#include <array>
#include <cstdio>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "accel/sampler.hpp"
#include "accel/tracking/errors.hpp"
#include "python.hpp"

namespace {

accel::DistributedSampler make(std::size_t n, int replicas, int rank, bool shuffle = true,
                               bool drop_last = false, bool split = false, std::uint64_t seed = 7) {
  accel::DistributedSamplerOptions o;
  o.num_replicas = replicas;
  o.rank = rank;
  o.shuffle = shuffle;
  o.seed = seed;
  o.drop_last = drop_last;
  o.split_batches = split;
  return accel::DistributedSampler(n, o);
}

std::string join(const std::vector<std::size_t>& v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i == 0 ? "" : " ") + std::to_string(v[i]);
  return out;
}

// torch's own DistributedSampler, one line of indices per rank.
std::vector<std::string> torch_reference(int n, int replicas, int seed, int epoch, bool drop_last) {
  std::ostringstream script;
  script << "from torch.utils.data import DistributedSampler\n"
         << "for r in range(" << replicas << "):\n"
         << "    s = DistributedSampler(range(" << n << "), num_replicas=" << replicas
         << ", rank=r, shuffle=True, seed=" << seed
         << ", drop_last=" << (drop_last ? "True" : "False") << ")\n"
         << "    s.set_epoch(" << epoch << ")\n"
         << "    print(' '.join(str(i) for i in s))\n";
  std::istringstream output(accel::test::run_python_code(script.str()));
  std::vector<std::string> lines;
  for (std::string line; std::getline(output, line);) {
    while (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

}  // namespace

TEST_CASE("shards equal torch.utils.data.DistributedSampler's for the same seed and epoch") {
  for (bool drop_last : {false, true}) {
    for (int epoch : {0, 3}) {
      const auto reference = torch_reference(23, 3, 7, epoch, drop_last);
      REQUIRE(reference.size() == 3);
      for (int r = 0; r < 3; ++r) {
        auto sampler = make(23, 3, r, true, drop_last);
        sampler.set_epoch(epoch);
        INFO("rank " << r << " epoch " << epoch << " drop_last " << drop_last);
        CHECK(join(sampler.indices()) == reference[r]);
        CHECK(sampler.num_samples() == (drop_last ? 7u : 8u));
      }
    }
  }
}

TEST_CASE("shards are complete (padded by repetition) and the permutation changes with the epoch") {
  std::multiset<std::size_t> all;
  for (int r = 0; r < 4; ++r) {
    auto s = make(10, 4, r);
    for (auto i : s.indices()) all.insert(i);
  }
  CHECK(all.size() == 12);  // 10 samples padded to 3 per rank
  for (std::size_t i = 0; i < 10; ++i) CHECK(all.count(i) >= 1);

  auto a = make(100, 2, 0);
  const auto epoch0 = a.indices();
  a.set_epoch(1);
  CHECK(a.indices() != epoch0);
  a.set_epoch(0);
  CHECK(a.indices() == epoch0);
  CHECK(join(make(5, 2, 1, /*shuffle=*/false).indices()) == "1 3 0");
}

TEST_CASE("next() hands out this rank's shard batch by batch") {
  auto s = make(10, 2, 1, /*shuffle=*/false);
  std::vector<std::vector<std::size_t>> batches;
  while (auto b = s.next(2)) batches.push_back(*b);
  REQUIRE(batches.size() == 3);
  CHECK(s.num_batches(2) == 3);
  CHECK(join(batches[0]) == "1 3");
  CHECK(join(batches[2]) == "9");
  s.reset();
  CHECK(join(*s.next(4)) == "1 3 5 7");
}

TEST_CASE("split_batches: every global batch is split across ranks, the last one wraps") {
  std::vector<std::vector<std::size_t>> per_rank(3);
  for (int r = 0; r < 3; ++r) {
    auto s = make(10, 3, r, /*shuffle=*/false, /*drop_last=*/false, /*split=*/true);
    CHECK(s.num_batches(6) == 2);
    while (auto b = s.next(6)) {
      CHECK(b->size() == 2);
      per_rank[r].insert(per_rank[r].end(), b->begin(), b->end());
    }
  }
  CHECK(join(per_rank[0]) == "0 1 6 7");
  CHECK(join(per_rank[1]) == "2 3 8 9");
  CHECK(join(per_rank[2]) == "4 5 0 1");  // the last global batch is completed from the start

  auto dropping = make(10, 3, 0, false, /*drop_last=*/true, /*split=*/true);
  CHECK(dropping.num_batches(6) == 1);
  auto bad = make(10, 3, 0, false, false, true);
  CHECK_THROWS_WITH(bad.next(4),
                    Catch::Contains("batch_size=4") && Catch::Contains("num_replicas=3"));
}

TEST_CASE("skip_first_batches resumes mid-epoch once") {
  auto s = make(40, 2, 0);
  s.set_epoch(5);
  std::vector<std::vector<std::size_t>> full;
  while (auto b = s.next(4)) full.push_back(*b);
  s.reset();
  s.skip_first_batches(3);
  std::vector<std::vector<std::size_t>> resumed;
  while (auto b = s.next(4)) resumed.push_back(*b);
  REQUIRE(resumed.size() == full.size() - 3);
  CHECK(resumed.front() == full[3]);
  CHECK(resumed.back() == full.back());
  s.reset();
  CHECK(*s.next(4) == full[0]);  // consumed: the next pass starts at the beginning
}

TEST_CASE("save and load restore epoch and position") {
  auto s = make(50, 2, 1);
  s.set_epoch(2);
  s.next(5);
  s.next(5);
  torch::serialize::OutputArchive out;
  s.save(out);
  std::ostringstream bytes;
  out.save_to(bytes);
  const auto expected_next = *s.next(5);

  auto t = make(50, 2, 1);
  torch::serialize::InputArchive in;
  std::istringstream input(bytes.str());
  in.load_from(input);
  t.load(in);
  CHECK(t.epoch() == 2);
  CHECK(*t.next(5) == expected_next);
}

namespace {
struct Numbers : torch::data::datasets::Dataset<Numbers, torch::data::Example<>> {
  torch::data::Example<> get(std::size_t index) override {
    return {torch::tensor(static_cast<std::int64_t>(index)), torch::tensor(0)};
  }
  std::optional<std::size_t> size() const override { return 12; }
};
}  // namespace

TEST_CASE("works as the sampler of a LibTorch data loader") {
  auto sampler = make(12, 3, 2, /*shuffle=*/false);
  auto loader = torch::data::make_data_loader(Numbers().map(torch::data::transforms::Stack<>()),
                                              std::move(sampler),
                                              torch::data::DataLoaderOptions().batch_size(2));
  std::vector<std::int64_t> seen;
  for (auto& batch : *loader) {
    for (std::int64_t i = 0; i < batch.data.size(0); ++i)
      seen.push_back(batch.data[i].item<std::int64_t>());
  }
  CHECK(seen == std::vector<std::int64_t>{2, 5, 8, 11});
}

TEST_CASE("bad sampler options are refused with the value") {
  CHECK_THROWS_WITH(make(10, 2, 2), Catch::Contains("rank=2"));
  CHECK_THROWS_WITH(make(10, 0, 0), Catch::Contains("num_replicas=0"));
  CHECK_THROWS_AS(make(1, 2, 0, true, /*drop_last=*/true), accel::InvalidValue);
  auto s = make(10, 2, 0);
  CHECK_THROWS_AS(s.next(0), accel::InvalidValue);
}
