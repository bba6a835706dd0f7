// W&B artifacts of the wandb tracker: the run_table artifact of a logged Table and log_artifact /
// log_model. Offline runs are read back with wandb's own reader (`wandb leet inspect`) and
// uploaded with the pinned SDK's `wandb sync` to the recording W&B server; online runs talk to
// that server directly. The digests checked against constants were measured from wandb 0.31.0's
// own artifacts of the same data.
#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <set>

#include "accel/tracking/hub.hpp"
#include "accel/tracking/trackers/wandb/wandb_tracker.hpp"
#include "python.hpp"
#include "recording_server.hpp"
#include "trackers/wandb/artifact_manifest.hpp"
#include "trackers/wandb/table_json.hpp"
#include "trackers/wandb/wandb_media.hpp"
#include "wandb_test_support.hpp"

using accel::InvalidValue;
using accel::RunStatus;
using accel::Table;
using accel::UsageError;
using accel::Values;
using accel::WandbTracker;
using accel::test::kApiKey;
using accel::test::OnlineEnv;
using accel::test::RecordingServer;
using accel::test::ScopedEnv;
using accel::test::shell_quote;
using accel::test::TempDir;
using accel::test::tracker_init;
using nlohmann::json;

namespace {

// wandb 0.31.0, `wandb.Table(columns=["a", "b"], data=[[1, "x"], [2, "y"]])` logged as "tbl":
// the bytes of its artifact entry tbl.table.json, their digest, and the artifact digest.
constexpr const char* kSdkTableJson =
    R"({"_type": "table", "column_types": {"params": {"type_map": {"a": {"params": {"allowed_types": [{"wb_type": "none"}, {"wb_type": "number"}]}, "wb_type": "union"}, "b": {"params": {"allowed_types": [{"wb_type": "none"}, {"wb_type": "string"}]}, "wb_type": "union"}}}, "wb_type": "typedDict"}, "columns": ["a", "b"], "data": [[1, "x"], [2, "y"]], "log_mode": "IMMUTABLE", "ncols": 2, "nrows": 2})";
constexpr const char* kSdkTableDigest = "Bqcz3MbN7cTwyRGXwFRYBw==";
constexpr const char* kSdkArtifactDigest = "6eca5d4c270958339e793fcb5d04283f";

accel::wandb::ArtifactEntry entry(std::string path, std::string digest) {
  accel::wandb::ArtifactEntry out;
  out.path = std::move(path);
  out.digest = std::move(digest);
  return out;
}

Table small_table() {
  return Table{{"a", "b"}, {{1, "x"}, {2, "y"}}};
}

struct OfflineEnv {
  ScopedEnv mode{"WANDB_MODE", "offline"};
  ScopedEnv key{"WANDB_API_KEY", nullptr};
  ScopedEnv dir{"WANDB_DIR", nullptr};
  ScopedEnv id{"WANDB_RUN_ID", nullptr};
  ScopedEnv netrc{"NETRC", "/nonexistent/netrc"};
};

std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// `wandb sync <run_dir>` (the pinned wheel's CLI) to the recording server; fails the test unless it
// exits with 0.
void wandb_sync(const std::filesystem::path& run_dir, const RecordingServer& server,
                const std::filesystem::path& work) {
  const auto home = work / "home";
  std::filesystem::create_directories(home);
  const std::string command = "cd " + shell_quote(work.string()) + " && " +
                              accel::test::wandb_env(home) + "WANDB_BASE_URL=" + server.url() +
                              " WANDB_API_KEY=" + kApiKey + " " + accel::test::venv_bin("wandb") +
                              " sync --no-skip-online " + shell_quote(run_dir.string()) + " 2>&1";
  const auto result = accel::test::run_shell(command);
  INFO(result.output);
  REQUIRE(result.exit_code() == 0);
}

// The server's artifacts named `name` (the recording server keys them by its own ids).
std::vector<json> artifacts_named(const json& state, const std::string& name) {
  std::vector<json> out;
  for (const auto& [id, artifact] : state["artifacts"].items()) {
    if (artifact["name"] == name) out.push_back(artifact);
  }
  return out;
}

int requests_of(const json& state, const std::string& operation) {
  int count = 0;
  for (const auto& request : state["requests"]) count += request[2] == operation ? 1 : 0;
  return count;
}

// The artifact record `wandb leet inspect` reads from the run's .wandb file, by name.
json leet_artifact(const std::filesystem::path& log_file, const std::filesystem::path& home,
                   const std::string& name) {
  const auto records = accel::test::leet_records(log_file, home);
  for (const auto& record : records.of_type("artifact")) {
    if (record["artifact"]["name"] == name) return record["artifact"];
  }
  FAIL("no artifact record named " << name << " in " << records.output.substr(0, 3000));
  return nullptr;
}

// A server artifact holds what accel recorded: digest, aliases, each file's bytes (by SHA-256 and
// the declared MD5), and a manifest with the same entries, uploaded under the digest it declared.
void check_uploaded(const json& uploaded, const json& record) {
  INFO("server: " << uploaded.dump().substr(0, 3000) << "\nrecord: " << record.dump());
  CHECK(uploaded["committed"] == true);
  CHECK(uploaded["type"] == record["type"]);
  CHECK(uploaded["digest"] == record["digest"]);
  CHECK(uploaded["digest_algorithm"] == "MANIFEST_MD5");
  CHECK(uploaded["aliases"] == record["aliases"]);
  CHECK(uploaded["client_id"] == record["client_id"]);
  const auto& contents = record["manifest"]["contents"];
  REQUIRE(uploaded["files"].size() == contents.size());
  for (const auto& entry : contents) {
    const std::string path = entry["path"];
    INFO("entry " << path);
    REQUIRE(uploaded["files"].contains(path));
    const auto& file = uploaded["files"][path];
    CHECK(file["md5"] == entry["digest"]);
    CHECK(file["content_md5_header"] == entry["digest"]);  // the upload headers were sent
    CHECK(file["content_type"] == "application/octet-stream");
    CHECK(uploaded["declared_files"][path] == entry["digest"]);
    const std::string bytes = read_all(entry["local_path"].get<std::string>());
    CHECK(file["sha256"] == accel::wandb::sha256_hex(bytes));
    CHECK(file["size"] == bytes.size());
    const auto& manifest_entry = uploaded["manifest"]["contents"][path];
    CHECK(manifest_entry["digest"] == entry["digest"]);
    CHECK(manifest_entry["size"] == bytes.size());
  }
  CHECK(uploaded["manifest"]["version"] == 1);
  CHECK(uploaded["manifest"]["storagePolicy"] == "wandb-storage-policy-v1");
  CHECK(uploaded["manifest_digest"] == uploaded["manifest_md5"]);
  CHECK(uploaded["manifest_content_md5_header"] == uploaded["manifest_md5"]);
}

}  // namespace

