#pragma once
// accel::ProgressBar: a one-line console progress bar for the training loop, like Lightning's
// TQDMProgressBar:
//
//   Epoch 2:  45%|#########           | 45/100 [00:12<00:15, 3.62it/s, loss=0.123, acc=0.91]
//
// (without a known total: "Epoch 2: 45it [00:12, 3.62it/s, loss=0.123]").
// It draws only on the main process, and only when its output is a terminal, unless forced on
// (enabled = true) or off (enabled = false). update() is cheap enough for every step: it counts and
// redraws at most once per refresh_interval. Metric values are formatted with 3 significant digits
// ("{:.3g}"), integers as integers. The line is redrawn in place with '\r' and padded with spaces
// over the previous text; close() (or the next start_epoch) ends it with a newline.
//
// Writing errors are ignored (a broken console never stops training).
// Thread-safety: none; one bar belongs to the training thread.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "accel/tracking/values.hpp"

namespace accel {

struct ProgressBarOptions {
  // Where to draw: `stream` when set, otherwise `file` (default stdout).
  std::FILE* file = stdout;
  std::ostream* stream = nullptr;
  // nullopt: on when the output is a terminal (isatty; for `stream`, only std::cout / std::cerr /
  // std::clog can be terminals), or, under accel-launch, when ACCEL_PROGRESS_BAR=1 and the output
  // is the rank's stdout/stderr pipe to the launcher; always off when ACCEL_PROGRESS_BAR=0 (see
  // docs/logging.md). true / false: forced on / off.
  std::optional<bool> enabled{};
  // false on every rank but the main process: the bar is then off whatever `enabled` says.
  bool is_main_process = true;
  std::chrono::milliseconds refresh_interval{100};
  // Width of the whole line in columns. 0: the terminal's width (the window size, else
  // ACCEL_PROGRESS_BAR_COLUMNS under accel-launch, else COLUMNS), 100 when unknown. The bar part
  // shrinks to fit; the line is cut to this width.
  int width = 0;
  // Clock for elapsed time, it/s and ETA; tests inject a fake one. Empty:
  // std::chrono::steady_clock.
  std::function<std::chrono::steady_clock::time_point()> clock{};
};

class ProgressBar {
 public:
  explicit ProgressBar(ProgressBarOptions options = {});
  ~ProgressBar();  // close()
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Whether the bar draws anything (decided at construction, see ProgressBarOptions).
  bool enabled() const;

  // Starts a new line for an epoch (ends the previous one with a newline). total_steps: the number
  // of steps of the epoch when known (>= 0), nullopt otherwise. description defaults to "Epoch
  // <epoch>".
  void start_epoch(int64_t epoch, std::optional<int64_t> total_steps = std::nullopt,
                   std::string description = {});
  // Counts steps done in this epoch; redraws if refresh_interval has passed since the last draw.
  void update(int64_t steps = 1);
  // True when the bar is drawing and the next update() will redraw: callers can skip building the
  // metrics for set_metrics on the other steps.
  bool redraw_due() const;
  // The metrics shown after the rate (e.g. MetricAggregator::prog_bar_values()); scalars and
  // strings are shown, other kinds are skipped. Drawn at the next redraw.
  void set_metrics(const Values& metrics);
  // Prints a message on its own line above the bar (like tqdm.write) and redraws the bar.
  void write(std::string_view message);
  // Redraws now.
  void refresh();
  // Final redraw and newline. Idempotent; later calls other than start_epoch draw nothing.
  void close();

  // The current line's text (without '\r' and padding), whether or not the bar is enabled.
  std::string render() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace accel
