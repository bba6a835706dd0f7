#pragma once
// Rules for the names accel writes: metric keys, run/project names used as directory names, and
// configuration keys. Shared by the hub (validation) and by every tracker (sanitising for its
// backend).
//
//   - validate_key: a metric key must contain at least one non-whitespace character. Any other
//     UTF-8 text is accepted; each backend replaces what it cannot store (see sanitize_key).
//   - sanitize_path_component: a run or project name becomes ONE directory name: '/', '\\', control
//     characters and ".." are replaced by '_', and "", "." become "_". The result never leaves the
//     logging directory it is joined to.
//   - flatten_config: nested configuration objects become "a/b" keys for backends that cannot nest;
//     values that are not JSON scalars a backend can store (binary, NaN, Inf) are turned into
//     strings.
// All functions are pure and thread-safe.
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace accel {

// Throws accel::InvalidValue naming the key when it is empty or only whitespace.
void validate_key(std::string_view key);

// Replaces every byte that `allowed` rejects with `replacement`. Bytes >= 0x80 (UTF-8 sequences)
// are passed to `allowed` one by one, so a backend that accepts unicode simply accepts them.
std::string sanitize_key(std::string_view key, const std::function<bool(unsigned char)>& allowed,
                         char replacement = '_');

// A safe single directory name made from a user-given run or project name (see above).
std::string sanitize_path_component(std::string_view name);

// base / sanitize_path_component(name), checked to stay inside base. Throws accel::InvalidValue
// otherwise.
std::filesystem::path child_directory(const std::filesystem::path& base, std::string_view name);

// Nested objects become "parent/child" keys; arrays are kept as JSON values. Non-finite floats and
// binary values are stringified ("NaN", "Infinity", "-Infinity", "<binary N bytes>").
std::vector<std::pair<std::string, nlohmann::json>> flatten_config(
    const nlohmann::json& config, std::string_view separator = "/");

// The config with non-JSON values (NaN, Inf, binary) stringified, nesting kept.
nlohmann::json json_safe_config(const nlohmann::json& config);

// Creates base/version_<N> with the smallest N above every existing version_<i> (Lightning's
// CSVLogger convention); creation is atomic, so two runs never share a version directory. Trackers
// of the same run (same non-empty run_id, e.g. csv and jsonl started by one init_trackers) get the
// same directory: the first one creates it, the others reuse it (within this process).
std::filesystem::path create_version_directory(const std::filesystem::path& base,
                                               std::string_view run_id = {});

// init_kwargs[tracker]["run_dir"]: the one directory of the run a file-based tracker (csv, jsonl,
// tensorboard) writes into, as given by the Accelerator (Accelerator::run_dir(), see docs/runs.md).
// The tracker writes there directly (no <project>/version_<N> of its own) and continues the files
// it finds (a resumed run). nullopt when absent or null; accel::InvalidValue when not a non-empty
// string.
std::optional<std::filesystem::path> run_directory_option(const nlohmann::json& init_kwargs,
                                                          std::string_view tracker);

}  // namespace accel