TEST_CASE("artifact digests, names and table JSON are the ones wandb 0.31.0 computes") {
  using namespace accel::wandb;
  CHECK(md5_base64("") == "1B2M2Y8AsgTpgAmY7PhCfg==");
  CHECK(sdk_table_json(small_table()) == kSdkTableJson);
  CHECK(md5_base64(kSdkTableJson) == kSdkTableDigest);
  CHECK(manifest_digest({entry("tbl.table.json", kSdkTableDigest)}) == kSdkArtifactDigest);
  // Sorted by path, whatever the order given.
  const std::vector<ArtifactEntry> two = {entry("b", "x"), entry("a", "y")};
  const std::vector<ArtifactEntry> reversed = {two[1], two[0]};
  CHECK(manifest_digest(two) == manifest_digest(reversed));
  CHECK(manifest_digest(two) != manifest_digest({entry("a", "x"), entry("b", "y")}));
  // The SDK's names for run_table artifacts (measured: key "eval/preds" of run 51fh4dgd).
  CHECK(sanitize_artifact_name("run-51fh4dgd-tbl") == "run-51fh4dgd-tbl");
  CHECK(sanitize_artifact_name("run-51fh4dgd-eval/preds") == "run-51fh4dgd-evalpreds-Rj78ew");
  const auto id = new_client_id();
  CHECK(id.size() == 128);
  CHECK(
      std::all_of(id.begin(), id.end(), [](char c) { return std::islower(c) || std::isdigit(c); }));
  CHECK(new_client_id() != id);
}

TEST_CASE("the table JSON follows Python's json.dumps and W&B's column types") {
  using accel::wandb::python_float_repr;
  using accel::wandb::sdk_table_json;
  CHECK(python_float_repr(0.5) == "0.5");
  CHECK(python_float_repr(100.0) == "100.0");
  CHECK(python_float_repr(-0.0) == "-0.0");
  CHECK(python_float_repr(0.1 + 0.2) == "0.30000000000000004");
  CHECK(python_float_repr(1e-4) == "0.0001");
  CHECK(python_float_repr(1e-5) == "1e-05");
  CHECK(python_float_repr(1e15) == "1000000000000000.0");
  CHECK(python_float_repr(1e16) == "1e+16");
  CHECK(python_float_repr(1e20) == "1e+20");
  CHECK(python_float_repr(-1.5e-10) == "-1.5e-10");
  CHECK(python_float_repr(123456.789) == "123456.789");
  // wandb 0.31.0: wandb.Table(columns=["n","f","b","s","z"], data=[[1, 0.5, True, "é", None],
  // [None, 1e-05, False, 'x"y', None], [3, 1e20, True, "\t", None]]).
  const Table mixed{{"n", "f", "b", "s", "z"},
                    {{1, 0.5, true, "\xc3\xa9", nullptr},
                     {nullptr, 1e-05, false, "x\"y", nullptr},
                     {3, 1e20, true, "\t", nullptr}}};
  CHECK(
      sdk_table_json(mixed) ==
      R"({"_type": "table", "column_types": {"params": {"type_map": {"b": {"params": {"allowed_types": [{"wb_type": "boolean"}, {"wb_type": "none"}]}, "wb_type": "union"}, "f": {"params": {"allowed_types": [{"wb_type": "none"}, {"wb_type": "number"}]}, "wb_type": "union"}, "n": {"params": {"allowed_types": [{"wb_type": "none"}, {"wb_type": "number"}]}, "wb_type": "union"}, "s": {"params": {"allowed_types": [{"wb_type": "none"}, {"wb_type": "string"}]}, "wb_type": "union"}, "z": {"params": {"allowed_types": [{"wb_type": "none"}, {"wb_type": "unknown"}]}, "wb_type": "union"}}}, "wb_type": "typedDict"}, "columns": ["n", "f", "b", "s", "z"], "data": [[1, 0.5, true, "\u00e9", null], [null, 1e-05, false, "x\"y", null], [3, 1e+20, true, "\t", null]], "log_mode": "IMMUTABLE", "ncols": 5, "nrows": 3})");
  // NaN is null in the SDK's table data; lists and objects leave the column types to W&B.
  const Table nested{{"l", "v"}, {{json::array({1, 2}), std::nan("")}}};
  CHECK(
      sdk_table_json(nested) ==
      R"({"_type": "table", "columns": ["l", "v"], "data": [[[1, 2], null]], "log_mode": "IMMUTABLE", "ncols": 2, "nrows": 1})");
}

