// Reading mpirun's reports: run the real mpirun on failing commands and check what the filter
// keeps, holds back and understands.
#include "run/mpirun_messages.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>

#include "launch_harness.hpp"
#include "run/output_lines.hpp"

using namespace accel::launch;
using namespace accel::launch::testing;

namespace {

std::vector<std::string> mpirun_args(int np, std::vector<std::string> command) {
  std::vector<std::string> args = {ACCEL_MPIEXEC, "-np", std::to_string(np)};
  if (geteuid() == 0) args.push_back("--allow-run-as-root");
  args.insert(args.end(), command.begin(), command.end());
  return args;
}

}  // namespace

TEST_CASE("mpirun's abort report for a non-zero exit is held back and understood", "[launcher]") {
  auto run = run_command(mpirun_args(
      2, {"/bin/sh", "-c", "echo visible >&2; [ $OMPI_COMM_WORLD_RANK = 1 ] && exit 4; sleep 5"}));
  REQUIRE(run.exit_status != 0);
  INFO(run.err);
  REQUIRE(run.err.find("Primary job") != std::string::npos);  // the real text we filter
  MpirunMessageFilter filter(false);
  std::string shown;
  for (std::size_t i = 0; i < run.err.size(); i += 7)
    shown += filter.feed(std::string_view(run.err).substr(i, 7));
  shown += filter.finish();
  CHECK(shown.find("Primary job") == std::string::npos);
  CHECK(shown.find("visible") != std::string::npos);
  CHECK_FALSE(filter.not_enough_slots());
  // mpirun adds the block naming the first failing process only when it wins the race against
  // its own teardown; when it is there, it must be understood.
  if (run.err.find("Process name:") != std::string::npos) {
    REQUIRE(filter.failure().rank);
    CHECK(*filter.failure().rank == 1);
    CHECK(filter.failure().exit_code == 4);
    CHECK(shown.find("Process name:") == std::string::npos);
  }

  MpirunMessageFilter keep_all(true);
  CHECK(keep_all.feed(run.err).find("Primary job") != std::string::npos);
}

TEST_CASE("mpirun's report of a rank killed by a signal names rank, host and signal",
          "[launcher]") {
  auto run = run_command(
      mpirun_args(2, {"/bin/sh", "-c", "[ $OMPI_COMM_WORLD_RANK = 1 ] && kill -9 $$; sleep 5"}));
  MpirunMessageFilter filter(false);
  const std::string shown = filter.feed(run.err) + filter.finish();
  INFO(run.err);
  // As above, mpirun prints this block only when it wins the race against its own teardown.
  if (run.err.find("exited on signal") != std::string::npos) {
    REQUIRE(filter.failure().rank);
    CHECK(*filter.failure().rank == 1);
    CHECK(filter.failure().signal == 9);
    CHECK(filter.failure().host == host_name());
    CHECK(shown.find("exited on signal") == std::string::npos);
  }
  CHECK(shown.find("Primary job") == std::string::npos);
}

TEST_CASE("mpirun's not-enough-slots report is recognised", "[launcher]") {
  auto run = run_command(mpirun_args(512, {"/bin/true"}),
                         {.env = {{"OMPI_MCA_rmaps_base_oversubscribe", std::nullopt}}});
  REQUIRE(run.exit_status != 0);
  MpirunMessageFilter filter(false);
  const std::string shown = filter.feed(run.err) + filter.finish();
  CHECK(filter.not_enough_slots());
  CHECK(shown.find("not enough slots") == std::string::npos);
}

TEST_CASE(
    "LineSplitter ends lines at newline and carriage return; LastLines keeps the tail, not redraws",
    "[launcher]") {
  LineSplitter splitter;
  CHECK(splitter.feed("ab").empty());
  CHECK(splitter.feed("c\nprogress 1\rprogress 2\rdone\npartial") ==
        std::vector<std::string>{"abc\n", "progress 1\r", "progress 2\r", "done\n"});
  CHECK(splitter.take_rest() == "partial");
  // "\r\n" ends one line; a '\r' at the end of what arrived waits for the next byte.
  CHECK(splitter.feed("dos\r").empty());
  CHECK(splitter.feed("\nbar\r") == std::vector<std::string>{"dos\r\n"});
  CHECK(splitter.feed("bar 2\r\n") == std::vector<std::string>{"bar\r", "bar 2\r\n"});
  CHECK(is_redraw("bar\r"));
  CHECK_FALSE(is_redraw("dos\r\n"));
  LastLines last(2);
  last.add("one\n");
  last.add("\n");
  last.add("two\r");  // a progress bar's redraw: not kept
  last.add("three\r\n");
  CHECK(last.lines() == std::vector<std::string>{"one", "three"});
  // Open MPI's backtrace frames after a crash do not push the error out.
  LastLines crash(2);
  crash.add("  what():  cannot create directories\n");
  crash.add("[vm:02922] [ 3] /lib/x86_64-linux-gnu/libc.so.6(abort+0xd3)[0x7fa28dc44472]\n");
  crash.add("[vm:02922] [12] /build/libaccel_distributed.so(_ZN5accel+0x371)[0x7fa2bb6952a1]\n");
  crash.add("[vm:02922] *** End of error message ***\n");
  CHECK(crash.lines() == std::vector<std::string>{"  what():  cannot create directories",
                                                  "[vm:02922] *** End of error message ***"});
}

TEST_CASE("a program's own dashed lines are printed at once, not held as a report", "[launcher]") {
  MpirunMessageFilter filter(false);
  const std::string table = "------------------------------\nepoch | loss\n";
  CHECK(filter.feed(table) == table);
}
