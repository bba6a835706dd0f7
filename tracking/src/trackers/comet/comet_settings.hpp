#pragma once
// accel::comet::Settings: how a Comet experiment is set up, chosen as comet_ml 3.58.8's
// comet_ml.start() chooses it — from init_kwargs["comet_ml"] (what Accelerate passes to
// comet_ml.start), else the COMET_* settings (environment, then the SDK's ini files: see
// comet_config.hpp), else defaults. Settings holds no API key: find_api_key reads it for the one
// place that sends it (CometApi), so it cannot leak into a file, message or journal.
//
//   online             init_kwargs "online" (a bool), else COMET_START_ONLINE (true/false, 1/0,
//                      yes/no, on/off), else true — as comet_ml.start. Online needs an API key
//                      (find_api_key): without one resolve_settings throws accel::InvalidValue
//                      saying where to put it and how to choose offline instead.
//   clientlib_url      COMET_URL_OVERRIDE, else https://www.comet.com/clientlib/ — with a trailing
//                      '/', as the SDK's sanitize_url; every other URL derives from its root.
//   offline_directory  init_kwargs "offline_directory", else COMET_OFFLINE_DIRECTORY, else the
//                      logging directory, else ./.cometml-runs (the SDK's default).
//   project_name       init_kwargs "project_name", else the init_trackers project name (what
//                      Accelerate passes as project_name), else COMET_PROJECT_NAME, else null.
//   workspace          init_kwargs "workspace", else COMET_WORKSPACE, else null.
//   experiment_name    init_kwargs "experiment_name" (logged as the other "Name", as set_name).
//   experiment_key     init_kwargs "experiment_key", else COMET_EXPERIMENT_KEY (32-50 ASCII letters
//                      or digits, as the SDK accepts), else a new uuid4 hex key
//                      (new_uuid_hex).
//   tags               init_kwargs "tags" (a list of strings).
//   resumed            TrackerInit::resume holds {"experiment_key": k} (`accel-launch sync` of a
//                      journal): the experiment key is k and the experiment exists already.
//   api_key            init_kwargs "api_key", else COMET_API_KEY (find_api_key); online only.
// Thread-safety: pure functions (they read the environment).
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "accel/tracking/general_tracker.hpp"

namespace accel::comet {

struct Settings {
  bool online = true;
  std::string clientlib_url;
  std::filesystem::path offline_directory;
  std::optional<std::string> project_name;
  std::optional<std::string> workspace;
  std::string experiment_name;
  std::string experiment_key;
  bool user_provided_experiment_key = false;
  bool resumed = false;
  std::vector<std::string> tags;
};

// The settings for a tracker constructed from init. Throws accel::InvalidValue for an unknown
// option, a bad value (named, with the fix), and for online mode without an API key.
Settings resolve_settings(const TrackerInit& init);

// The API key: init_kwargs "api_key", else COMET_API_KEY (environment, then the ini files), else
// nullopt. A credential: never printed, written or put in a message.
std::optional<std::string> find_api_key(const nlohmann::json& options);

// Why the comet_ml tracker cannot start with these options (init_kwargs["comet_ml"]) and the
// current environment (online chosen and no API key found), or nullopt when it can; what
// log_with = {"all"} reports and what naming "comet_ml" fails with.
std::optional<std::string> unavailable_reason(const nlohmann::json& options);

}  // namespace accel::comet
