#include "trackers/comet/comet_settings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "accel/tracking/errors.hpp"
#include "common/ascii_case.hpp"
#include "common/init_kwargs.hpp"
#include "trackers/comet/comet_config.hpp"
#include "trackers/comet/comet_messages.hpp"

namespace accel::comet {
namespace {

constexpr std::array<const char*, 8> kKnownOptions = {
    "api_key", "workspace",         "project_name",   "experiment_name",
    "online",  "offline_directory", "experiment_key", "tags"};

constexpr const char* kNoApiKey =
    "comet_ml: online mode (chosen by {}) needs an API key and none was found; set COMET_API_KEY "
    "(or init_kwargs={{\"comet_ml\": {{\"api_key\": ...}}}}, or api_key under [comet] in "
    "~/.comet.config, ./.comet.config or the file $COMET_CONFIG names), or set "
    "COMET_START_ONLINE=false (or init_kwargs={{\"comet_ml\": {{\"online\": false}}}}) to write an "
    "offline archive <offline_directory>/<experiment key>.zip that `comet upload` sends later";

constexpr const char* kDefaultClientlib = "https://www.comet.com/clientlib/";

using accel::detail::ascii_lower;

// A COMET_* setting: the environment, then the ini files (comet_config.hpp).
std::optional<std::string> setting(const char* name) {
  return config_value(name);
}

// online, and where that came from; throws for a value that is not a boolean.
std::pair<bool, std::string> choose_online(const nlohmann::json& kwargs) {
  if (auto it = kwargs.find("online"); it != kwargs.end() && !it->is_null()) {
    if (!it->is_boolean()) {
      throw InvalidValue(fmt::format(
          "init_kwargs[\"comet_ml\"][\"online\"] = {} must be true or false", it->dump()));
    }
    return {it->get<bool>(), "init_kwargs[\"comet_ml\"][\"online\"]"};
  }
  if (auto text = setting("COMET_START_ONLINE")) {
    const std::string word = ascii_lower(*text);
    if (word == "true" || word == "1" || word == "yes" || word == "on") {
      return {true, "COMET_START_ONLINE"};
    }
    if (word == "false" || word == "0" || word == "no" || word == "off") {
      return {false, "COMET_START_ONLINE"};
    }
    throw InvalidValue(fmt::format(
        "COMET_START_ONLINE = \"{}\" is not a boolean; use COMET_START_ONLINE=false for offline "
        "archives",
        *text));
  }
  return {true, "the default (comet_ml.start is online unless told otherwise)"};
}

// Whether the run is online; throws when it is and no API key is found.
bool check_mode(const nlohmann::json& kwargs) {
  const auto [online, source] = choose_online(kwargs);
  if (online && !find_api_key(kwargs)) {
    throw InvalidValue(fmt::format(fmt::runtime(kNoApiKey), source));
  }
  return online;
}

// COMET_URL_OVERRIDE as the SDK's sanitize_url leaves it: http(s), a host, a trailing '/'.
std::string clientlib_url() {
  const auto given = setting("COMET_URL_OVERRIDE");
  std::string url = given.value_or(kDefaultClientlib);
  const auto scheme_end = url.find("://");
  const bool web = url.starts_with("http://") || url.starts_with("https://");
  const auto host_end =
      scheme_end == std::string::npos ? scheme_end : url.find('/', scheme_end + 3);
  const std::string host = scheme_end == std::string::npos
                               ? std::string()
                               : url.substr(scheme_end + 3, host_end - (scheme_end + 3));
  if (!web || host.empty() || host.find('@') != std::string::npos) {
    throw InvalidValue(fmt::format(
        "COMET_URL_OVERRIDE = \"{}\" is not an http(s) URL with a host and no user:password@; "
        "use the clientlib base, e.g. https://www.comet.com/clientlib/",
        host.find('@') != std::string::npos ? "<a URL with credentials>" : url));
  }
  if (!url.ends_with("/")) url += "/";
  return url;
}

std::optional<std::string> text_option(const nlohmann::json& kwargs, const char* name) {
  return detail::non_empty_string_option(kwargs, name, [&](const nlohmann::json& v) {
    return fmt::format("init_kwargs[\"comet_ml\"][\"{}\"] = {} must be a string", name, v.dump());
  });
}

std::vector<std::string> tags_option(const nlohmann::json& kwargs) {
  std::vector<std::string> tags;
  auto it = kwargs.find("tags");
  if (it == kwargs.end() || it->is_null()) return tags;
  const bool strings = it->is_array() && std::all_of(it->begin(), it->end(),
                                                     [](const auto& t) { return t.is_string(); });
  if (!strings) {
    throw InvalidValue(fmt::format(
        "init_kwargs[\"comet_ml\"][\"tags\"] = {} must be a list of strings", it->dump()));
  }
  for (const auto& tag : *it) tags.push_back(tag.get<std::string>());
  return tags;
}

// The SDK's rule (comet_ml.experiment_key): 32 to 50 ASCII letters or digits.
std::string checked_key(std::string key, const char* source) {
  const bool valid = key.size() >= 32 && key.size() <= 50 &&
                     std::all_of(key.begin(), key.end(),
                                 [](unsigned char c) { return c < 128 && std::isalnum(c); });
  if (!valid) {
    throw InvalidValue(fmt::format(
        "comet_ml: experiment key \"{}\" (from {}) must be 32 to 50 ASCII letters or digits; "
        "leave it out to get a new key",
        key, source));
  }
  return key;
}

}  // namespace

Settings resolve_settings(const TrackerInit& init) {
  const nlohmann::json& kwargs = init.init_kwargs;
  if (!kwargs.is_null() && !kwargs.is_object()) {
    throw InvalidValue(
        fmt::format("init_kwargs[\"comet_ml\"] must be an object, got {}", kwargs.dump()));
  }
  const nlohmann::json options = kwargs.is_object() ? kwargs : nlohmann::json::object();
  if (auto unknown = detail::first_unknown_option(options, kKnownOptions)) {
    throw InvalidValue(
        fmt::format("init_kwargs[\"comet_ml\"][\"{}\"] is not supported; known options: {}",
                    *unknown, detail::option_list(kKnownOptions)));
  }
  Settings settings;
  settings.online = check_mode(options);
  settings.clientlib_url = clientlib_url();
  if (auto dir = text_option(options, "offline_directory")) {
    settings.offline_directory = *dir;
  } else if (auto env = setting("COMET_OFFLINE_DIRECTORY")) {
    settings.offline_directory = *env;
  } else if (!init.logging_dir.empty()) {
    settings.offline_directory = init.logging_dir;
  } else {
    settings.offline_directory = std::filesystem::current_path() / ".cometml-runs";
  }
  settings.project_name = text_option(options, "project_name");
  if (!settings.project_name && !init.run_name.empty()) settings.project_name = init.run_name;
  if (!settings.project_name) settings.project_name = setting("COMET_PROJECT_NAME");
  settings.workspace = text_option(options, "workspace");
  if (!settings.workspace) settings.workspace = setting("COMET_WORKSPACE");
  settings.experiment_name = text_option(options, "experiment_name").value_or("");
  if (auto key = text_option(options, "experiment_key")) {
    settings.experiment_key = checked_key(*key, "init_kwargs[\"comet_ml\"][\"experiment_key\"]");
  } else if (auto env = setting("COMET_EXPERIMENT_KEY")) {
    settings.experiment_key = checked_key(*env, "COMET_EXPERIMENT_KEY");
  }
  if (init.resume.is_object() &&
      init.resume.value("experiment_key", nlohmann::json()).is_string()) {
    settings.experiment_key =
        checked_key(init.resume["experiment_key"].get<std::string>(), "the journal's resume info");
    settings.resumed = true;
  }
  settings.user_provided_experiment_key = !settings.experiment_key.empty();
  if (settings.experiment_key.empty()) settings.experiment_key = new_uuid_hex();
  settings.tags = tags_option(options);
  return settings;
}

std::optional<std::string> find_api_key(const nlohmann::json& options) {
  if (options.is_object()) {
    if (auto it = options.find("api_key"); it != options.end() && !it->is_null()) {
      if (!it->is_string() || it->get<std::string>().empty()) {
        throw InvalidValue(
            "init_kwargs[\"comet_ml\"][\"api_key\"] must be a non-empty string (the value is not "
            "shown: it is a credential)");
      }
      return it->get<std::string>();
    }
  }
  return setting("COMET_API_KEY");
}

std::optional<std::string> unavailable_reason(const nlohmann::json& options) {
  try {
    check_mode(options.is_object() ? options : nlohmann::json::object());
    return std::nullopt;
  } catch (const InvalidValue& e) {
    return std::string(e.what());
  }
}

}  // namespace accel::comet
