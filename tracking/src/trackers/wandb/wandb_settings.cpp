#include "trackers/wandb/wandb_settings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

#include "accel/tracking/errors.hpp"
#include "common/ascii_case.hpp"
#include "common/environment.hpp"
#include "common/init_kwargs.hpp"

namespace accel::wandb {
namespace {

constexpr std::array<const char*, 14> kKnownOptions = {"mode",
                                                       "dir",
                                                       "id",
                                                       "name",
                                                       "notes",
                                                       "tags",
                                                       "group",
                                                       "job_type",
                                                       "entity",
                                                       "step_mode",
                                                       "step_metric",
                                                       "resume",
                                                       "max_waiting_mib",
                                                       "log_model"};

constexpr const char* kOnlineWithoutKey =
    "wandb: mode \"{}\" (from {}) needs a W&B API key and none was found for {} (WANDB_API_KEY, "
    "or a password for its host in $NETRC / ~/.netrc); set one, or WANDB_MODE=offline to write an "
    "offline run under <dir>/wandb/ that `wandb sync` uploads later, or WANDB_MODE=disabled";

using accel::detail::ascii_lower;
using accel::detail::environment_value;

bool truthy(const std::string& text) {
  const std::string t = ascii_lower(text);
  return t == "true" || t == "1" || t == "yes" || t == "on";
}

// The host of WANDB_BASE_URL (default https://api.wandb.ai), as netrc names machines.
std::string base_url_host() {
  std::string url = base_url();
  if (auto scheme = url.find("://"); scheme != std::string::npos) url.erase(0, scheme + 3);
  url = url.substr(0, url.find_first_of("/?#"));
  if (auto at = url.rfind('@'); at != std::string::npos) url.erase(0, at + 1);
  return url.substr(0, url.find(':'));
}

// The netrc file's password for machine `host`, if it has a non-empty one.
std::optional<std::string> netrc_password(const std::filesystem::path& netrc,
                                          const std::string& host) {
  std::ifstream in(netrc);
  if (!in) return std::nullopt;
  std::vector<std::string> tokens{std::istream_iterator<std::string>(in),
                                  std::istream_iterator<std::string>()};
  bool in_machine = false;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] == "machine" && i + 1 < tokens.size()) {
      in_machine = tokens[++i] == host;
    } else if (tokens[i] == "default") {
      in_machine = false;
    } else if (in_machine && tokens[i] == "password" && i + 1 < tokens.size()) {
      if (tokens[i + 1].empty()) return std::nullopt;
      return tokens[i + 1];
    }
  }
  return std::nullopt;
}

std::optional<std::filesystem::path> netrc_path() {
  if (auto given = environment_value("NETRC")) return std::filesystem::path(*given);
  if (auto home = environment_value("HOME")) return std::filesystem::path(*home) / ".netrc";
  return std::nullopt;
}

struct ChosenMode {
  std::string text;    // as given ("offline", "dryrun", ...), empty when nothing chose one
  std::string source;  // where it came from, for messages
};

ChosenMode choose_mode(const nlohmann::json& kwargs) {
  if (auto it = kwargs.find("mode"); it != kwargs.end() && !it->is_null()) {
    if (!it->is_string()) {
      throw InvalidValue(fmt::format(
          "init_kwargs[\"wandb\"][\"mode\"] = {} must be a string: \"offline\", \"disabled\" or "
          "\"online\"",
          it->dump()));
    }
    return {it->get<std::string>(), "init_kwargs[\"wandb\"][\"mode\"]"};
  }
  if (auto mode = environment_value("WANDB_MODE")) return {*mode, "WANDB_MODE"};
  if (auto disabled = environment_value("WANDB_DISABLED"); disabled && truthy(*disabled)) {
    return {"disabled", "WANDB_DISABLED"};
  }
  if (api_key_found()) return {"online", "the W&B API key found in the environment or netrc"};
  return {};
}

// The mode, or the reason it cannot run here.
Mode parse_mode(const ChosenMode& chosen) {
  const std::string mode = ascii_lower(chosen.text);
  if (mode == "offline" || mode == "dryrun") return Mode::offline;
  if (mode == "disabled") return Mode::disabled;
  if (mode.empty()) {
    throw InvalidValue(
        "wandb: no mode was chosen and no W&B API key was found (WANDB_API_KEY, or ~/.netrc); set "
        "WANDB_MODE=offline to write an offline run that `wandb sync` uploads later, or "
        "WANDB_MODE=disabled");
  }
  if (mode == "online" || mode == "run" || mode == "shared") {
    if (!api_key_found()) {
      throw InvalidValue(
          fmt::format(fmt::runtime(kOnlineWithoutKey), chosen.text, chosen.source, base_url()));
    }
    return Mode::online;
  }
  throw InvalidValue(fmt::format(
      "wandb: mode \"{}\" (from {}) is not a W&B mode; use \"offline\", \"disabled\" or "
      "\"online\"",
      chosen.text, chosen.source));
}

