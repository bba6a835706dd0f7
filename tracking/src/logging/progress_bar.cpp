#include "accel/tracking/progress_bar.hpp"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

#include "common/utf8.hpp"

namespace accel {

namespace {

using Clock = std::chrono::steady_clock;

std::string format_duration(double seconds) {
  const auto total = static_cast<int64_t>(std::max(0.0, seconds));
  const int64_t h = total / 3600, m = total / 60 % 60, s = total % 60;
  if (h > 0) return fmt::format("{}:{:02d}:{:02d}", h, m, s);
  return fmt::format("{:02d}:{:02d}", m, s);
}

// tqdm's format_num: 3 significant digits, exponent without leading zeros.
std::string format_number(double v) {
  std::string text = fmt::format("{:.3g}", v);
  for (std::string_view from : {"e+0", "e-0"}) {
    if (auto at = text.find(from); at != std::string::npos) text.erase(at + 2, 1);
  }
  return text;
}

int output_descriptor(const ProgressBarOptions& options) {
  if (options.stream != nullptr) {
    if (options.stream == &std::cout) return STDOUT_FILENO;
    if (options.stream == &std::cerr || options.stream == &std::clog) return STDERR_FILENO;
    return -1;
  }
  return options.file != nullptr ? fileno(options.file) : -1;
}

int terminal_width(int fd) {
  if (fd >= 0) {
    winsize size{};
    if (::ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  }
  if (const char* columns = std::getenv("COLUMNS")) {
    const int n = std::atoi(columns);
    if (n > 0) return n;
  }
  return 100;
}

bool is_pipe(int fd) {
  struct stat info {};
  return ::fstat(fd, &info) == 0 && S_ISFIFO(info.st_mode);
}

int positive_env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return 0;
  const int n = std::atoi(value);
  return n > 0 ? n : 0;
}

// ACCEL_PROGRESS_BAR: "1" (draw), "0" (do not), unset or anything else: no say.
std::optional<bool> launcher_progress_bar() {
  const char* value = std::getenv("ACCEL_PROGRESS_BAR");
  if (value == nullptr) return std::nullopt;
  const std::string_view v(value);
  if (v == "1") return true;
  if (v == "0") return false;
  return std::nullopt;
}

// Open MPI's mpirun hands every rank a pseudo-terminal, even when mpirun's own output is a file or
// a pipe, so a rank's isatty says nothing about where the bar would end up. What counts is
// mpirun's stdout: on the machine it runs on, mpirun is the rank's parent. A rank started by a
// remote daemon sees the daemon's stdout (never a terminal), so no bar is drawn there.
bool under_open_mpi() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr;
}

bool parent_stdout_is_terminal() {
  std::error_code error;
  const auto target = std::filesystem::read_symlink(
      std::filesystem::path("/proc") / std::to_string(::getppid()) / "fd" / "1", error);
  if (error) return false;
  const std::string name = target.string();
  return name.starts_with("/dev/pts/") || name.starts_with("/dev/tty");
}

}  // namespace

struct ProgressBar::State {
  ProgressBarOptions options;
  bool enabled = false;
  int width = 100;

  int64_t epoch = 0;
  std::optional<int64_t> total;
  std::string description;
  int64_t done = 0;
  Clock::time_point epoch_start{};
  Clock::time_point last_draw{};
  std::vector<std::pair<std::string, std::string>> metrics;

  bool line_open = false;        // a bar line is on screen and not ended by a newline
  std::size_t drawn_length = 0;  // code points of the line on screen, for padding over it

  Clock::time_point now() const { return options.clock ? options.clock() : Clock::now(); }

  void emit(std::string_view text) {
    if (options.stream != nullptr) {
      options.stream->write(text.data(), static_cast<std::streamsize>(text.size()));
      options.stream->flush();
    } else if (options.file != nullptr) {
      std::fwrite(text.data(), 1, text.size(), options.file);
      std::fflush(options.file);
    }
  }

  void draw() {
    last_draw = now();
    const std::string text = render();
    const std::size_t length = utf8_code_points(text);
    std::string line = "\r" + text;
    if (length < drawn_length) line.append(drawn_length - length, ' ');
    drawn_length = length;
    line_open = true;
    emit(line);
  }

  void end_line() {
    if (!line_open) return;
    draw();
    emit("\n");
    line_open = false;
    drawn_length = 0;
  }

