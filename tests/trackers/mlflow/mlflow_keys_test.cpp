// MLflow key sanitising: every mapped key is one MLflow's own validator accepts, and the mapping is
// the documented one.
#include "trackers/mlflow/mlflow_keys.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "mlflow_test_server.hpp"

using accel::is_valid_mlflow_key;
using accel::MlflowKeyMapper;
using accel::sanitize_mlflow_key;

TEST_CASE("valid keys pass through unchanged") {
  for (std::string key : {"loss", "train/loss", "lr-0.1", "a b:c", "x_y.z", "epoch/val/acc"}) {
    CHECK(is_valid_mlflow_key(key));
    CHECK(sanitize_mlflow_key(key) == key);
  }
}

TEST_CASE("the documented mapping") {
  CHECK(sanitize_mlflow_key("loss@step#1") == "loss_step_1");
  CHECK(sanitize_mlflow_key("a//b/") == "a/b");
  CHECK(sanitize_mlflow_key("/abs/path") == "abs/path");
  CHECK(sanitize_mlflow_key("./a") == "a");
  CHECK(sanitize_mlflow_key("a/../b") == "a/__/b");
  CHECK(sanitize_mlflow_key("..") == "__");
  CHECK(sanitize_mlflow_key("..a/b") == "__a/b");
  CHECK(sanitize_mlflow_key("") == "_");
  CHECK(sanitize_mlflow_key("/") == "_");
  CHECK(sanitize_mlflow_key("préc") == "pr_c");  // one '_' per code point, not per byte
  CHECK(sanitize_mlflow_key("λ/ψ") == "_/_");
  CHECK(sanitize_mlflow_key(std::string(300, 'k')) == std::string(250, 'k'));
  CHECK(sanitize_mlflow_key(std::string(249, 'k') + "/x") == std::string(249, 'k') + "_");
}

TEST_CASE("invalid keys are recognised") {
  for (std::string key :
       {"", "a//b", "/a", "a/", ".", "..", "a/./b", "a/../b", "x@y", "é", "..a"}) {
    CHECK_FALSE(is_valid_mlflow_key(key));
  }
  CHECK_FALSE(is_valid_mlflow_key(std::string(251, 'a')));
}

TEST_CASE("the mapper is one-to-one and deterministic") {
  MlflowKeyMapper mapper;
  auto first = mapper.map("a@b");
  CHECK(first.key == "a_b");
  CHECK(first.renamed);
  CHECK(first.first_time);
  auto clash = mapper.map("a#b");  // maps to "a_b" too: gets a suffix
  CHECK(clash.key == "a_b_2");
  auto already = mapper.map("a_b");  // a valid key that another key already took
  CHECK(already.key == "a_b_3");
  CHECK(already.renamed);
  auto again = mapper.map("a@b");
  CHECK(again.key == "a_b");
  CHECK_FALSE(again.first_time);

  MlflowKeyMapper other;  // same order of first appearance → same result
  CHECK(other.map("a@b").key == "a_b");
  CHECK(other.map("a#b").key == "a_b_2");

  MlflowKeyMapper long_keys;
  const std::string a = std::string(260, 'x') + "a";
  const std::string b = std::string(260, 'x') + "b";
  CHECK(long_keys.map(a).key == std::string(250, 'x'));
  CHECK(long_keys.map(b).key == std::string(248, 'x') + "_2");
}

TEST_CASE("mlflow's own validator accepts every sanitised key") {
  const std::vector<std::string> nasty = {"",
                                          "/",
                                          "//",
                                          "a//b",
                                          "../../etc/passwd",
                                          "./x/./y/",
                                          "tab\there",
                                          "new\nline",
                                          "q?u=e&r#y",
                                          "emoji 🚀 key",
                                          "ümlaut",
                                          "back\\slash",
                                          "semi;colon",
                                          "..a",
                                          "a..",
                                          ". /x",
                                          std::string(400, '/'),
                                          std::string(240, 'a') + "/.././" + std::string(30, 'b'),
                                          "trailing/..",
                                          "$HOME",
                                          "C:\\path"};
  nlohmann::json keys = nlohmann::json::array();
  for (const auto& k : nasty) {
    const std::string s = sanitize_mlflow_key(k);
    CHECK(is_valid_mlflow_key(s));
    keys.push_back(s);
  }
  // mlflow's _validate_metric_name / _validate_param_name / length limit decide, not us.
  const std::string out = accel::test::run_python_script(
      accel::test::test_script("trackers/mlflow/validate_keys.py"), {keys.dump()});
  CHECK(out.find("ALL VALID") != std::string::npos);
  INFO(out);
}
