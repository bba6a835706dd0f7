#pragma once
// accel::wandb::Settings: how a W&B run is set up, chosen as the wandb SDK chooses it — from
// init_kwargs["wandb"] (what Accelerate passes to wandb.init), else the WANDB_* environment
// variables, else defaults. Settings never hold the API key: only read_api_key() reads it, for the
// online mode's connection (it goes into no file, message or journal).
//
//   mode       init_kwargs "mode", else WANDB_MODE, else "disabled" when WANDB_DISABLED is true,
//              else "online" when an API key is found (WANDB_API_KEY, or a password for the host
//              of WANDB_BASE_URL — default api.wandb.ai — in $NETRC or ~/.netrc). "dryrun" means
//              offline and "run" online, as in the SDK. Online without a key is an error.
//   base_url   WANDB_BASE_URL, default https://api.wandb.ai (no trailing slash).
//   directory  init_kwargs "dir", else WANDB_DIR, else the logging directory, else the current
//              directory: the run goes under <directory>/wandb/.
//   id, name, notes, tags, group, job_type, entity: init_kwargs, else WANDB_RUN_ID, WANDB_NAME,
//              WANDB_NOTES, WANDB_TAGS (comma-separated), WANDB_RUN_GROUP, WANDB_JOB_TYPE,
//              WANDB_ENTITY.
//   step_mode  "step_metric" (default, Lightning's WandbLogger): every log call is one W&B row
//              (_step counts rows) and the step given to log() is the value of `step_metric`
//              (default "trainer/global_step"), which every other metric uses as its x-axis
//              (define_metric("*", step_metric=..., step_sync=True)). Nothing is ever dropped.
//              "pass_through" (Accelerate's WandBTracker): the step is wandb.log's step=, with
//              W&B's rules — rows logged with a smaller step than the current one are dropped with
//              W&B's warning (once per key).
//   resume     init_kwargs "resume", else WANDB_RESUME, as wandb.init(resume=): "allow" continues
//              the run of that id when the server has it, "must" requires it (and an id),
//              "never" refuses it, "auto" (or true) takes the id saved in
//              <directory>/wandb/wandb-resume.json by a run of this directory that did not finish
//              and then acts as "allow". Only the online mode asks the server; offline runs are
//              written as new runs of that id, as the SDK writes them.
//   log_model  Lightning's WandbLogger(log_model=): false (default), true (the latest and best
//              checkpoint at the end of a run that finished), "all" (every checkpoint as saved).
//   max_waiting_mib  online: MiB of rows that may wait in memory for an away server (default 64);
//              beyond, calls go to the hub's queue and journal.
//   TrackerInit::resume (what `accel-launch sync` hands back from WandbTracker::resume_info of
//              an online run): the same run id and entity, with "allow".
// Thread-safety: pure functions (they read the environment).
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "accel/tracking/general_tracker.hpp"

namespace accel::wandb {

enum class Mode { online, offline, disabled };
enum class StepMode { step_metric, pass_through };
enum class Resume { none, allow, must, never, automatic };
enum class LogModel { off, at_end, every_save };

struct Settings {
  Mode mode = Mode::offline;
  std::string base_url = "https://api.wandb.ai";
  std::filesystem::path directory;  // <directory>/wandb/ holds the runs
  std::optional<std::string> run_id;
  std::string name, notes, group, job_type, entity;
  std::vector<std::string> tags;
  StepMode step_mode = StepMode::step_metric;
  std::string step_metric = "trainer/global_step";
  Resume resume = Resume::none;
  std::size_t max_waiting_bytes = std::size_t{64} << 20;  // online: "max_waiting_mib"
  LogModel log_model = LogModel::off;
};

// <directory>/wandb/wandb-resume.json: where resume = "auto" keeps the id of a run that has not
// finished (written at its start, removed when it finishes with exit code 0, as the SDK does).
std::filesystem::path auto_resume_file(const std::filesystem::path& directory);

// The settings for a tracker constructed from init. Throws accel::InvalidValue for an unknown
// option or a bad value (named, with the fix), and for online mode without an API key.
Settings resolve_settings(const TrackerInit& init);

// Why the wandb tracker cannot start with the current environment (no mode and no key, online
// without a key), or nullopt when it can; what log_with = {"all"} reports.
std::optional<std::string> unavailable_reason();

// True when an API key is configured (see above). Reads WANDB_API_KEY's presence and the netrc.
bool api_key_found();

// The API key: WANDB_API_KEY, else the netrc password for the host of base_url(). Only the online
// mode's connection calls it; the key must go into no file, message or journal.
std::optional<std::string> read_api_key();

// WANDB_BASE_URL without a trailing slash, default https://api.wandb.ai.
std::string base_url();

}  // namespace accel::wandb
