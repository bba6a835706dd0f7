// TensorBoardWriter against the real TensorBoard reader (EventAccumulator in .venv): every kind of
// value, the file name, periodic flushing, a killed process, a refused write, and bad input.
#include "accel/tracking/trackers/tensorboard/tensorboard_writer.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <regex>
#include <thread>
#include <vector>

#include "accel/tracking/errors.hpp"
#include "file_size_limit.hpp"
#include "tensorboard_test_support.hpp"

using namespace accel;
using accel::test::read_events;
using accel::test::TempDir;
using nlohmann::json;

namespace {

std::string hex(const std::vector<uint8_t>& bytes) {
  std::string out;
  for (uint8_t b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

Image gradient(int64_t h, int64_t w, int64_t c) {
  Image image{h, w, c, std::vector<uint8_t>(static_cast<std::size_t>(h * w * c))};
  for (std::size_t i = 0; i < image.pixels.size(); ++i)
    image.pixels[i] = static_cast<uint8_t>(i * 7 % 256);
  return image;
}

double as_float32(double v) {
  return static_cast<double>(static_cast<float>(v));
}

}  // namespace

TEST_CASE("scalars, text, images and histograms read back exactly with EventAccumulator") {
  TempDir dir;
  auto run = dir.path() / "run";
  std::vector<double> samples;
  for (int i = 0; i < 1000; ++i) samples.push_back(std::sin(i * 0.1) * 3 + 1);
  const auto grey = gradient(5, 7, 1), rgb = gradient(4, 3, 3), rgba = gradient(2, 9, 4);
  const std::vector<float> floats = {0.0F, 0.25F, 0.5F, 1.0F, 2.0F, -1.0F};
  {
    TensorBoardWriter writer(run);
    for (int64_t step = 0; step < 50; ++step)
      writer.add_scalar("train/loss", 1.0 / (step + 1), step);
    writer.add_scalar("big/step", 0.5, int64_t{1} << 40);
    writer.add_scalar("negative/step", -2.5, -3);
    writer.add_scalars("loss", ScalarGroup{{{"train", 0.3}, {"val", 0.4}}}, 7);
    writer.add_text("notes", "héllo **markdown**", 3);
    writer.add_image("img/grey", grey, 1);
    writer.add_image("img/rgb", rgb, 2);
    writer.add_image("img/rgba", rgba, 3);
    writer.add_image("img/float", Image::from_float(floats, 2, 1, 3), 4);
    writer.add_histogram("weights", Histogram::from_samples(samples), 5);
    writer.add_histogram("binned", Histogram::from_bins({0, 1, 2, 3}, {1, 5, 2, 0}), 6);
    writer.close();
  }
  json seen = read_events(run);
  CHECK(seen["file_version"] == "brain.Event:2");
  CHECK(seen["reencode_mismatches"] == 0);  // our hand-encoded scalar events are canonical protobuf
  CHECK(seen["records"] == 1 + 50 + 2 + 2 + 1 + 1 + 4 + 2);  // + the Custom Scalars layout

  auto loss = seen["scalars"]["train/loss"];
  REQUIRE(loss.size() == 50);
  for (int i = 0; i < 50; ++i) {
    CHECK(loss[i][0] == i);
    CHECK(loss[i][1].get<double>() == as_float32(1.0 / (i + 1)));
  }
  CHECK(seen["scalars"]["big/step"] == json::array({json::array({int64_t{1} << 40, 0.5})}));
  CHECK(seen["scalars"]["negative/step"] == json::array({json::array({-3, -2.5})}));
  CHECK(seen["scalars"]["loss/train"][0][1].get<double>() == as_float32(0.3));
  CHECK(seen["scalars"]["loss/val"][0][0] == 7);
  CHECK(seen["scalars"].size() == 5);  // no stray series
  // The Custom Scalars tab overlays a group's series in one chart, as add_scalars' runs would.
  CHECK(seen["custom_scalars_layout"] == json::parse(R"({"category": [{"title": "scalar groups",
        "chart": [{"title": "loss", "multiline": {"tag": ["^loss/train$", "^loss/val$"]}}]}]})"));
  CHECK(seen["texts"]["notes"] == json::array({json::array({3, "héllo **markdown**"})}));