TEST_CASE("log_artifact refuses what W&B would refuse, naming the value and the fix") {
  OfflineEnv env;
  TempDir logs("accel-wandb-art");
  WandbTracker tracker(tracker_init("bad", logs.path()));
  tracker.start();
  const auto file = logs / "weights.bin";
  std::ofstream(file) << "w";
  const auto missing = logs / "nope.bin";
  auto message =
      accel::test::thrown<InvalidValue>([&] { tracker.log_artifact(missing, "m", "model"); });
  CHECK(message.find(missing.string()) != std::string::npos);
  CHECK(message.find("not a file or directory") != std::string::npos);
  message = accel::test::thrown<InvalidValue>([&] { tracker.log_artifact(file, "a/b", "model"); });
  CHECK(message.find("'a/b'") != std::string::npos);
  CHECK(message.find("\"/\"") != std::string::npos);
  message = accel::test::thrown<InvalidValue>([&] { tracker.log_artifact(file, "m", "wandb-x"); });
  CHECK(message.find("'wandb-x'") != std::string::npos);
  CHECK(message.find("reserved") != std::string::npos);
  message = accel::test::thrown<InvalidValue>(
      [&] { tracker.log_artifact(file, "m", "model", {"best:1"}); });
  CHECK(message.find("'best:1'") != std::string::npos);
  message = accel::test::thrown<InvalidValue>(
      [&] { tracker.log_artifact(file, "m", "model", {}, "", json::array({1})); });
  CHECK(message.find("metadata") != std::string::npos);
  const auto empty = logs / "empty";
  std::filesystem::create_directories(empty);
  message = accel::test::thrown<InvalidValue>([&] { tracker.log_artifact(empty, "m", "model"); });
  CHECK(message.find("holds no files") != std::string::npos);
  tracker.finish(RunStatus::finished);
  message = accel::test::thrown<UsageError>([&] { tracker.log_artifact(file, "m", "model"); });
  CHECK(message.find("before end_training") != std::string::npos);
  // Nothing of the refused calls reached the .wandb file.
  TempDir home("accel-wandb-home");
  CHECK(accel::test::leet_records(tracker.log_file(), home.path()).of_type("artifact").empty());
}

TEST_CASE(
    "an offline run's table is a run_table artifact that wandb leet reads and wandb sync uploads "
    "with accel's digests, manifest and bytes") {
  OfflineEnv env;
  TempDir dir("accel-wandb-art");
  std::filesystem::path log_file, run_dir;
  std::string id;
  {
    WandbTracker tracker(tracker_init("tables", dir / "logs"));
    tracker.start();
    tracker.log({{"loss", 0.5}}, 0);
    tracker.log({{"tbl", small_table()}, {"eval/preds", Table{{"p"}, {{0.25}, {0.75}}}}}, 1);
    tracker.finish(RunStatus::finished);
    log_file = tracker.log_file();
    run_dir = tracker.run_dir();
    id = tracker.run_id();
  }
  // wandb's reader sees the record as the SDK writes it, with W&B's digests of these bytes.
  const json record = leet_artifact(log_file, dir / "home", "run-" + id + "-tbl");
  CHECK(record["type"] == "run_table");
  CHECK(record["run_id"] == id);
  CHECK(record["project"] == "tables");
  CHECK(record["aliases"] == json({"latest"}));
  CHECK(record["finalize"] == true);
  CHECK(record["digest_algorithm"] == "MANIFEST_MD5");
  CHECK(record["digest"] == kSdkArtifactDigest);
  CHECK(record["client_id"].get<std::string>().size() == 128);
  CHECK(record["sequence_client_id"].get<std::string>().size() == 128);
  CHECK(record["manifest"]["version"] == 1);
  CHECK(record["manifest"]["storage_policy"] == "wandb-storage-policy-v1");
  CHECK(record["manifest"]["storage_policy_config"]["storageLayout"] == "V2");
  REQUIRE(record["manifest"]["contents"].size() == 1);
  const json entry = record["manifest"]["contents"][0];
  CHECK(entry["path"] == "tbl.table.json");
  CHECK(entry["digest"] == kSdkTableDigest);
  const std::filesystem::path local = entry["local_path"].get<std::string>();
  CHECK(local.is_absolute());
  CHECK(local.string().starts_with(run_dir.string() + "/artifacts/"));
  CHECK(read_all(local) == kSdkTableJson);
  CHECK(std::stoll(entry["size"].get<std::string>()) ==
        static_cast<long long>(read_all(local).size()));
  // A key with '/' gets the SDK's sanitized name; its entry keeps the key's path.
  const auto sanitized = accel::wandb::sanitize_artifact_name("run-" + id + "-eval/preds");
  CHECK(leet_artifact(log_file, dir / "home", sanitized)["manifest"]["contents"][0]["path"] ==
        "eval/preds.table.json");

  // The history value points at the artifact entry, as the SDK's does.
  const auto records = accel::test::leet_records(log_file, dir / "home");
  const auto history = records.of_type("history");
  REQUIRE(history.size() == 2);
  const json row = history[1]["history"]["item"];
  CHECK(row["tbl._type"] == "table-file");
  CHECK(row["tbl.log_mode"] == "IMMUTABLE");
  CHECK(row["tbl.artifact_path"] ==
        "wandb-client-artifact://" + record["client_id"].get<std::string>() + "/tbl.table.json");
  CHECK(row["tbl._latest_artifact_path"] == "wandb-client-artifact://" +
                                                record["sequence_client_id"].get<std::string>() +
                                                ":latest/tbl.table.json");

  // wandb sync gives the server exactly that artifact.
  RecordingServer server(dir.path());
  wandb_sync(run_dir, server, dir.path());
  const json state = server.state();
  CHECK(state["unknown_operations"].empty());
  const auto uploaded = artifacts_named(state, "run-" + id + "-tbl");
  REQUIRE(uploaded.size() == 1);
  check_uploaded(uploaded[0], record);
  CHECK(uploaded[0]["run"] == id);
  CHECK(artifacts_named(state, sanitized).size() == 1);
  const json& run = state["runs"]["recorder/tables/" + id];
  CHECK(run["complete"] == true);
  CHECK(run["exitcode"] == 0);
}

