#pragma once
// accel::wandb::value_json: JSON text as W&B writes it in the value_json fields of history,
// summary and config items. Standard JSON, except that non-finite numbers are the bare tokens
// NaN, Infinity and -Infinity (what wandb's Go and Python sides read and write; nlohmann::json
// would print null). Finite floats are printed shortest-round-trip. Thread-safety: pure function.
#include <nlohmann/json.hpp>
#include <string>

namespace accel::wandb {

std::string value_json(const nlohmann::json& value);

}  // namespace accel::wandb
