// Writes tags x steps scalar points and prints one JSON line with the time it took:
//
//   tensorboard_write_bench writer  <dir> <tags> <steps>  TensorBoardWriter::add_scalar per point
//   tensorboard_write_bench tracker <dir> <tags> <steps>  TensorBoardTracker::log once per step
//   tensorboard_write_bench raw     <file> <out-file>     fwrite of <file>'s bytes, once per record
//
// For all three, timing covers the writes and handing the data to the OS (flush / fflush), not the
// final fsync, so that they are compared on the same work. Used by scripts/bench/tensorboard_write.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "accel/tracking/trackers/tensorboard/tensorboard_tracker.hpp"
#include "accel/tracking/trackers/tensorboard/tensorboard_writer.hpp"
#include "common/crc32c.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// CPU time of the whole process (all threads, user + system): on a shared, overloaded machine this
// measures the work done better than the wall clock does.
double process_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::vector<std::string> tag_names(int tags) {
  std::vector<std::string> names;
  for (int t = 0; t < tags; ++t) names.push_back(fmt::format("train/metric_{}", t));
  return names;
}

double value_of(int tag, int64_t step) {
  return std::sin(0.001 * static_cast<double>(step)) + tag;
}

void print_result(const char* mode, int64_t events, double seconds, double cpu_seconds,
                  uint64_t bytes, const std::filesystem::path& file) {
  fmt::print(R"({{"mode": "{}", "events": {}, "seconds": {:.6f}, "cpu_seconds": {:.6f}, )"
             R"("bytes": {}, "file": "{}", )"
             R"("crc32c_hardware": {}}})"
             "\n",
             mode, events, seconds, cpu_seconds, bytes, file.string(),
             accel::crc32c_is_hardware_accelerated());
}

int run_writer(const std::filesystem::path& dir, int tags, int64_t steps) {
  const auto names = tag_names(tags);
  accel::TensorBoardWriter writer(dir);
  const double cpu_start = process_cpu_seconds();
  auto start = Clock::now();
  for (int64_t step = 0; step < steps; ++step) {
    for (int t = 0; t < tags; ++t)
      writer.add_scalar(names[static_cast<std::size_t>(t)], value_of(t, step), step);
  }
  writer.flush();
  double seconds = seconds_since(start);
  double cpu_seconds = process_cpu_seconds() - cpu_start;
  uint64_t bytes = writer.bytes_appended();
  writer.close();
  print_result("writer", steps * tags, seconds, cpu_seconds, bytes, writer.file_path());
  return 0;
}

int run_tracker(const std::filesystem::path& dir, int tags, int64_t steps) {
  const auto names = tag_names(tags);
  accel::TrackerInit init;
  init.run_name = "run";
  init.logging_dir = dir;
  accel::TensorBoardTracker tracker(init);
  tracker.start();
  // The Values are built outside the timed loop's writes only as much as a training loop would: one
  // Values per step, as TrackerHub hands them to the tracker.
  const double cpu_start = process_cpu_seconds();
  auto start = Clock::now();
  for (int64_t step = 0; step < steps; ++step) {
    accel::Values values;
    for (int t = 0; t < tags; ++t)
      values.set(names[static_cast<std::size_t>(t)], value_of(t, step));
    tracker.log(values, step);
  }
  tracker.flush();
  double seconds = seconds_since(start);
  double cpu_seconds = process_cpu_seconds() - cpu_start;
  auto* writer = tracker.writer();
  uint64_t bytes = writer->bytes_appended();
  auto file = writer->file_path();
  tracker.finish(accel::RunStatus::finished);
  print_result("tracker", steps * tags, seconds, cpu_seconds, bytes, file);
  return 0;
}

// Replays the bytes of an events file with one fwrite per record, through a stdio buffer as large
// as the writer's: the same bytes, calls and write(2) sizes, without encoding or checksums.
int run_raw(const std::filesystem::path& source, const std::filesystem::path& target) {
  std::ifstream in(source, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::pair<std::size_t, std::size_t>> records;  // offset, size
  for (std::size_t pos = 0; pos + 12 <= bytes.size();) {
    uint64_t length;
    std::memcpy(&length, bytes.data() + pos, 8);
    records.emplace_back(pos, 12 + length + 4);
    pos += 12 + length + 4;
  }
  std::FILE* out = std::fopen(target.c_str(), "wb");
  if (out == nullptr) {
    fmt::print(stderr, "cannot open {}\n", target.string());
    return 1;
  }
  std::vector<char> stdio_buffer(256 * 1024);  // the writer's buffer size, so only encoding differs
  std::setvbuf(out, stdio_buffer.data(), _IOFBF, stdio_buffer.size());
  const double cpu_start = process_cpu_seconds();
  auto start = Clock::now();
  for (const auto& [offset, size] : records) std::fwrite(bytes.data() + offset, 1, size, out);
  std::fflush(out);
  double seconds = seconds_since(start);
  double cpu_seconds = process_cpu_seconds() - cpu_start;
  std::fclose(out);
  print_result("raw", static_cast<int64_t>(records.size()), seconds, cpu_seconds, bytes.size(),
               target);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  try {
    if ((mode == "writer" || mode == "tracker") && argc == 5) {
      const int tags = std::stoi(argv[3]);
      const int64_t steps = std::stoll(argv[4]);
      return mode == "writer" ? run_writer(argv[2], tags, steps)
                              : run_tracker(argv[2], tags, steps);
    }
    if (mode == "raw" && argc == 4) return run_raw(argv[2], argv[3]);
  } catch (const std::exception& e) {
    fmt::print(stderr, "tensorboard_write_bench: {}\n", e.what());
    return 1;
  }
  fmt::print(stderr,
             "usage: tensorboard_write_bench writer|tracker <dir> <tags> <steps>\n"
             "       tensorboard_write_bench raw <events-file> <out-file>\n");
  return 2;
}
