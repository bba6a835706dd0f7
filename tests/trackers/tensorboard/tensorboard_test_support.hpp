#pragma once
// Helpers shared by the tensorboard tests: a temporary directory, TensorBoard's own Python reader
// (read_events.py, run with the project's .venv interpreter) and an independent TFRecord parser.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "accel/tracking/general_tracker.hpp"
#include "common/crc32c.hpp"

namespace accel::test {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "accel-tb-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A TrackerInit as TrackerHub fills it (fields set by name, so new fields keep their defaults).
inline accel::TrackerInit tracker_init(std::string run_name, std::filesystem::path logging_dir,
                                       nlohmann::json init_kwargs = nlohmann::json::object()) {
  accel::TrackerInit init;
  init.run_name = std::move(run_name);
  init.logging_dir = std::move(logging_dir);
  init.init_kwargs = std::move(init_kwargs);
  return init;
}

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a helper script of tests/tensorboard with the .venv Python; returns its stdout as JSON.
inline nlohmann::json run_python_helper(const std::string& script,
                                        const std::vector<std::string>& args) {
  std::string command =
      shell_quote(ACCEL_PYTHON) + " " +
      shell_quote(std::string(ACCEL_SOURCE_DIR) + "/tests/trackers/tensorboard/" + script);
  for (const auto& a : args) command += " " + shell_quote(a);
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[65536];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  int status = ::pclose(pipe);
  INFO("command: " << command << "\noutput: " << output.substr(0, 4000));
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  return nlohmann::json::parse(output);
}

// What TensorBoard's EventAccumulator (and record reader) see in run_dir; see read_events.py.
inline nlohmann::json read_events(const std::filesystem::path& run_dir) {
  return run_python_helper("read_events.py", {run_dir.string()});
}

inline std::filesystem::path only_events_file(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> found;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename().string().find("tfevents") != std::string::npos)
      found.push_back(e.path());
  }
  REQUIRE(found.size() == 1);
  return found.front();
}

// Independent TFRecord parser: every record's length and both masked CRCs must check out and the
// file must end exactly after the last record. Returns the payloads.
inline std::vector<std::string> parse_records_strictly(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> records;
  std::size_t pos = 0;
  auto le = [&](std::size_t at, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t(static_cast<unsigned char>(bytes[at + i])) << (8 * i);
    return v;
  };
  while (pos < bytes.size()) {
    REQUIRE(pos + 12 <= bytes.size());
    uint64_t length = le(pos, 8);
    REQUIRE(le(pos + 8, 4) == mask_crc32c(crc32c(bytes.data() + pos, 8)));
    REQUIRE(pos + 12 + length + 4 <= bytes.size());
    REQUIRE(le(pos + 12 + length, 4) == mask_crc32c(crc32c(bytes.data() + pos + 12, length)));
    records.emplace_back(bytes.substr(pos + 12, length));
    pos += 12 + length + 4;
  }
  return records;
}

}  // namespace accel::test
