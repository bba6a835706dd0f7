// Journal: every Value kind survives a round trip; a torn or corrupted tail loses only the damaged
// record; files are private (0600).
#include "journal/journal.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <limits>

#include "file_size_limit.hpp"
#include "tracking_test_support.hpp"

using namespace accel;
using accel::test::TempDir;

namespace {

JournalRecord log_record(int64_t step, Values values) {
  JournalRecord r;
  r.kind = RecordKind::log;
  r.step = step;
  r.values = std::move(values);
  r.time =
      std::chrono::system_clock::time_point(std::chrono::milliseconds(1'764'000'000'000 + step));
  return r;
}

Values every_kind() {
  std::vector<uint8_t> pixels(2 * 3 * 3);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 13);
  Table table{{"epoch", "name"}, {{1, "a"}, {2, "ü"}}};
  return Values{{"int", int64_t{-7}},
                {"float", 0.125},
                {"big", std::numeric_limits<int64_t>::max()},
                {"text", "héllo, wörld"},
                {"image", Image::from_uint8(pixels, 2, 3, 3)},
                {"samples", Histogram::from_samples({1.0, 2.5, -3.0})},
                {"bins", Histogram::from_bins({0.0, 1.0, 2.0}, {3.0, 4.0, 5.0})},
                {"table", table},
                {"group", ScalarGroup{{{"train", 0.3}, {"val", 0.4}}}}};
}

}  // namespace

TEST_CASE("journal round-trips every value kind, config and finish records in order") {
  TempDir dir;
  auto path = dir.path() / "t.journal";
  JournalRecord config;
  config.kind = RecordKind::config;
  config.config = {{"lr", 0.001}, {"model", {{"hidden", 128}}}};
  JournalRecord finish;
  finish.kind = RecordKind::finish;
  finish.status = RunStatus::killed;
  {
    JournalWriter writer(path);
    writer.append(config);
    writer.append(log_record(3, every_kind()));
    JournalRecord no_step = log_record(0, {{"x", 1}});
    no_step.step.reset();
    writer.append(no_step);
    writer.append(finish);
    writer.sync();
  }
  auto records = read_journal(path);
  REQUIRE(records.size() == 4);
  CHECK(records[0] == config);
  CHECK(records[1] == log_record(3, every_kind()));
  CHECK(records[1].values.find("int")->is_integer());
  CHECK_FALSE(records[1].values.find("float")->is_integer());
  CHECK_FALSE(records[2].step.has_value());
  CHECK(records[3].kind == RecordKind::finish);
  CHECK(records[3].status == RunStatus::killed);
  // Insertion order of keys survives.
  std::vector<std::string> keys;
  for (const auto& [k, v] : records[1].values) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"int", "float", "big", "text", "image", "samples", "bins",
                                         "table", "group"});
}

TEST_CASE("journal keeps NaN and infinities") {
  TempDir dir;
  auto path = dir.path() / "nan.journal";
  {
    JournalWriter writer(path);
    writer.append(log_record(1, {{"nan", std::nan("")},
                                 {"inf", std::numeric_limits<double>::infinity()},
                                 {"ninf", -std::numeric_limits<double>::infinity()}}));
  }
  auto records = read_journal(path);
  REQUIRE(records.size() == 1);
  CHECK(std::isnan(records[0].values.find("nan")->as_double()));
  CHECK(records[0].values.find("inf")->as_double() == std::numeric_limits<double>::infinity());
  CHECK(records[0].values.find("ninf")->as_double() == -std::numeric_limits<double>::infinity());
}

TEST_CASE("journal file is created with mode 0600") {
  TempDir dir;
  auto path = dir.path() / "sub" / "private.journal";
  JournalWriter writer(path);
  writer.append(log_record(1, {{"x", 1}}));
  writer.sync();
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("a torn last record at any byte offset leaves every earlier record readable") {
  TempDir dir;
  auto path = dir.path() / "torn.journal";
  std::vector<JournalRecord> written;
  for (int64_t i = 0; i < 5; ++i)
    written.push_back(log_record(i, {{"loss", 1.0 / double(i + 1)}, {"i", i}}));
  uint64_t before_last = 0;
  {
    JournalWriter writer(path);
    for (std::size_t i = 0; i + 1 < written.size(); ++i) writer.append(written[i]);
    writer.flush();
    before_last = writer.size();
    writer.append(written.back());
    writer.sync();
  }
  const std::string full = test::read_file(path);
  REQUIRE(full.size() > before_last);
  for (std::size_t cut = before_last; cut < full.size(); ++cut) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << full.substr(0, cut);
    JournalReader reader(path);
    std::vector<JournalRecord> got;
    while (auto r = reader.next()) got.push_back(std::move(*r));
    INFO("file cut at byte " << cut << " of " << full.size());
    REQUIRE(got.size() == written.size() - 1);
    CHECK(got.back() == written[written.size() - 2]);
    CHECK(reader.offset() == before_last);
    CHECK(reader.stopped_at_damage() == (cut > before_last));
  }
  // Appending after a clean cut continues the journal.
  std::ofstream(path, std::ios::binary | std::ios::trunc) << full;
  CHECK(read_journal(path).size() == written.size());
}

