// runs/log-batch bodies: limits respected, order kept, values encoded as MLflow's JSON mapping.
#include "trackers/mlflow/mlflow_log_batch.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "accel/tracking/errors.hpp"

using namespace accel;
using nlohmann::json;

namespace {

std::vector<MlflowMetric> metrics(std::size_t n, std::string key = "loss") {
  std::vector<MlflowMetric> out;
  for (std::size_t i = 0; i < n; ++i)
    out.push_back({key, 0.5 * double(i), 1700000000000 + int64_t(i), int64_t(i)});
  return out;
}

}  // namespace

TEST_CASE("2500 metrics become three requests of at most 1000, in order") {
  auto m = metrics(2500);
  auto chunks = split_mlflow_log_batch("run1", m, {}, {});
  REQUIRE(chunks.size() == 3);
  int64_t expected_step = 0;
  for (const auto& chunk : chunks) {
    json body = json::parse(chunk.body);
    CHECK(body.at("run_id") == "run1");
    CHECK(body.at("metrics").size() == chunk.metrics);
    CHECK(chunk.metrics <= 1000);
    for (const auto& metric : body.at("metrics")) {
      CHECK(metric.at("step").get<int64_t>() == expected_step);
      CHECK(metric.at("value").get<double>() == 0.5 * double(expected_step));
      CHECK(metric.at("timestamp").get<int64_t>() == 1700000000000 + expected_step);
      ++expected_step;
    }
  }
  CHECK(expected_step == 2500);
  CHECK(chunks[0].metrics == 1000);
  CHECK(chunks[2].metrics == 500);
}

TEST_CASE("params and tags: at most 100 each, 1000 entities in all") {
  std::vector<MlflowParam> params;
  for (int i = 0; i < 250; ++i) params.push_back({"p" + std::to_string(i), "v"});
  std::vector<MlflowTag> tags;
  for (int i = 0; i < 30; ++i) tags.push_back({"t" + std::to_string(i), "v"});
  auto m = metrics(1900);
  auto chunks = split_mlflow_log_batch("r", m, params, tags);
  std::size_t p = 0, t = 0, n = 0;
  for (const auto& chunk : chunks) {
    CHECK(chunk.params <= 100);
    CHECK(chunk.tags <= 100);
    CHECK(chunk.metrics <= 1000);
    CHECK(chunk.params + chunk.tags + chunk.metrics <= 1000);
    json body = json::parse(chunk.body);
    CHECK(body.at("params").size() == chunk.params);
    CHECK(body.at("tags").size() == chunk.tags);
    for (const auto& param : body.at("params")) CHECK(param.at("key") == "p" + std::to_string(p++));
    for (const auto& tag : body.at("tags")) CHECK(tag.at("key") == "t" + std::to_string(t++));
    n += chunk.metrics;
  }
  CHECK(p == 250);
  CHECK(t == 30);
  CHECK(n == 1900);
}

TEST_CASE("the byte limit splits requests with long values") {
  std::vector<MlflowParam> params;
  for (int i = 0; i < 100; ++i) params.push_back({"p" + std::to_string(i), std::string(5999, 'x')});
  MlflowBatchLimits limits;
  limits.max_request_bytes = 100'000;
  auto chunks = split_mlflow_log_batch("r", {}, params, {}, limits);
  CHECK(chunks.size() > 1);
  std::size_t total = 0;
  for (const auto& chunk : chunks) {
    CHECK(chunk.body.size() <= limits.max_request_bytes);
    total += chunk.params;
  }
  CHECK(total == 100);
  limits.max_request_bytes = 1000;
  CHECK_THROWS_AS(split_mlflow_log_batch("r", {}, params, {}, limits), InvalidValue);
}

TEST_CASE("NaN and infinities use the protobuf JSON names; keys are escaped") {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<MlflowMetric> m = {{"a", std::nan(""), 1, 0},
                                 {"a", inf, 1, 1},
                                 {"a", -inf, 1, 2},
                                 {"quote\"d", 1.0000000000000002, 1, 3}};
  json body = json::parse(split_mlflow_log_batch("r", m, {}, {}).at(0).body);
  CHECK(body["metrics"][0]["value"] == "NaN");
  CHECK(body["metrics"][1]["value"] == "Infinity");
  CHECK(body["metrics"][2]["value"] == "-Infinity");
  CHECK(body["metrics"][3]["key"] == "quote\"d");
  CHECK(body["metrics"][3]["value"].get<double>() == 1.0000000000000002);  // exact round trip
}

TEST_CASE("nothing to send gives no request") {
  CHECK(split_mlflow_log_batch("r", {}, {}, {}).empty());
}
