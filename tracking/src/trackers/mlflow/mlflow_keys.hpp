#pragma once
// MLflow's naming rules for metric, param and tag keys, and accel's mapping of any key onto them.
//
// MLflow (mlflow/utils/validation.py) accepts keys of at most 250 characters made of alphanumerics,
// '_', '-', '.', ' ', ':' and '/', that are already in normal path form (no leading or trailing
// '/', no '//', no '.' or '..' segment, not starting with ".."). sanitize_mlflow_key maps any key
// onto that set:
//   - every other character (one UTF-8 code point) becomes '_';
//   - empty segments and '.' segments are dropped ("a//b/" → "a/b", "./a" → "a");
//   - a '..' segment becomes "__" ("a/../b" → "a/__/b"), and so does a leading ".." ("..a" →
//   "__a");
//   - an empty result becomes "_";
//   - keys longer than 250 characters are cut to 250.
// MlflowKeyMapper makes the mapping one-to-one within a run: when two different keys map onto the
// same name, the first one seen keeps it and later ones get "_2", "_3", ... appended (cut so the
// result stays within 250 characters). The mapping is therefore deterministic for a given order of
// first appearance.
// Thread-safety: sanitize_mlflow_key is pure; a MlflowKeyMapper is used by one thread.
#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace accel {

inline constexpr std::size_t kMlflowMaxKeyLength = 250;

// True when MLflow's server accepts key as is.
bool is_valid_mlflow_key(std::string_view key);

// The documented mapping above.
std::string sanitize_mlflow_key(std::string_view key);

class MlflowKeyMapper {
 public:
  struct Mapped {
    const std::string& key;  // the name to send
    bool renamed;            // true when it differs from the original
    bool first_time;         // true the first time this original key is seen
  };
  Mapped map(std::string_view original);

 private:
  std::unordered_map<std::string, std::string> by_original_;
  std::unordered_set<std::string> taken_;
};

}  // namespace accel
