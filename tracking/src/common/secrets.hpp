#pragma once
// accel's rule for what counts as a secret in a configuration: a key whose name says it holds a
// credential (api_key, token, password, secret, credentials, authorization, ...; any case, any
// separator). Used wherever a configuration leaves the process (journals).
#include <nlohmann/json.hpp>
#include <string_view>

namespace accel {

// True when a configuration key with this name holds a credential.
bool is_secret_key(std::string_view key);
// value with every object member whose key is_secret_key replaced by "<redacted>", at any depth.
nlohmann::json without_secrets(const nlohmann::json& value);

}  // namespace accel
