#pragma once
// Helpers of the wandb tests: wandb's own reader (`wandb leet inspect` of the pinned wheel in .venv),
// and the strict framing reader read_wandb.py. Temporary directories, shell commands and
// scoped environment variables come from tests/support (temp_dir.hpp, shell.hpp, scoped_env.hpp).
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "accel/tracking/general_tracker.hpp"
#include "scoped_env.hpp"
#include "shell.hpp"
#include "temp_dir.hpp"
#include "tracking_test_support.hpp"

namespace accel::test {

inline std::string venv_bin(const char* program) {
  return shell_quote(std::string(ACCEL_SOURCE_DIR) + "/.venv/bin/" + program);
}

// A sandbox for the wandb CLI: its own HOME and config directory, no API key, no mode.
inline std::string wandb_env(const std::filesystem::path& home) {
  return "env -u WANDB_API_KEY -u WANDB_MODE -u WANDB_DIR HOME=" + shell_quote(home.string()) +
         " WANDB_CONFIG_DIR=" + shell_quote((home / ".config").string()) + " ";
}

// `wandb leet inspect --json <path>`: one JSON object per record, as wandb reads the file. Also
// returns whether leet said the file ends with an incomplete record.
struct LeetRecords {
  std::vector<nlohmann::json> records;
  std::string output;
  bool incomplete = false;
  std::vector<nlohmann::json> of_type(std::string_view type) const {
    std::vector<nlohmann::json> out;
    for (const auto& r : records) {
      if (r.value("type", "") == type) out.push_back(r);
    }
    return out;
  }
};

inline LeetRecords leet_records(const std::filesystem::path& path,
                                const std::filesystem::path& home) {
  const std::string command = wandb_env(home) + venv_bin("wandb") + " leet inspect --json " +
                              shell_quote(path.string()) + " 2>&1";
  const auto result = run_shell(command);
  INFO("command: " << command << "\noutput: " << result.output.substr(0, 4000));
  REQUIRE(result.exit_code() == 0);
  LeetRecords out;
  out.output = result.output;
  std::istringstream lines(result.output);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("{")) {
      out.records.push_back(nlohmann::json::parse(line));
    } else if (line.find("incomplete") != std::string::npos) {
      out.incomplete = true;
    }
  }
  return out;
}

// `wandb leet inspect --summary --json <path>`: the run's state as wandb derives it (config,
// summary, exit_code, state, step, project, run_id, ...).
inline nlohmann::json leet_summary(const std::filesystem::path& path,
                                   const std::filesystem::path& home) {
  const std::string command = wandb_env(home) + venv_bin("wandb") +
                              " leet inspect --summary --json " + shell_quote(path.string()) +
                              " 2>/dev/null";
  const auto result = run_shell(command);
  INFO("command: " << command << "\noutput: " << result.output.substr(0, 4000));
  REQUIRE(result.exit_code() == 0);
  return nlohmann::json::parse(result.output);
}

// read_wandb.py: parses the file with its own strict framing reader (header, block rules, IEEE
// CRC of every chunk, the file ends after a whole record) and wandb's compiled Record class.
inline nlohmann::json strict_records(const std::filesystem::path& file) {
  const std::string command =
      venv_bin("python") + " -W ignore " +
      shell_quote(std::string(ACCEL_SOURCE_DIR) + "/tests/trackers/wandb/read_wandb.py") + " " +
      shell_quote(file.string()) + " 2>&1";
  const auto result = run_shell(command);
  INFO("command: " << command << "\noutput: " << result.output.substr(0, 4000));
  REQUIRE(result.exit_code() == 0);
  return nlohmann::json::parse(result.output);
}

}  // namespace accel::test