TEST_CASE("an artifact whose copy vanished before it was written is warned about, not retried") {
  OfflineEnv env;
  TempDir dir("accel-wandb-art");
  const auto file = dir / "weights.bin";
  std::ofstream(file) << "w";
  accel::test::WarningCapture warnings;
  WandbTracker tracker(tracker_init("vanished", dir / "logs"));
  tracker.start();
  tracker.log_artifact(file, "gone", "model");
  tracker.log_artifact(file, "kept", "model");
  for (const auto& copy : std::filesystem::directory_iterator(tracker.run_dir() / "artifacts")) {
    if (copy.path().filename().string().starts_with("gone-")) std::filesystem::remove_all(copy);
  }
  tracker.log({{"loss", 1.0}}, 0);
  tracker.finish(RunStatus::finished);
  CHECK(warnings.count({"artifact 'gone' is not logged", "weights.bin"}) == 1);
  const auto records = accel::test::leet_records(tracker.log_file(), dir / "home");
  const auto artifacts = records.of_type("artifact");
  REQUIRE(artifacts.size() == 1);
  CHECK(artifacts[0]["artifact"]["name"] == "kept");
  CHECK(records.of_type("history").size() == 1);
  CHECK(records.of_type("exit").size() == 1);
}

TEST_CASE("a table logged under any key keeps its artifact copy inside the run directory") {
  OfflineEnv env;
  TempDir dir("accel-wandb-art");
  WandbTracker tracker(tracker_init("keys", dir / "logs"));
  tracker.start();
  tracker.log({{"/abs", small_table()}, {"../../up", small_table()}}, 0);
  tracker.finish(RunStatus::finished);
  const auto records = accel::test::leet_records(tracker.log_file(), dir / "home");
  const auto artifacts = records.of_type("artifact");
  REQUIRE(artifacts.size() == 2);
  std::set<std::string> entries;
  for (const auto& record : artifacts) {
    const auto& entry = record["artifact"]["manifest"]["contents"][0];
    entries.insert(entry["path"].get<std::string>());
    const std::filesystem::path local = entry["local_path"].get<std::string>();
    INFO(local);
    CHECK(
        local.lexically_normal().string().starts_with(tracker.run_dir().string() + "/artifacts/"));
    CHECK(read_all(local) == kSdkTableJson);
  }
  // The entries keep the SDK's names (key + ".table.json").
  CHECK(entries == std::set<std::string>{"/abs.table.json", "../../up.table.json"});
}

