#pragma once
// Internal: reading init_kwargs — the object init_trackers takes, keyed by tracker name, and the
// options object each tracker gets from it (TrackerInit::init_kwargs) or nests in it (mlflow's
// "retry"). The lookups and type checks every tracker needs are here; what an option means stays
// with its tracker. A bad value throws accel::InvalidValue with the message the caller words
// (a `complaint`, given the offending value), so that each tracker names its own option and fix.
// Thread-safety: pure functions.
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace accel::detail {

// The message for a bad option value, given that value.
using OptionComplaint = std::function<std::string(const nlohmann::json& value)>;

// init_kwargs as init_trackers takes it: an object keyed by tracker name, or null. Throws
// accel::InvalidValue otherwise.
void check_init_kwargs(const nlohmann::json& init_kwargs);

// init_kwargs[tracker] (see check_init_kwargs): the tracker's own options object, or an empty object
// when init_kwargs has no entry for it. Throws accel::InvalidValue when the entry is not an object.
nlohmann::json tracker_kwargs(const nlohmann::json& init_kwargs, const std::string& tracker);

// The first key of options (an object) that is not one of known, or nullopt when every key is.
std::optional<std::string> first_unknown_option(const nlohmann::json& options,
                                                std::span<const char* const> known);

// known as messages list it: "a, b, c".
std::string option_list(std::span<const char* const> known);

// options[name] as a non-empty string: nullopt when options is not an object or has no (or a null)
// entry name; throws accel::InvalidValue(complaint(value)) when the entry is anything else.
std::optional<std::string> non_empty_string_option(const nlohmann::json& options,
                                                   std::string_view name,
                                                   const OptionComplaint& complaint);

// options[name] as an integer >= minimum: fallback when options has no entry name; throws
// accel::InvalidValue(complaint(value)) when the entry is anything else (null included).
int64_t integer_option(const nlohmann::json& options, std::string_view name, int64_t minimum,
                       int64_t fallback, const OptionComplaint& complaint);

}  // namespace accel::detail
