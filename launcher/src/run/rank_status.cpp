#include "run/rank_status.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace accel::launch {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

}  // namespace

std::string signal_name(int signal) {
  if (const char* abbrev = sigabbrev_np(signal)) return fmt::format("SIG{}", abbrev);
  return fmt::format("signal {}", signal);
}

std::string describe_end(const RankStatus& status) {
  if (status.signal) {
    return fmt::format("was killed by signal {} ({})", *status.signal, signal_name(*status.signal));
  }
  return fmt::format("exited with code {}", status.exit_code.value_or(0));
}

void write_rank_status(const fs::path& run_dir, const RankStatus& status) {
  json record = {{"rank", status.rank},
                 {"world_size", status.world_size},
                 {"host", status.host},
                 {"pid", status.pid},
                 {"exit_code", status.exit_code ? json(*status.exit_code) : json()},
                 {"signal", status.signal ? json(*status.signal) : json()},
                 {"forwarded_signal", status.forwarded_signal},
                 {"parent_lost", status.parent_lost},
                 {"finished_unix_ns", status.finished_unix_ns},
                 {"last_lines", status.last_lines}};
  const fs::path final_path = run_dir / fmt::format("rank{}.json", status.rank);
  const fs::path temporary = run_dir / fmt::format(".rank{}.json.tmp", status.rank);
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << record.dump(1, ' ', false, json::error_handler_t::replace) << '\n';
    if (!out) return;  // the supervisor falls back to mpirun's own report
  }
  std::error_code ec;
  fs::rename(temporary, final_path, ec);
}

std::vector<RankStatus> read_rank_statuses(const fs::path& run_dir) {
  std::vector<RankStatus> statuses;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(run_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("rank") || !name.ends_with(".json")) continue;
    std::ifstream in(entry.path());
    json record = json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded() || !record.is_object()) continue;
    RankStatus status;
    status.rank = record.value("rank", 0);
    status.world_size = record.value("world_size", 1);
    status.host = record.value("host", "");
    status.pid = record.value("pid", 0L);
    if (record.contains("exit_code") && record["exit_code"].is_number()) {
      status.exit_code = record["exit_code"].get<int>();
    }
    if (record.contains("signal") && record["signal"].is_number()) {
      status.signal = record["signal"].get<int>();
    }
    status.forwarded_signal = record.value("forwarded_signal", 0);
    status.parent_lost = record.value("parent_lost", false);
    status.finished_unix_ns = record.value("finished_unix_ns", std::int64_t{0});
    status.last_lines = record.value("last_lines", std::vector<std::string>{});
    statuses.push_back(std::move(status));
  }
  std::sort(statuses.begin(), statuses.end(),
            [](const RankStatus& a, const RankStatus& b) { return a.rank < b.rank; });
  return statuses;
}

std::optional<RankStatus> first_failure(const std::vector<RankStatus>& statuses) {
  const RankStatus* best = nullptr;
  for (const auto& status : statuses) {
    if (!best) {
      best = &status;
      continue;
    }
    const bool better_kind = status.failed_by_itself() && !best->failed_by_itself();
    const bool same_kind = status.failed_by_itself() == best->failed_by_itself();
    if (better_kind || (same_kind && status.finished_unix_ns < best->finished_unix_ns)) {
      best = &status;
    }
  }
  if (!best) return std::nullopt;
  return *best;
}

}  // namespace accel::launch