TEST_CASE("log_artifact and log_model offline: wandb sync uploads every file of the directory") {
  OfflineEnv env;
  TempDir dir("accel-wandb-art");
  const auto checkpoint = dir / "checkpoint_3";
  std::filesystem::create_directories(checkpoint / "optimizer");
  std::ofstream(checkpoint / "model.bin", std::ios::binary) << std::string(70000, '\x01') << "end";
  std::ofstream(checkpoint / "optimizer" / "state.bin", std::ios::binary) << "adam";
  const auto notes = dir / "notes.txt";
  std::ofstream(notes) << "first dataset\n";
  std::filesystem::path log_file, run_dir;
  std::string id;
  {
    WandbTracker tracker(tracker_init("models", dir / "logs"));
    tracker.start();
    tracker.log_artifact(notes, "notes", "dataset", {"v1"}, "what we trained on", {{"rows", 3}});
    tracker.log({{"loss", 0.5}}, 0);
    tracker.log_model(checkpoint, /*best=*/true);
    // The copy was made at the call: what the program does to its files afterwards is not logged.
    std::ofstream(checkpoint / "model.bin", std::ios::binary) << "overwritten by the next save";
    tracker.finish(RunStatus::finished);
    log_file = tracker.log_file();
    run_dir = tracker.run_dir();
    id = tracker.run_id();
  }
  const json model = leet_artifact(log_file, dir / "home", "model-" + id);
  CHECK(model["type"] == "model");
  CHECK(model["aliases"] == json({"latest", "best"}));
  std::set<std::string> paths;
  for (const auto& entry : model["manifest"]["contents"]) paths.insert(entry["path"]);
  CHECK(paths == std::set<std::string>{"model.bin", "optimizer/state.bin"});
  for (const auto& entry : model["manifest"]["contents"]) {
    if (entry["path"] == "model.bin") {
      CHECK(read_all(entry["local_path"].get<std::string>()) == std::string(70000, '\x01') + "end");
    }
  }
  const json dataset = leet_artifact(log_file, dir / "home", "notes");
  CHECK(dataset["type"] == "dataset");
  CHECK(dataset["aliases"] == json({"latest", "v1"}));
  CHECK(dataset["description"] == "what we trained on");
  CHECK(json::parse(dataset["metadata"].get<std::string>()) == json({{"rows", 3}}));
  CHECK(dataset["manifest"]["contents"][0]["path"] == "notes.txt");

  RecordingServer server(dir.path());
  wandb_sync(run_dir, server, dir.path());
  const json state = server.state();
  const auto uploaded_model = artifacts_named(state, "model-" + id);
  REQUIRE(uploaded_model.size() == 1);
  check_uploaded(uploaded_model[0], model);
  const auto uploaded_notes = artifacts_named(state, "notes");
  REQUIRE(uploaded_notes.size() == 1);
  check_uploaded(uploaded_notes[0], dataset);
  CHECK(uploaded_notes[0]["metadata"] == json({{"rows", 3}}));
  CHECK(uploaded_notes[0]["description"] == "what we trained on");
}

TEST_CASE("an online run's tables and log_artifact reach the server as committed artifacts") {
  TempDir dir("accel-wandb-art");
  RecordingServer server(dir.path());
  OnlineEnv env(server.url());
  // A few MiB, streamed from its copy in pieces: the server must get every byte in order.
  const auto weights = dir / "weights.bin";
  std::string bytes(3 << 20, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i)
    bytes[i] = static_cast<char>((i * 2654435761u) >> 13);
  std::ofstream(weights, std::ios::binary) << bytes;
  WandbTracker tracker(tracker_init("online-tables", dir / "logs"));
  tracker.start();
  tracker.log({{"tbl", small_table()}}, 0);
  tracker.log_model(weights);
  tracker.log({{"loss", 0.25}}, 1);
  tracker.flush();
  tracker.finish(RunStatus::finished);
  CHECK(tracker.acknowledged() == 3);
  const std::string id = tracker.run_id();

  const json state = server.state();
  CHECK(state["unknown_operations"].empty());
  const auto table = artifacts_named(state, "run-" + id + "-tbl");
  REQUIRE(table.size() == 1);
  const json record = leet_artifact(tracker.log_file(), dir / "home", "run-" + id + "-tbl");
  check_uploaded(table[0], record);
  CHECK(table[0]["digest"] == kSdkArtifactDigest);
  CHECK(table[0]["entity"] == "recorder");
  CHECK(table[0]["project"] == "online-tables");
  CHECK(table[0]["run"] == id);
  CHECK(table[0]["sequence_client_id"] == record["sequence_client_id"]);
  // accel leaves this machine's paths out of the uploaded manifest.
  CHECK_FALSE(table[0]["manifest"]["contents"]["tbl.table.json"].contains("local_path"));
  const auto model = artifacts_named(state, "model-" + id);
  REQUIRE(model.size() == 1);
  check_uploaded(model[0], leet_artifact(tracker.log_file(), dir / "home", "model-" + id));
  CHECK(model[0]["aliases"] == json({"latest"}));
  CHECK(model[0]["files"]["weights.bin"]["sha256"] == accel::wandb::sha256_hex(bytes));
  CHECK(requests_of(state, "CreateArtifact") == 2);
  CHECK(requests_of(state, "CommitArtifact") == 2);
  // The run's history carries the table value that points at the artifact.
  const auto& run = state["runs"]["recorder/online-tables/" + id];
  const json row =
      json::parse(run["files"]["wandb-history.jsonl"]["lines"]["0"].get<std::string>());
  CHECK(row["tbl"]["_type"] == "table-file");
  CHECK(row["tbl"]["artifact_path"] ==
        "wandb-client-artifact://" + record["client_id"].get<std::string>() + "/tbl.table.json");
  CHECK(run["complete"] == true);
  CHECK(state.dump().find(kApiKey) == std::string::npos);
}

