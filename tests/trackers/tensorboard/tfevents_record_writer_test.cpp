// TfeventsRecordWriter: framing on disk, buffering/flush visibility, and the whole-record invariant
// when the file system refuses a write (file size limit, the same path as a full disk).
#include "trackers/tensorboard/tfevents_record_writer.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "accel/tracking/errors.hpp"
#include "file_size_limit.hpp"
#include "tensorboard_test_support.hpp"

using accel::TfeventsRecordWriter;
using accel::test::parse_records_strictly;
using accel::test::TempDir;

namespace {
std::span<const std::byte> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
}  // namespace

TEST_CASE("records are framed as length, masked crc, data, masked crc") {
  TempDir dir;
  auto path = dir.path() / "events.out.tfevents.test";
  {
    TfeventsRecordWriter writer(path);
    writer.append(bytes_of("hello"));
    writer.append(bytes_of(""));
    writer.append(
        bytes_of(std::string(100000, 'x')));  // larger than nothing special, still one record
    writer.close();
    CHECK(writer.bytes_written() == (12 + 5 + 4) + (12 + 0 + 4) + (12 + 100000 + 4));
  }
  auto records = parse_records_strictly(path);
  REQUIRE(records.size() == 3);
  CHECK(records[0] == "hello");
  CHECK(records[1].empty());
  CHECK(records[2] == std::string(100000, 'x'));
  CHECK(std::filesystem::file_size(path) == 12 + 5 + 4 + 12 + 4 + 12 + 100000 + 4);
}

TEST_CASE("records stay in memory until flush, then the file holds whole records") {
  TempDir dir;
  auto path = dir.path() / "events.out.tfevents.buffered";
  TfeventsRecordWriter writer(path, 1 << 20);
  for (int i = 0; i < 10; ++i) writer.append(bytes_of("record " + std::to_string(i)));
  CHECK(std::filesystem::file_size(path) == 0);
  writer.flush();
  CHECK(parse_records_strictly(path).size() == 10);
  CHECK(writer.bytes_appended() == writer.bytes_written());
}

TEST_CASE("an existing file is not overwritten; the error names the path") {
  TempDir dir;
  auto path = dir.path() / "events.out.tfevents.exists";
  { TfeventsRecordWriter first(path); }
  try {
    TfeventsRecordWriter second(path);
    FAIL("expected accel::TrackerError");
  } catch (const accel::TrackerError& e) {
    CHECK_THAT(e.what(), Catch::Contains(path.string()) && Catch::Contains("exists"));
  }
}

TEST_CASE("a refused write leaves only whole records and fails every later call") {
  TempDir dir;
  auto path = dir.path() / "events.out.tfevents.limited";
  // The child gets a 64 KiB file size limit: write(2) then fails with EFBIG, the same code path as
  // ENOSPC. Exit code 0 means every check inside the child passed.
  const int exit_code = accel::test::exit_code_with_file_size_limit(64 * 1024, [&] {
    int code = 0;
    try {
      TfeventsRecordWriter writer(path, 10000);
      int errors = 0;
      std::string payload(1000, 'p');
      for (int i = 0; i < 200 && errors == 0; ++i) {
        try {
          writer.append(bytes_of(payload));
        } catch (const accel::TrackerError&) {
          ++errors;
        }
      }
      if (errors != 1 || !writer.failed()) code = 2;
      try {
        writer.append(bytes_of(payload));
        code = 3;  // must not accept records after a failure
      } catch (const accel::TrackerError& e) {
        if (std::string(e.what()).find(path.string()) == std::string::npos) code = 4;
      }
    } catch (...) {
      code = 5;
    }
    return code;
  });
  CHECK(exit_code == 0);
  auto records = parse_records_strictly(path);  // whole records only, every CRC valid
  CHECK(records.size() > 10);
  CHECK(std::filesystem::file_size(path) <= 64 * 1024);
  CHECK(std::filesystem::file_size(path) == records.size() * (12 + 1000 + 4));
}
