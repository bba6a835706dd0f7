// Run configuration → MLflow params: flattening, value rendering and the 6000-character cut.
#include "trackers/mlflow/mlflow_params.hpp"

#include <catch2/catch.hpp>

#include "common/utf8.hpp"

using accel::flatten_mlflow_params;
using accel::render_mlflow_param_value;
using accel::truncate_utf8;
using nlohmann::json;

TEST_CASE("nested config is flattened with '/' and rendered like the Python client") {
  json config = {{"lr", 0.001},
                 {"epochs", 10},
                 {"amp", true},
                 {"name", "digits"},
                 {"none", nullptr},
                 {"layers", {64, 32}},
                 {"model", {{"hidden", 128}, {"act", {{"kind", "relu"}}}}},
                 {"empty", json::object()}};
  auto params = flatten_mlflow_params(config);
  std::map<std::string, std::string> by_key(params.begin(), params.end());
  CHECK(params.size() == 9);
  CHECK(by_key.at("lr") == "0.001");
  CHECK(by_key.at("epochs") == "10");
  CHECK(by_key.at("amp") == "True");
  CHECK(by_key.at("name") == "digits");
  CHECK(by_key.at("none") == "None");
  CHECK(by_key.at("layers") == "[64,32]");
  CHECK(by_key.at("model/hidden") == "128");
  CHECK(by_key.at("model/act/kind") == "relu");
  CHECK(by_key.at("empty") == "{}");
}

TEST_CASE("a config that is not an object becomes one param") {
  CHECK(flatten_mlflow_params(json::array({1, 2})) ==
        std::vector<std::pair<std::string, std::string>>{{"config", "[1,2]"}});
  CHECK(flatten_mlflow_params(json()).empty());
}

TEST_CASE("floats keep their shortest round-trip form") {
  CHECK(render_mlflow_param_value(0.1) == "0.1");
  CHECK(render_mlflow_param_value(1e-8) == "1e-08");
  CHECK(render_mlflow_param_value(3.0) == "3.0");
  CHECK(std::stod(render_mlflow_param_value(0.30000000000000004)) == 0.30000000000000004);
}

TEST_CASE("truncation counts code points and never splits one") {
  bool cut = true;
  CHECK(truncate_utf8("short", 6000, &cut) == "short");
  CHECK_FALSE(cut);
  const std::string long_value(10000, 'v');
  CHECK(truncate_utf8(long_value, 6000, &cut).size() == 6000);
  CHECK(cut);
  std::string accents;
  for (int i = 0; i < 7000; ++i) accents += "é";  // 2 bytes each
  const std::string result = truncate_utf8(accents, 6000, &cut);
  CHECK(cut);
  CHECK(result.size() == 12000);
  CHECK(truncate_utf8("aé", 1, &cut) == "a");
  CHECK(truncate_utf8("aé", 2, &cut) == "aé");
  CHECK_FALSE(cut);
}