TEST_CASE("online, a table logged again with the same content is stored once, as W&B dedups it") {
  TempDir dir("accel-wandb-art");
  RecordingServer server(dir.path());
  OnlineEnv env(server.url());
  WandbTracker tracker(tracker_init("dedup", dir / "logs"));
  tracker.start();
  tracker.log({{"tbl", small_table()}}, 0);
  tracker.log({{"tbl", small_table()}}, 1);        // same content: no new version
  tracker.log({{"tbl", Table{{"a"}, {{3}}}}}, 2);  // new content: a new version
  tracker.flush();
  tracker.finish(RunStatus::finished);
  CHECK(tracker.acknowledged() == 4);
  const json state = server.state();
  const auto versions = artifacts_named(state, "run-" + tracker.run_id() + "-tbl");
  REQUIRE(versions.size() == 2);
  std::set<std::string> digests;
  for (const auto& version : versions) {
    CHECK(version["committed"] == true);
    digests.insert(version["digest"].get<std::string>());
  }
  CHECK(digests.count(kSdkArtifactDigest) == 1);
  // The new version names the one before it as its base, as wandb-core does.
  std::string first_id;
  for (const auto& [id, artifact] : state["artifacts"].items()) {
    if (artifact["digest"] == kSdkArtifactDigest) first_id = id;
  }
  for (const auto& version : versions) {
    const json expected = version["digest"] == kSdkArtifactDigest ? json(nullptr) : json(first_id);
    CHECK(version["base_artifact_ids"] == json({expected, expected}));
  }
  CHECK(requests_of(state, "CreateArtifact") == 3);
  CHECK(requests_of(state, "CommitArtifact") == 2);  // the repeated content was not sent again
}

TEST_CASE(
    "online artifacts survive a failing server and lost answers: each is created once, "
    "committed, and not created again") {
  TempDir dir("accel-wandb-art");
  RecordingServer server(dir.path());
  OnlineEnv env(server.url());
  const auto weights = dir / "weights.bin";
  std::ofstream(weights, std::ios::binary) << "weights";
  // CreateArtifact is carried out but its answer is lost once (the client asks again with the same
  // client id); CreateArtifactFiles fails more often than one request is retried (the sequence
  // stops and goes on later from there); CommitArtifact's answer is lost once.
  server.fail({{"status", 503},
               {"count", 1},
               {"path_prefix", "/graphql"},
               {"operation", "CreateArtifact"},
               {"after", true}});
  server.fail({{"status", 503},
               {"count", 6},
               {"path_prefix", "/graphql"},
               {"operation", "CreateArtifactFiles"}});
  server.fail({{"status", 503},
               {"count", 1},
               {"path_prefix", "/graphql"},
               {"operation", "CommitArtifact"},
               {"after", true}});
  WandbTracker tracker(tracker_init("flaky", dir / "logs"));
  tracker.start();
  tracker.log({{"tbl", small_table()}}, 0);
  tracker.log_model(weights);
  for (int step = 1; step < 4; ++step) tracker.log({{"loss", 1.0 / step}}, step);
  accel::test::finish_when_back(tracker, RunStatus::finished);
  CHECK(tracker.acknowledged() == 5);
  const std::string id = tracker.run_id();

  const json state = server.state();
  const auto table = artifacts_named(state, "run-" + id + "-tbl");
  REQUIRE(table.size() == 1);
  check_uploaded(table[0], leet_artifact(tracker.log_file(), dir / "home", "run-" + id + "-tbl"));
  CHECK(table[0]["create_requests"] == 2);  // the lost answer, asked again: the same artifact
  const auto model = artifacts_named(state, "model-" + id);
  REQUIRE(model.size() == 1);
  check_uploaded(model[0], leet_artifact(tracker.log_file(), dir / "home", "model-" + id));
  CHECK(model[0]["create_requests"] == 1);
  CHECK(requests_of(state, "CreateArtifact") == 3);
  CHECK(requests_of(state, "CommitArtifact") == 3);  // one answer lost
  const auto& run = state["runs"]["recorder/flaky/" + id];
  CHECK(run["files"]["wandb-history.jsonl"]["lines"].size() == 4);
  CHECK(run["complete"] == true);
}

namespace {

// The SDK logging the side-by-side table offline (then synced like accel's run). Prints the run
// directory.
constexpr const char* kSdkTableRun = R"(
import json, sys, wandb
run = wandb.init(project="side-by-side", mode="offline", dir=sys.argv[1])
table = json.loads(sys.argv[2])
run.log({"tbl": wandb.Table(columns=table["columns"], data=table["data"])})
print(run.dir.rsplit("/files", 1)[0])
run.finish()
)";

}  // namespace