  auto image_check = [&](const char* tag, const Image& image, const char* mode) {
    auto item = seen["images"][tag][0];
    CHECK(item["width"] == image.width);
    CHECK(item["height"] == image.height);
    CHECK(item["mode"] == mode);
    CHECK(item["pixels"] == hex(image.pixels));
  };
  image_check("img/grey", grey, "L");
  image_check("img/rgb", rgb, "RGB");
  image_check("img/rgba", rgba, "RGBA");
  CHECK(seen["images"]["img/float"][0]["pixels"] == "004080ffff00");  // 0,.25,.5 | 1, 2→1, -1→0

  auto h = seen["histograms"]["weights"][0];
  CHECK(h["step"] == 5);
  CHECK(h["num"] == 1000);
  double total = 0;
  for (double c : h["bucket"]) total += c;
  CHECK(total == 1000);
  CHECK(h["bucket"].size() == TensorBoardWriter::kHistogramBuckets + 1);
  CHECK(h["min"].get<double>() == Approx(-2.0).margin(1e-3));
  CHECK(h["max"].get<double>() == Approx(4.0).margin(1e-3));
  CHECK(h["bucket_limit"].back() == h["max"]);
  auto b = seen["histograms"]["binned"][0];
  CHECK(b["bucket"] == json::array({1, 5, 2, 0}));
  CHECK(b["bucket_limit"] == json::array({0, 1, 2, 3}));
}

TEST_CASE("NaN and infinite scalars are kept; double_precision keeps every bit") {
  TempDir dir;
  {
    TensorBoardWriter writer(dir.path() / "f32");
    writer.add_scalar("x", std::numeric_limits<double>::quiet_NaN(), 0);
    writer.add_scalar("x", std::numeric_limits<double>::infinity(), 1);
    writer.add_scalar("x", -std::numeric_limits<double>::infinity(), 2);
  }
  CHECK(read_events(dir.path() / "f32")["scalars"]["x"] ==
        json::parse(R"([[0,"nan"],[1,"inf"],[2,"-inf"]])"));
  {
    TensorBoardWriterOptions options;
    options.double_precision = true;
    TensorBoardWriter writer(dir.path() / "f64", options);
    writer.add_scalar("pi", 3.141592653589793, 1);
    writer.add_scalar("pi", std::numeric_limits<double>::quiet_NaN(), 2);
  }
  auto seen = read_events(dir.path() / "f64");
  CHECK(seen["scalar_tensors"]["pi"] == json::parse(R"([[1,3.141592653589793],[2,"nan"]])"));
}

