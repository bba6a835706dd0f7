// ProgressBar: the rendered line (epoch, step/total, it/s, ETA, metrics), redraw throttling, and
// that it stays silent where it must (not a terminal, not the main process).
#include "accel/tracking/progress_bar.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>

using accel::ProgressBar;
using accel::ProgressBarOptions;
using namespace std::chrono_literals;

namespace {

// A clock the test moves by hand.
struct FakeClock {
  std::chrono::steady_clock::time_point now{};
  void advance(std::chrono::milliseconds d) { now += d; }
};

ProgressBarOptions forced(std::ostringstream& out, FakeClock& clock, int width = 80) {
  ProgressBarOptions o;
  o.stream = &out;
  o.enabled = true;
  o.width = width;
  o.clock = [&clock] { return clock.now; };
  return o;
}

std::size_t count(const std::string& text, std::string_view what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("renders epoch, percentage, bar, step/total, elapsed, ETA, rate and metrics") {
  std::ostringstream out;
  FakeClock clock;
  ProgressBar bar(forced(out, clock, 120));
  REQUIRE(bar.enabled());
  bar.start_epoch(2, 100);
  clock.advance(10'000ms);
  bar.update(25);  // 25 steps in 10 s: 2.50 it/s, 75 left: 30 s
  bar.set_metrics({{"loss", 0.123456}, {"step", 7}, {"big", 12345.0}, {"name", "run"}});
  const std::string line = bar.render();
  REQUIRE(line.size() == 120);
  REQUIRE(line.rfind("Epoch 2:  25%|", 0) == 0);
  REQUIRE_THAT(line,
               Catch::EndsWith(
                   "| 25/100 [00:10<00:30, 2.50it/s, loss=0.123, step=7, big=1.23e+4, name=run]"));
  // The bar fills a quarter of its width with '#'.
  const auto bar_start = line.find('|') + 1;
  const auto bar_end = line.find('|', bar_start);
  const std::string cells = line.substr(bar_start, bar_end - bar_start);
  REQUIRE(count(cells, "#") == cells.size() / 4);
  REQUIRE(cells.find_first_not_of('#') == cells.size() / 4);
}

TEST_CASE("slow steps show s/it; unknown total shows a counter; hours in the ETA") {
  std::ostringstream out;
  FakeClock clock;
  ProgressBar bar(forced(out, clock, 120));
  bar.start_epoch(0, std::nullopt);
  clock.advance(4'000ms);
  bar.update(2);  // 0.5 it/s
  REQUIRE(bar.render() == "Epoch 0: 2it [00:04, 2.00s/it]");

  bar.start_epoch(1, 10'000, "Validating");
  clock.advance(10'000ms);
  bar.update(1);  // 1 step per 10 s: 9999 left = 27:46:30
  REQUIRE_THAT(bar.render(), Catch::StartsWith("Validating:   0%|") &&
                                 Catch::EndsWith("| 1/10000 [00:10<27:46:30, 10.00s/it]"));
}

TEST_CASE("redraws at most once per refresh interval and ends the line on close") {
  std::ostringstream out;
  FakeClock clock;
  ProgressBar bar(forced(out, clock));
  bar.start_epoch(0, 1000);
  REQUIRE(count(out.str(), "\r") == 1);  // the initial line
  int due = 0;
  for (int i = 0; i < 500; ++i) {
    clock.advance(1ms);
    due += bar.redraw_due() ? 1 : 0;
    bar.update();
  }
  REQUIRE(due == 5);
  // 500 updates over 500 ms with the default 100 ms interval: 5 redraws.
  REQUIRE(count(out.str(), "\r") == 6);
  bar.close();
  const std::string text = out.str();
  REQUIRE(text.back() == '\n');
  REQUIRE_THAT(text, Catch::Contains("500/1000"));
  bar.close();  // idempotent
  bar.update();
  REQUIRE(out.str() == text);
}

TEST_CASE("a shorter line is padded over the previous one; write prints above the bar") {
  std::ostringstream out;
  FakeClock clock;
  ProgressBar bar(forced(out, clock, 200));
  bar.start_epoch(0, std::nullopt);
  bar.set_metrics({{"a_long_metric_name", 1.0}});
  bar.refresh();
  const std::size_t long_length = bar.render().size();
  bar.set_metrics({});
  out.str("");
  bar.refresh();
  const std::string redraw = out.str();
  REQUIRE(redraw.size() == 1 + long_length);  // '\r' + text + spaces over the old tail
  REQUIRE(redraw.substr(1 + bar.render().size()).find_first_not_of(' ') == std::string::npos);

  out.str("");
  bar.write("checkpoint saved");
  const std::string written = out.str();
  REQUIRE_THAT(written, Catch::Contains("\rcheckpoint saved\n\rEpoch 0:"));
}

TEST_CASE("the line is cut to the width, never inside a UTF-8 sequence") {
  std::ostringstream out;
  FakeClock clock;
  ProgressBar bar(forced(out, clock, 30));
  bar.start_epoch(0, std::nullopt, "Époque");
  bar.set_metrics({{"métrique", 0.5}, {"more", 1.0}});
  const std::string line = bar.render();
  REQUIRE(line == "Époque: 0it [00:00, ?it/s, mét");
}

TEST_CASE("off when the output is not a terminal, unless forced; off on other ranks") {
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  {
    ProgressBarOptions o;
    o.file = file;  // a regular file is not a terminal
    ProgressBar bar(o);
    REQUIRE_FALSE(bar.enabled());
    bar.start_epoch(0, 10);
    bar.update(5);
    bar.refresh();
    bar.close();
  }
  REQUIRE(std::ftell(file) == 0);  // nothing written

  std::ostringstream memory;
  ProgressBarOptions auto_memory;
  auto_memory.stream = &memory;
  REQUIRE_FALSE(ProgressBar(auto_memory).enabled());

  ProgressBarOptions forced_file;
  forced_file.file = file;
  forced_file.enabled = true;
  {
    ProgressBar bar(forced_file);
    REQUIRE(bar.enabled());
    bar.start_epoch(3, 4);
    bar.update(4);
  }  // destructor closes: the line ends with a newline
  REQUIRE(std::ftell(file) > 0);
  std::rewind(file);
  char buffer[512] = {};
  const std::size_t n = std::fread(buffer, 1, sizeof(buffer) - 1, file);
  const std::string text(buffer, n);
  REQUIRE_THAT(text, Catch::Contains("Epoch 3: 100%|") && Catch::Contains("4/4"));
  REQUIRE(text.back() == '\n');
  std::fclose(file);

  std::ostringstream rank1;
  FakeClock clock;
  ProgressBarOptions other = forced(rank1, clock);
  other.is_main_process = false;
  ProgressBar bar(other);
  REQUIRE_FALSE(bar.enabled());
  bar.start_epoch(0, 10);
  bar.update(10);
  bar.write("only on the main process");
  bar.close();
  REQUIRE(rank1.str().empty());
}