  std::string render() const {
    const double elapsed = std::chrono::duration<double>(now() - epoch_start).count();
    const double rate = elapsed > 0 && done > 0 ? static_cast<double>(done) / elapsed : 0.0;
    std::string rate_text = rate <= 0   ? "?it/s"
                            : rate >= 1 ? fmt::format("{:.2f}it/s", rate)
                                        : fmt::format("{:.2f}s/it", 1.0 / rate);
    std::string postfix;
    for (const auto& [key, value] : metrics) postfix += fmt::format(", {}={}", key, value);
    const std::string label = description.empty() ? fmt::format("Epoch {}", epoch) : description;

    std::string text;
    if (!total) {
      text = fmt::format("{}: {}it [{}, {}{}]", label, done, format_duration(elapsed), rate_text,
                         postfix);
    } else {
      const int64_t n = std::min(done, *total);
      const double fraction =
          *total > 0 ? static_cast<double>(n) / static_cast<double>(*total) : 1.0;
      const std::string eta =
          rate > 0 ? format_duration(static_cast<double>(*total - n) / rate) : "?";
      const std::string left =
          fmt::format("{}: {:3d}%|", label, static_cast<int>(std::floor(fraction * 100.0)));
      const std::string right = fmt::format("| {}/{} [{}<{}, {}{}]", done, *total,
                                            format_duration(elapsed), eta, rate_text, postfix);
      const auto used = static_cast<int64_t>(utf8_code_points(left) + utf8_code_points(right));
      const int64_t bar = std::max<int64_t>(width - used, 10);
      const auto filled = static_cast<int64_t>(std::floor(fraction * static_cast<double>(bar)));
      text = left + std::string(static_cast<std::size_t>(filled), '#') +
             std::string(static_cast<std::size_t>(bar - filled), ' ') + right;
    }
    return std::string(utf8_prefix(text, static_cast<std::size_t>(std::max(width, 1))));
  }
};

ProgressBar::ProgressBar(ProgressBarOptions options) : state_(std::make_unique<State>()) {
  state_->options = std::move(options);
  const auto& o = state_->options;
  const int fd = output_descriptor(o);
  const bool terminal = fd >= 0 && ::isatty(fd) == 1;
  // Under accel-launch the output is a pipe to the rank's shim: the launcher says whether its own
  // output is a terminal (ACCEL_PROGRESS_BAR=1/0) and how wide (ACCEL_PROGRESS_BAR_COLUMNS).
  // "1" applies to the rank's stdout/stderr while they are that pipe (not to a file of its own).
  // Under plain mpirun (no ACCEL_PROGRESS_BAR) a terminal counts only when mpirun's stdout is one.
  // Elsewhere isatty decides, and ACCEL_PROGRESS_BAR=0 still turns it off.
  std::optional<bool> launcher_says = launcher_progress_bar();
  if (!launcher_says && terminal && under_open_mpi() && !parent_stdout_is_terminal()) {
    launcher_says = false;
  }
  const bool relayed = launcher_says.value_or(false) && !terminal &&
                       (fd == STDOUT_FILENO || fd == STDERR_FILENO) && is_pipe(fd);
  const bool default_on = launcher_says == false ? false : terminal || relayed;
  state_->enabled = o.is_main_process && o.enabled.value_or(default_on);
  int width = o.width;
  if (width <= 0 && relayed) width = positive_env("ACCEL_PROGRESS_BAR_COLUMNS");
  state_->width = width > 0 ? width : terminal_width(terminal ? fd : -1);
  state_->epoch_start = state_->last_draw = state_->now();
}

ProgressBar::~ProgressBar() {
  close();
}

bool ProgressBar::enabled() const {
  return state_->enabled;
}

void ProgressBar::start_epoch(int64_t epoch, std::optional<int64_t> total_steps,
                              std::string description) {
  if (state_->enabled) state_->end_line();
  state_->epoch = epoch;
  state_->total = total_steps && *total_steps >= 0 ? total_steps : std::nullopt;
  state_->description = std::move(description);
  state_->done = 0;
  state_->epoch_start = state_->now();
  if (state_->enabled) state_->draw();
}

void ProgressBar::update(int64_t steps) {
  state_->done += steps;
  if (redraw_due()) state_->draw();
}

bool ProgressBar::redraw_due() const {
  return state_->enabled && state_->line_open &&
         state_->now() - state_->last_draw >= state_->options.refresh_interval;
}

void ProgressBar::set_metrics(const Values& metrics) {
  state_->metrics.clear();
  for (const auto& [key, value] : metrics) {
    if (const auto* i = value.get_if<int64_t>()) {
      state_->metrics.emplace_back(key, std::to_string(*i));
    } else if (const auto* d = value.get_if<double>()) {
      state_->metrics.emplace_back(key, format_number(*d));
    } else if (const auto* s = value.get_if<std::string>()) {
      state_->metrics.emplace_back(key, *s);
    }
  }
}

void ProgressBar::write(std::string_view message) {
  if (!state_->options.is_main_process) return;
  if (!state_->enabled) {
    state_->emit(std::string(message) + "\n");
    return;
  }
  const bool reopen = state_->line_open;
  std::string text = "\r" + std::string(state_->drawn_length, ' ') + "\r";
  text.append(message);
  text += "\n";
  state_->drawn_length = 0;
  state_->line_open = false;
  state_->emit(text);
  if (reopen) state_->draw();
}

void ProgressBar::refresh() {
  if (state_->enabled && state_->line_open) state_->draw();
}

void ProgressBar::close() {
  if (state_ && state_->enabled) state_->end_line();
}

std::string ProgressBar::render() const {
  return state_->render();
}

}  // namespace accel