TEST_CASE(
    "side by side with the SDK: the same table gives a run_table artifact of the same type, "
    "name, aliases, entry and digests") {
  OfflineEnv env;
  TempDir dir("accel-wandb-art");
  ScopedEnv home("HOME", (dir / "home").c_str());
  ScopedEnv config_dir("WANDB_CONFIG_DIR", (dir / "home" / ".config").c_str());
  ScopedEnv silent("WANDB_SILENT", "true");
  const Table table{{"step", "loss", "ok", "name", "none"},
                    {{0, 0.5, true, "\xc3\xa9t\xc3\xa9", nullptr},
                     {1, 1e-05, false, "x\"y", nullptr},
                     {2, 0.1 + 0.2, true, "tab\t", nullptr}}};
  std::filesystem::path accel_dir;
  std::string accel_id;
  {
    WandbTracker tracker(tracker_init("side-by-side", dir / "accel"));
    tracker.start();
    tracker.log({{"tbl", table}}, 0);
    tracker.finish(RunStatus::finished);
    accel_dir = tracker.run_dir();
    accel_id = tracker.run_id();
  }
  std::filesystem::create_directories(dir / "sdk");
  json rows = json::array();
  for (const auto& row : table.rows) rows.push_back(row);
  std::string sdk_dir = accel::test::run_python_code(
      kSdkTableRun,
      {(dir / "sdk").string(), json({{"columns", table.columns}, {"data", rows}}).dump()});
  sdk_dir.erase(sdk_dir.find_last_not_of(" \n") + 1);
  const std::string sdk_id = sdk_dir.substr(sdk_dir.size() - 8);

  RecordingServer server(dir.path());
  wandb_sync(accel_dir, server, dir.path());
  wandb_sync(sdk_dir, server, dir.path());
  const json state = server.state();
  const auto ours = artifacts_named(state, "run-" + accel_id + "-tbl");
  const auto theirs = artifacts_named(state, "run-" + sdk_id + "-tbl");
  REQUIRE(ours.size() == 1);
  REQUIRE(theirs.size() == 1);
  INFO("accel: " << ours[0].dump().substr(0, 2000)
                 << "\nsdk: " << theirs[0].dump().substr(0, 2000));
  CHECK(ours[0]["type"] == theirs[0]["type"]);
  CHECK(ours[0]["aliases"] == theirs[0]["aliases"]);
  CHECK(ours[0]["digest_algorithm"] == theirs[0]["digest_algorithm"]);
  CHECK(ours[0]["digest"] == theirs[0]["digest"]);  // same content, same artifact digest
  CHECK(ours[0]["files"].size() == 1);
  CHECK(theirs[0]["files"].size() == 1);
  CHECK(ours[0]["files"]["tbl.table.json"]["md5"] == theirs[0]["files"]["tbl.table.json"]["md5"]);
  CHECK(ours[0]["files"]["tbl.table.json"]["sha256"] ==
        theirs[0]["files"]["tbl.table.json"]["sha256"]);
  const auto& our_entry = ours[0]["manifest"]["contents"]["tbl.table.json"];
  const auto& their_entry = theirs[0]["manifest"]["contents"]["tbl.table.json"];
  CHECK(our_entry["digest"] == their_entry["digest"]);
  CHECK(our_entry["size"] == their_entry["size"]);
  // The history values agree on what a reader uses; the media files they name hold the same table
  // (their bytes differ: the SDK writes 1e-05 there as 0.00001).
  auto table_value = [&](const std::string& id) {
    const auto& lines =
        state["runs"]["recorder/side-by-side/" + id]["files"]["wandb-history.jsonl"]["lines"];
    return json::parse(lines["0"].get<std::string>())["tbl"];
  };
  const json our_value = table_value(accel_id);
  const json their_value = table_value(sdk_id);
  for (const char* key : {"_type", "ncols", "nrows", "log_mode"}) {
    INFO(key);
    CHECK(our_value[key] == their_value[key]);
  }
  auto media = [&](const std::string& id, const json& value) {
    const std::string path = "recorder/side-by-side/" + id + "/" + value["path"].get<std::string>();
    return json::parse(state["uploads"][path]["text"].get<std::string>());
  };
  CHECK(media(accel_id, our_value) == media(sdk_id, their_value));
  CHECK(our_value["artifact_path"].get<std::string>().starts_with("wandb-client-artifact://"));
  CHECK(their_value["artifact_path"].get<std::string>().starts_with("wandb-client-artifact://"));
}

TEST_CASE("through the hub, log_artifact from the training thread is in the run when it ends") {
  OfflineEnv env;
  TempDir dir("accel-wandb-art");
  const auto checkpoint = dir / "checkpoint_0";
  std::filesystem::create_directories(checkpoint);
  std::ofstream(checkpoint / "model.bin", std::ios::binary) << "weights";
  accel::TrackerHubOptions options;
  options.logging_dir = dir / "logs";
  options.handle_signals = false;
  std::filesystem::path log_file;
  std::string id;
  {
    accel::TrackerHub hub(options);
    hub.init_trackers("hub-artifacts", {{"epochs", 1}}, {"wandb"});
    auto* wandb = hub.get_tracker<WandbTracker>("wandb");
    REQUIRE(wandb != nullptr);
    log_file = wandb->log_file();
    id = wandb->run_id();
    for (int step = 0; step < 50; ++step) {
      hub.log({{"loss", 1.0 / (step + 1)}}, step);  // the worker thread logs while we stage
      if (step == 25) wandb->log_model(checkpoint, /*best=*/false);
    }
    hub.end_training();
  }
  const json model = leet_artifact(log_file, dir / "home", "model-" + id);
  CHECK(model["type"] == "model");
  CHECK(model["aliases"] == json({"latest"}));
  CHECK(model["manifest"]["contents"][0]["path"] == "model.bin");
  CHECK(model["manifest"]["contents"][0]["digest"] == accel::wandb::md5_base64("weights"));
  const json state = accel::test::leet_summary(log_file, dir / "home");
  CHECK(state["exit_code"] == 0);
  CHECK(state["summary"]["_step"] == 49);
}

