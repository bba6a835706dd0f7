#pragma once
// accel::comet::config_value: one comet_ml setting looked up where comet_ml 3.58.8's Config looks
// (comet_ml/config/config_class.py, everett's ConfigOSEnv and ConfigIniEnv), in this order:
//   1. the environment variable (COMET_API_KEY, ...; empty counts as absent)
//   2. the ini file $COMET_CONFIG (a file, or a directory holding .comet.config)
//   3. ./.comet.config
//   4. ~/.comet.config
// In an ini file, key `api_key` of section `[comet]` is COMET_API_KEY (section and key joined with
// '_' and upper-cased, as everett does); an unquoted value ends at the first '#' (configobj's inline
// comment), a quoted one keeps its quotes (configobj with list_values=False). A file that is absent
// or unreadable is skipped, as the SDK skips it. ./.env (which the SDK also reads) is not read.
// What it returns may be a credential (COMET_API_KEY): callers never print it.
// Thread-safety: reads the environment and files; do not call while another thread sets the
// environment.
#include <optional>
#include <string>

namespace accel::comet {

// name is the environment form: "COMET_API_KEY", "COMET_URL_OVERRIDE", ...
std::optional<std::string> config_value(const std::string& name);

}  // namespace accel::comet