// kwargs[name] as a string, else the environment variable, else "".
std::string text_option(const nlohmann::json& kwargs, const char* name, const char* variable) {
  auto value = detail::non_empty_string_option(kwargs, name, [&](const nlohmann::json& v) {
    return fmt::format("init_kwargs[\"wandb\"][\"{}\"] = {} must be a string", name, v.dump());
  });
  if (value) return *value;
  return variable ? environment_value(variable).value_or("") : "";
}

std::vector<std::string> tags_option(const nlohmann::json& kwargs) {
  std::vector<std::string> tags;
  if (auto it = kwargs.find("tags"); it != kwargs.end() && !it->is_null()) {
    const bool strings = it->is_array() && std::all_of(it->begin(), it->end(),
                                                       [](const auto& t) { return t.is_string(); });
    if (!strings) {
      throw InvalidValue(fmt::format(
          "init_kwargs[\"wandb\"][\"tags\"] = {} must be a list of strings", it->dump()));
    }
    for (const auto& tag : *it) tags.push_back(tag.get<std::string>());
    return tags;
  }
  std::stringstream list(environment_value("WANDB_TAGS").value_or(""));
  for (std::string tag; std::getline(list, tag, ',');) {
    if (!tag.empty()) tags.push_back(tag);
  }
  return tags;
}

// W&B run ids name directories and URLs: letters, digits, '-' and '_' keep both safe.
std::optional<std::string> run_id_option(const nlohmann::json& kwargs) {
  std::string id = text_option(kwargs, "id", "WANDB_RUN_ID");
  if (id.empty()) return std::nullopt;
  const bool safe = id.size() <= 128 && std::all_of(id.begin(), id.end(), [](unsigned char c) {
                      return std::isalnum(c) || c == '-' || c == '_';
                    });
  if (!safe) {
    throw InvalidValue(fmt::format(
        "wandb: run id \"{}\" may only hold letters, digits, '-' and '_' (at most 128); leave it "
        "out to get a new 8-character id",
        id));
  }
  return id;
}

StepMode step_mode_option(const nlohmann::json& kwargs) {
  const std::string mode = text_option(kwargs, "step_mode", nullptr);
  if (mode.empty() || mode == "step_metric") return StepMode::step_metric;
  if (mode == "pass_through") return StepMode::pass_through;
  throw InvalidValue(fmt::format(
      "init_kwargs[\"wandb\"][\"step_mode\"] = \"{}\" is not known; use \"step_metric\" (the "
      "default: the step is a metric, nothing is dropped) or \"pass_through\" (Accelerate's "
      "behaviour: the step is W&B's step, smaller steps are dropped)",
      mode));
}

Resume parse_resume(const std::string& text, const std::string& source) {
  const std::string value = ascii_lower(text);
  if (value == "allow") return Resume::allow;
  if (value == "must") return Resume::must;
  if (value == "never") return Resume::never;
  if (value == "auto") return Resume::automatic;
  throw InvalidValue(fmt::format(
      "wandb: resume = \"{}\" (from {}) is not known; use \"allow\" (continue the run of this "
      "id if it exists), \"must\" (it must exist), \"never\" (it must not) or \"auto\" (continue "
      "the last run in this directory that did not finish)",
      text, source));
}

// init_kwargs "resume" (a string, or true = "auto" and false = none, as the SDK reads it), else
// WANDB_RESUME.
Resume resume_option(const nlohmann::json& kwargs) {
  if (auto it = kwargs.find("resume"); it != kwargs.end() && !it->is_null()) {
    if (it->is_boolean()) return it->get<bool>() ? Resume::automatic : Resume::none;
    if (!it->is_string()) {
      throw InvalidValue(fmt::format(
          "init_kwargs[\"wandb\"][\"resume\"] = {} must be \"allow\", \"must\", \"never\", "
          "\"auto\" or a boolean",
          it->dump()));
    }
    return parse_resume(it->get<std::string>(), "init_kwargs[\"wandb\"][\"resume\"]");
  }
  if (auto env = environment_value("WANDB_RESUME")) return parse_resume(*env, "WANDB_RESUME");
  return Resume::none;
}

// init_kwargs "log_model": false, true or "all", as Lightning's WandbLogger takes it.
LogModel log_model_option(const nlohmann::json& kwargs) {
  auto it = kwargs.find("log_model");
  if (it == kwargs.end() || it->is_null()) return LogModel::off;
  if (it->is_boolean()) return it->get<bool>() ? LogModel::at_end : LogModel::off;
  if (it->is_string() && it->get<std::string>() == "all") return LogModel::every_save;
  throw InvalidValue(fmt::format(
      "init_kwargs[\"wandb\"][\"log_model\"] = {} must be false, true (the latest and best "
      "checkpoint at the end) or \"all\" (every checkpoint as save_state writes it)",
      it->dump()));
}