TEST_CASE("a flipped byte in a record stops the reader at that record") {
  TempDir dir;
  auto path = dir.path() / "flip.journal";
  {
    JournalWriter writer(path);
    for (int64_t i = 0; i < 3; ++i) writer.append(log_record(i, {{"x", i}}));
  }
  std::string bytes = test::read_file(path);
  std::size_t record_size = bytes.size() / 3;
  bytes[record_size + 12] ^= 0x5A;  // inside the second record's payload
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  JournalReader reader(path);
  auto first = reader.next();
  REQUIRE(first);
  CHECK(*first->step == 0);
  CHECK_FALSE(reader.next());
  CHECK(reader.stopped_at_damage());
}

TEST_CASE("reading from an offset and a missing file") {
  TempDir dir;
  auto path = dir.path() / "offset.journal";
  uint64_t after_first = 0;
  {
    JournalWriter writer(path);
    writer.append(log_record(0, {{"x", 0}}));
    writer.flush();
    after_first = writer.size();
    writer.append(log_record(1, {{"x", 1}}));
  }
  JournalReader reader(path, after_first);
  auto r = reader.next();
  REQUIRE(r);
  CHECK(*r->step == 1);
  CHECK_FALSE(reader.next());
  CHECK_FALSE(reader.stopped_at_damage());
  CHECK(read_journal(dir.path() / "missing.journal").empty());
}

TEST_CASE("clear empties the journal for reuse") {
  TempDir dir;
  auto path = dir.path() / "clear.journal";
  JournalWriter writer(path);
  writer.append(log_record(0, {{"x", 0}}));
  writer.flush();
  writer.clear();
  CHECK(writer.size() == kJournalMagic.size());  // only the magic is left
  writer.append(log_record(7, {{"x", 7}}));
  writer.flush();
  auto records = read_journal(path);
  REQUIRE(records.size() == 1);
  CHECK(*records[0].step == 7);
}

TEST_CASE("decoding garbage is a typed error") {
  std::vector<uint8_t> garbage{0xff, 0x00, 0x13};
  CHECK_THROWS_AS(decode_journal_record(garbage), TrackerError);
}

TEST_CASE(
    "a write the disk refuses is undone: the journal ends in a whole record and keeps its "
    "magic") {
  // RLIMIT_FSIZE makes write() fail like a full disk (EFBIG instead of ENOSPC); in a child process,
  // so the limit does not reach the test runner.
  TempDir dir;
  const auto path = dir.path() / "limited.journal";
  const int code = test::exit_code_with_file_size_limit(4096, [&] {
    int failures = 0;
    {
      JournalWriter writer(path);
      for (int64_t i = 0; i < 400; ++i) {
        writer.append(log_record(i, {{"loss", 1.0 / double(i + 1)}, {"i", i}}));
        try {
          writer.flush();
        } catch (const TrackerError& e) {
          if (std::string(e.what()).find(path.string()) != std::string::npos) ++failures;
        }
      }
    }
    return failures > 0 ? 0 : 1;
  });
  CHECK(code == 0);  // the writes failed, with the file named
  CHECK(std::filesystem::file_size(path) <= 4096);
  JournalReader reader(path);
  int64_t expected = 0;
  while (auto record = reader.next()) CHECK(*record->step == expected++);
  CHECK_FALSE(reader.stopped_at_damage());  // cut back to the last whole record
  CHECK(expected > 10);
}

TEST_CASE(
    "a journal whose very first write failed still starts with its magic once the disk has "
    "room again") {
  TempDir dir;
  const auto path = dir.path() / "first.journal";
  // 20 bytes: room for the magic and part of the first record.
  const int code = test::exit_code_with_file_size_limit(20, [&] {
    bool failed = false;
    JournalWriter writer(path);
    writer.append(log_record(0, {{"i", int64_t{0}}}));
    try {
      writer.flush();
    } catch (const TrackerError&) {
      failed = true;
    }
    test::set_file_size_limit(RLIM_INFINITY);  // the disk has room again
    writer.append(log_record(1, {{"i", int64_t{1}}}));
    writer.flush();
    return failed ? 0 : 1;
  });
  CHECK(code == 0);
  auto records = read_journal(path);
  REQUIRE(records.size() == 1);
  CHECK(*records[0].step == 1);
}
