#pragma once
// Helpers shared by the tensorboard tests: TensorBoard's own Python reader (read_events.py, run with
// the project's .venv interpreter) and an independent TFRecord parser. Includes temp_dir.hpp and
// python.hpp, which the tests use with these.
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
#include "python.hpp"
#include "temp_dir.hpp"
#include "tracking_test_support.hpp"

namespace accel::test {

// What TensorBoard's EventAccumulator (and record reader) see in run_dir; see read_events.py.
inline nlohmann::json read_events(const std::filesystem::path& run_dir) {
  return nlohmann::json::parse(
      run_python_script(test_script("trackers/tensorboard/read_events.py"), {run_dir.string()}));
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