TEST_CASE("the events file is named events.out.tfevents.<10-digit secs>.<host>.<pid>.<n>") {
  TempDir dir;
  TensorBoardWriter first(dir.path() / "a");
  TensorBoardWriter second(dir.path() / "b");
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  std::regex pattern(fmt::format(
      R"(events\.out\.tfevents\.(\d{{10}})\.{}\.{}\.(\d+))",
      std::regex_replace(host, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)"), ::getpid()));
  std::smatch a, b;
  std::string name_a = first.file_path().filename().string(),
              name_b = second.file_path().filename().string();
  REQUIRE(std::regex_match(name_a, a, pattern));
  REQUIRE(std::regex_match(name_b, b, pattern));
  CHECK(std::stoll(a[1]) <= std::time(nullptr));
  CHECK(std::stoll(a[1]) > std::time(nullptr) - 60);
  CHECK(std::stoi(b[2]) > std::stoi(a[2]));  // the per-process counter makes names unique
  CHECK(first.file_path().parent_path() == dir.path() / "a");
}

TEST_CASE("records reach the file every flush_secs without an explicit flush") {
  TempDir dir;
  TensorBoardWriterOptions options;
  options.flush_secs = 0.2;
  TensorBoardWriter writer(dir.path(), options);
  const auto initial_size = std::filesystem::file_size(writer.file_path());
  writer.add_scalar("loss", 1.5, 1);
  CHECK(std::filesystem::file_size(writer.file_path()) ==
        initial_size);  // buffered, no write per record
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  auto after = read_events(dir.path());
  CHECK(after["scalars"]["loss"] == json::parse("[[1,1.5]]"));
}

TEST_CASE("a process killed with SIGKILL leaves a file TensorBoard reads up to the last flush") {
  TempDir dir;
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    TensorBoardWriter writer(dir.path());
    for (int i = 0; i < 100; ++i) writer.add_scalar("loss", i, i);
    writer.flush();
    for (int i = 100; i < 150; ++i) writer.add_scalar("loss", i, i);
    ::kill(::getpid(), SIGKILL);
    ::_exit(1);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  auto seen = read_events(dir.path());
  auto loss = seen["scalars"]["loss"];
  REQUIRE(loss.size() == 100);
  CHECK(loss.back() == json::parse("[99, 99.0]"));
}

TEST_CASE("a full disk is reported once; the file keeps whole records only") {
  TempDir dir;
  // The child runs with a 100 KiB file size limit (write fails with EFBIG: the same path as
  // ENOSPC). It reports through its exit code: 0 = exactly one TrackerError, later calls dropped,
  // error() set.
  const int exit_code = accel::test::exit_code_with_file_size_limit(100 * 1024, [&] {
    int code = 0;
    try {
      TensorBoardWriterOptions options;
      options.buffer_bytes = 8192;
      TensorBoardWriter writer(dir.path(), options);
      int errors = 0;
      for (int i = 0; i < 20000; ++i) {
        try {
          writer.add_scalar("loss", i, i);
        } catch (const accel::TrackerError&) {
          ++errors;
        }
      }
      try {
        writer.flush();
        writer.close();
      } catch (const accel::TrackerError&) {
        ++errors;
      }
      if (errors != 1) code = 10 + std::min(errors, 9);
      if (!writer.error() || writer.error()->find("tfevents") == std::string::npos) code = 3;
    } catch (...) {
      code = 4;
    }
    return code;
  });
  CHECK(exit_code == 0);
  auto file = accel::test::only_events_file(dir.path());
  auto records = accel::test::parse_records_strictly(file);
  CHECK(std::filesystem::file_size(file) <= 100 * 1024);
  auto seen = read_events(dir.path());
  auto loss = seen["scalars"]["loss"];
  CHECK(seen["records"] == records.size());
  REQUIRE(loss.size() > 100);
  for (std::size_t i = 0; i < loss.size(); ++i) CHECK(loss[i][0] == i);  // a gap-free prefix
}

TEST_CASE("bad input throws InvalidValue naming the problem and writes nothing for it") {
  TempDir dir;
  TensorBoardWriter writer(dir.path());
  auto throws_with = [](auto&& call, const std::string& text) {
    try {
      call();
      FAIL("expected accel::InvalidValue containing: " << text);
    } catch (const accel::InvalidValue& e) {
      CHECK_THAT(e.what(), Catch::Contains(text));
    }
  };
  throws_with([&] { writer.add_image("empty", Image{0, 4, 3, {}}, 0); }, "0x4x3");
  throws_with(
      [&] {
        writer.add_image("two", Image{2, 2, 2, std::vector<uint8_t>(8)}, 0);
      },
      "2 channels");
  throws_with(
      [&] {
        writer.add_image("short", Image{2, 2, 3, std::vector<uint8_t>(5)}, 0);
      },
      "2x2x3");
  throws_with([&] { writer.add_histogram("h", Histogram::from_samples({}), 0); }, "no samples");
  throws_with(
      [&] {
        writer.add_histogram("h", Histogram::from_samples({1.0, NAN}), 0);
      },
      "non-finite");
  throws_with([&] { writer.add_scalar("///", 1.0, 0); }, "///");
  throws_with([&] { writer.add_hparams(json::array({1, 2})); }, "JSON object");
  throws_with(
      [&] {
        writer.add_hparams({{"name", std::string("\xff\xfe")}});
      },
      "'name' is not valid UTF-8");
  writer.add_scalar("loss rate (%)", 1.0, 0);  // cleaned like SummaryWriter does
  writer.add_scalar("/leading/slash", 2.0, 0);
  writer.add_scalar("ünïcode", 3.0, 0);
  writer.close();
  auto seen = read_events(dir.path());
  CHECK(seen["images"].empty());
  CHECK(seen["histograms"].empty());
  CHECK(seen["scalars"].size() == 3);
  CHECK(seen["scalars"].contains("loss_rate____"));
  CHECK(seen["scalars"].contains("leading/slash"));
  CHECK(seen["scalars"].contains("ünïcode"));
}

TEST_CASE("an unwritable log directory fails at construction with the path in the message") {
  TempDir dir;
  auto file = dir.path() / "not-a-directory";
  std::ofstream(file) << "x";
  try {
    TensorBoardWriter writer(file / "run");
    FAIL("expected accel::TrackerError");
  } catch (const accel::TrackerError& e) {
    CHECK_THAT(e.what(),
               Catch::Contains((file / "run").string()) && Catch::Contains("logging_dir"));
  }
  TensorBoardWriterOptions options;
  options.flush_secs = 0;
  CHECK_THROWS_AS(TensorBoardWriter(dir.path() / "ok", options), accel::InvalidValue);
}

TEST_CASE("add_hparams writes the experiment and session start the hparams plugin parses") {
  TempDir dir;
  {
    TensorBoardWriter writer(dir.path());
    std::vector<std::string> metrics = {"loss"};
    writer.add_hparams({{"lr", 0.001},
                        {"model", {{"layers", 3}, {"act", "relu"}}},
                        {"amp", true},
                        {"skip", nullptr},
                        {"sizes", {1, 2}}},
                       metrics);
    writer.add_scalar("loss", 0.5, 1);
    writer.add_hparams_session_end(accel::RunStatus::failed);
  }
  auto hp = read_events(dir.path())["hparams"];
  auto start = hp["_hparams_/session_start_info"]["session_start_info"];
  // MessageToDict shows google.protobuf.Value as the plain JSON value it holds.
  CHECK(start["hparams"]["lr"] == 0.001);
  CHECK(start["hparams"]["model/layers"] == 3.0);
  CHECK(start["hparams"]["model/act"] == "relu");
  CHECK(start["hparams"]["amp"] == true);
  CHECK(start["hparams"]["sizes"] == "[1,2]");
  CHECK_FALSE(start["hparams"].contains("skip"));
  auto experiment = hp["_hparams_/experiment"]["experiment"];
  CHECK(experiment["metric_infos"] == json::parse(R"([{"name":{"tag":"loss"}}])"));
  CHECK(experiment["hparam_infos"].size() == 5);
  CHECK(hp["_hparams_/session_end_info"]["session_end_info"]["status"] == "STATUS_FAILURE");
}

TEST_CASE("concurrent writers and the flush thread never interleave records") {
  TempDir dir;
  TensorBoardWriterOptions options;
  options.flush_secs = 0.01;  // the background flush runs all the time
  options.buffer_bytes = 4096;
  {
    TensorBoardWriter writer(dir.path(), options);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&writer, t] {
        for (int64_t step = 0; step < 2000; ++step) {
          writer.add_scalar(fmt::format("thread_{}", t), static_cast<double>(step), step);
          if (step % 500 == 0) writer.add_text(fmt::format("text_{}", t), "x", step);
          if (step % 700 == 0) writer.flush();
        }
      });
    }
    for (auto& thread : threads) thread.join();
  }
  auto seen = read_events(dir.path());
  CHECK(seen["records"] == 1 + 4 * (2000 + 4));
  for (int t = 0; t < 4; ++t) {
    auto series = seen["scalars"][fmt::format("thread_{}", t)];
    REQUIRE(series.size() == 2000);
    for (int64_t step = 0; step < 2000; ++step) CHECK(series[step] == json::array({step, step}));
  }
}