namespace {

// A checkpoint directory as save_state leaves it (two files), with distinct contents.
std::filesystem::path fake_checkpoint(const std::filesystem::path& dir, const std::string& name) {
  const auto checkpoint = dir / name;
  std::filesystem::create_directories(checkpoint);
  std::ofstream(checkpoint / "model.bin", std::ios::binary) << "weights of " << name;
  std::ofstream(checkpoint / "accel_checkpoint.json") << R"({"complete":true})";
  return checkpoint;
}

// The model artifacts of a run's .wandb file, in the order they were written.
std::vector<json> model_records(const std::filesystem::path& log_file,
                                const std::filesystem::path& home, const std::string& id) {
  std::vector<json> out;
  const auto records = accel::test::leet_records(log_file, home);
  for (const auto& record : records.of_type("artifact")) {
    if (record["artifact"]["name"] == "model-" + id) out.push_back(record["artifact"]);
  }
  return out;
}

}  // namespace

TEST_CASE("log_model \"all\": every checkpoint the hub is told of becomes a model artifact") {
  OfflineEnv env;
  TempDir dir("accel-wandb-logmodel");
  const auto first = fake_checkpoint(dir.path(), "checkpoint_0");
  const auto second = fake_checkpoint(dir.path(), "checkpoint_1");
  accel::TrackerHubOptions options;
  options.logging_dir = dir / "logs";
  options.handle_signals = false;
  std::filesystem::path log_file;
  std::string id;
  {
    accel::TrackerHub hub(options);
    hub.init_trackers("logmodel", {}, {"wandb"}, {{"wandb", {{"log_model", "all"}}}});
    log_file = hub.get_tracker<WandbTracker>("wandb")->log_file();
    id = hub.get_tracker<WandbTracker>("wandb")->run_id();
    hub.log({{"loss", 1.0}}, 0);
    hub.checkpoint_saved(first);
    hub.log({{"loss", 0.5}}, 1);
    hub.checkpoint_saved(second, /*best=*/true);
    hub.end_training();
  }
  // Linked, not copied: the staged file is the checkpoint's own inode.
  const auto models = model_records(log_file, dir / "home", id);
  REQUIRE(models.size() == 2);
  CHECK(models[0]["type"] == "model");
  CHECK(models[0]["aliases"] == json({"latest"}));
  CHECK(models[1]["aliases"] == json({"latest", "best"}));
  for (std::size_t i = 0; i < 2; ++i) {
    const std::string name = i == 0 ? "checkpoint_0" : "checkpoint_1";
    std::map<std::string, std::string> digests;
    for (const auto& entry : models[i]["manifest"]["contents"]) {
      digests[entry["path"]] = entry["digest"];
      if (entry["path"] == "model.bin") {
        CHECK(std::filesystem::equivalent(entry["local_path"].get<std::string>(),
                                          dir / name / "model.bin"));
      }
    }
    CHECK(digests["model.bin"] == accel::wandb::md5_base64("weights of " + name));
    CHECK(digests.contains("accel_checkpoint.json"));
  }
}

TEST_CASE("log_model true: the best and the latest checkpoint once, only when the run finished") {
  OfflineEnv env;
  TempDir dir("accel-wandb-logmodel");
  const auto a = fake_checkpoint(dir.path(), "checkpoint_0");
  const auto b = fake_checkpoint(dir.path(), "checkpoint_1");
  const auto c = fake_checkpoint(dir.path(), "checkpoint_2");
  for (const RunStatus status : {RunStatus::finished, RunStatus::failed}) {
    accel::TrackerHubOptions options;
    options.logging_dir = dir / (status == RunStatus::finished ? "ok" : "failed");
    options.handle_signals = false;
    std::filesystem::path log_file;
    std::string id;
    {
      accel::TrackerHub hub(options);
      hub.init_trackers("logmodel", {}, {"wandb"}, {{"wandb", {{"log_model", true}}}});
      log_file = hub.get_tracker<WandbTracker>("wandb")->log_file();
      id = hub.get_tracker<WandbTracker>("wandb")->run_id();
      hub.checkpoint_saved(a);
      hub.checkpoint_saved(b);
      hub.checkpoint_saved(b, /*best=*/true);  // what Accelerator::mark_best_checkpoint(b) says
      hub.checkpoint_saved(c);
      hub.log({{"loss", 1.0}}, 0);
      hub.end_training(status);
    }
    const auto models = model_records(log_file, dir / "home", id);
    if (status == RunStatus::failed) {
      CHECK(models.empty());
      continue;
    }
    REQUIRE(models.size() == 2);
    CHECK(models[0]["aliases"] == json({"latest", "best"}));
    CHECK(models[0]["metadata"].get<std::string>().find("checkpoint_1") != std::string::npos);
    CHECK(models[1]["aliases"] == json({"latest"}));
    CHECK(models[1]["metadata"].get<std::string>().find("checkpoint_2") != std::string::npos);
  }
  accel::TrackerHubOptions options;
  options.logging_dir = dir / "bad";
  options.handle_signals = false;
  accel::TrackerHub hub(options);
  accel::test::WarningCapture warnings;
  CHECK_THROWS_WITH(hub.init_trackers("logmodel", {}, {"wandb"}, {{"wandb", {{"log_model", 2}}}}),
                    Catch::Contains("log_model") && Catch::Contains("\"all\""));
}
