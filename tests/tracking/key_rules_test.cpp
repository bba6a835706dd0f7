// Key rules: metric key validation, run-name sanitising (never outside the logging dir), config
// flattening, version directories.
#include "accel/tracking/key_rules.hpp"

#include <cmath>

#include "accel/tracking/errors.hpp"
#include "tracking_test_support.hpp"

using namespace accel;

TEST_CASE("empty and whitespace keys are rejected with the key in the message") {
  CHECK_THROWS_AS(validate_key(""), InvalidValue);
  CHECK_THROWS_AS(validate_key("   "), InvalidValue);
  CHECK_THROWS_AS(validate_key("\t\n"), InvalidValue);
  CHECK_THROWS_WITH(validate_key(" "), Catch::Contains("' '") && Catch::Contains("empty"));
  CHECK_NOTHROW(validate_key("train/loss"));
  CHECK_NOTHROW(validate_key(" padded "));
  CHECK_NOTHROW(validate_key("損失"));
}

TEST_CASE("run names become one safe directory name") {
  CHECK(sanitize_path_component("digits") == "digits");
  CHECK(sanitize_path_component("../../etc") == "____etc");
  CHECK(sanitize_path_component("a/b\\c") == "a_b_c");
  CHECK(sanitize_path_component("..") == "_");
  CHECK(sanitize_path_component(".") == "_");
  CHECK(sanitize_path_component("") == "_");
  CHECK(sanitize_path_component(std::string("a\nb\x01") + "c\x7f") == "a_b_c_");
  CHECK(sanitize_path_component("实验 ü") == "实验 ü");
  for (std::string_view evil : {"..", "../x", "x/../..", "/abs", "\x1b[31m", "...."}) {
    auto s = sanitize_path_component(evil);
    INFO(evil << " -> " << s);
    CHECK(s.find("..") == std::string::npos);
    CHECK(s.find('/') == std::string::npos);
    for (char c : s) CHECK(static_cast<unsigned char>(c) >= 0x20);
  }
}

TEST_CASE("child_directory never leaves its base") {
  std::filesystem::path base = "/tmp/logs";
  for (std::string_view name : {"..", "../..", "/etc", "a/../../b", "ok"}) {
    auto child = child_directory(base, name);
    CHECK(child.parent_path() == base);
  }
}

TEST_CASE("nested config is flattened with a/b keys and non-JSON values stringified") {
  nlohmann::json config = {
      {"lr", 0.001},         {"model", {{"hidden", 128}, {"act", "relu"}, {"deep", {{"x", true}}}}},
      {"layers", {1, 2, 3}}, {"bad", std::nan("")},
      {"inf", -HUGE_VAL},    {"empty", nlohmann::json::object()}};
  config["blob"] = nlohmann::json::binary({1, 2, 3});
  auto flat = flatten_config(config);
  std::map<std::string, nlohmann::json> m(flat.begin(), flat.end());
  CHECK(m.at("lr") == 0.001);
  CHECK(m.at("model/hidden") == 128);
  CHECK(m.at("model/act") == "relu");
  CHECK(m.at("model/deep/x") == true);
  CHECK(m.at("layers") == nlohmann::json({1, 2, 3}));
  CHECK(m.at("bad") == "NaN");
  CHECK(m.at("inf") == "-Infinity");
  CHECK(m.at("blob") == "<binary 3 bytes>");
  CHECK(m.at("empty") == nlohmann::json::object());
  CHECK(m.size() == 9);
  auto dotted = flatten_config({{"a", {{"b", 1}}}}, ".");
  CHECK(dotted.front().first == "a.b");
  CHECK(flatten_config(nlohmann::json(5)).front() ==
        std::pair<std::string, nlohmann::json>("config", 5));
}

TEST_CASE("json_safe_config keeps nesting and stringifies what JSON cannot hold") {
  nlohmann::json config = {{"a", {{"b", std::nan("")}}}, {"list", {1.5, HUGE_VAL}}};
  auto safe = json_safe_config(config);
  CHECK(safe["a"]["b"] == "NaN");
  CHECK(safe["list"][1] == "Infinity");
  CHECK(safe["list"][0] == 1.5);
}

TEST_CASE("sanitize_key replaces what a backend forbids") {
  auto alnum = [](unsigned char c) { return std::isalnum(c) != 0 || c == '/'; };
  CHECK(sanitize_key("train/loss (avg)", alnum) == "train/loss__avg_");
  CHECK(sanitize_key("a:b", alnum, '-') == "a-b");
}

TEST_CASE("version directories count up like Lightning's") {
  test::TempDir dir;
  auto base = dir.path() / "proj";
  CHECK(create_version_directory(base).filename() == "version_0");
  CHECK(create_version_directory(base).filename() == "version_1");
  std::filesystem::create_directories(base / "version_7");
  std::filesystem::create_directories(base / "version_x");
  CHECK(create_version_directory(base).filename() == "version_8");
}