// resume = "auto": the id saved in <directory>/wandb/wandb-resume.json by a run that did not
// finish, if there is one.
std::optional<std::string> auto_resume_id(const std::filesystem::path& directory) {
  std::ifstream in(auto_resume_file(directory));
  if (!in) return std::nullopt;
  const auto saved = nlohmann::json::parse(in, nullptr, false);
  if (!saved.is_object() || !saved.contains("run_id") || !saved["run_id"].is_string()) {
    return std::nullopt;
  }
  return saved["run_id"].get<std::string>();
}

// What `accel-launch sync` hands back (WandbTracker::resume_info of the online run that wrote the
// journal): the same run id (and entity), continued as with resume = "allow".
void apply_journal_resume(const nlohmann::json& resume, Settings& settings) {
  if (!resume.is_object()) return;
  if (auto id = resume.find("run_id"); id != resume.end() && id->is_string()) {
    settings.run_id = id->get<std::string>();
    settings.resume = Resume::allow;
  }
  if (auto entity = resume.find("entity"); entity != resume.end() && entity->is_string()) {
    settings.entity = entity->get<std::string>();
  }
}

}  // namespace

std::filesystem::path auto_resume_file(const std::filesystem::path& directory) {
  return directory / "wandb" / "wandb-resume.json";
}

std::string base_url() {
  std::string url = environment_value("WANDB_BASE_URL").value_or("https://api.wandb.ai");
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

bool api_key_found() {
  if (environment_value("WANDB_API_KEY")) return true;
  const auto netrc = netrc_path();
  return netrc && netrc_password(*netrc, base_url_host()).has_value();
}

std::optional<std::string> read_api_key() {
  if (auto key = environment_value("WANDB_API_KEY")) return key;
  const auto netrc = netrc_path();
  if (!netrc) return std::nullopt;
  return netrc_password(*netrc, base_url_host());
}

Settings resolve_settings(const TrackerInit& init) {
  const nlohmann::json& kwargs = init.init_kwargs;
  if (!kwargs.is_null() && !kwargs.is_object()) {
    throw InvalidValue(
        fmt::format("init_kwargs[\"wandb\"] must be an object, got {}", kwargs.dump()));
  }
  const nlohmann::json options = kwargs.is_object() ? kwargs : nlohmann::json::object();
  if (auto unknown = detail::first_unknown_option(options, kKnownOptions)) {
    throw InvalidValue(
        fmt::format("init_kwargs[\"wandb\"][\"{}\"] is not supported; known options: {}", *unknown,
                    detail::option_list(kKnownOptions)));
  }
  Settings settings;
  settings.mode = parse_mode(choose_mode(options));
  settings.base_url = base_url();
  std::string dir = text_option(options, "dir", "WANDB_DIR");
  if (!dir.empty()) {
    settings.directory = dir;
  } else if (!init.logging_dir.empty()) {
    settings.directory = init.logging_dir;
  } else {
    settings.directory = std::filesystem::current_path();
  }
  settings.run_id = run_id_option(options);
  settings.name = text_option(options, "name", "WANDB_NAME");
  settings.notes = text_option(options, "notes", "WANDB_NOTES");
  settings.group = text_option(options, "group", "WANDB_RUN_GROUP");
  settings.job_type = text_option(options, "job_type", "WANDB_JOB_TYPE");
  settings.entity = text_option(options, "entity", "WANDB_ENTITY");
  settings.tags = tags_option(options);
  settings.step_mode = step_mode_option(options);
  const std::string metric = text_option(options, "step_metric", nullptr);
  if (!metric.empty()) settings.step_metric = metric;
  settings.resume = resume_option(options);
  settings.log_model = log_model_option(options);
  if (auto it = options.find("max_waiting_mib"); it != options.end() && !it->is_null()) {
    if (!it->is_number() || it->get<double>() < 1 || it->get<double>() > 1 << 20) {
      throw InvalidValue(fmt::format(
          "init_kwargs[\"wandb\"][\"max_waiting_mib\"] = {} must be a number of MiB from 1 to "
          "1048576 (default 64)",
          it->dump()));
    }
    settings.max_waiting_bytes = static_cast<std::size_t>(it->get<double>() * (1 << 20));
  }
  if (settings.resume == Resume::automatic && !settings.run_id) {
    settings.run_id = auto_resume_id(settings.directory);
  }
  if (settings.resume == Resume::must && !settings.run_id) {
    throw InvalidValue(
        "wandb: resume = \"must\" needs the id of the run to continue: set init_kwargs[\"wandb\"]"
        "[\"id\"] or WANDB_RUN_ID");
  }
  apply_journal_resume(init.resume, settings);
  return settings;
}

std::optional<std::string> unavailable_reason() {
  try {
    (void)parse_mode(choose_mode(nlohmann::json::object()));
    return std::nullopt;
  } catch (const InvalidValue& e) {
    return std::string(e.what());
  }
}

}  // namespace accel::wandb
