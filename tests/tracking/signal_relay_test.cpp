// SIGTERM/SIGINT during training: the hub flushes and finishes every tracker with
// RunStatus::killed, then the process ends by the same signal. Each case runs in a forked child
// process.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "accel/tracking/hub.hpp"
#include "journal/journal.hpp"
#include "tracking_test_support.hpp"

using namespace accel;
using test::DeadTracker;
using test::TempDir;

namespace {

// Writes "<status> <number of logs>" to a file when finished; each log takes 1 ms so that records
// are still queued when the signal arrives.
class StatusFileTracker final : public GeneralTracker {
 public:
  explicit StatusFileTracker(std::filesystem::path path) : path_(std::move(path)) {}
  std::string name() const override { return "status_file"; }
  bool requires_logging_directory() const override { return false; }
  void store_init_configuration(const nlohmann::json&) override {}
  void log(const Values&, std::optional<int64_t>) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ++logs_;
  }
  void finish(RunStatus status) override {
    std::ofstream(path_) << to_string(status) << " " << logs_;
  }

 private:
  std::filesystem::path path_;
  int logs_ = 0;
};

// Runs body in a child process and returns its wait status (the child is killed after 30 s).
template <class F>
int run_in_child(F body) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // A plain program: Catch's own fatal-signal handlers are not part of what is tested.
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGINT, SIG_DFL);
    body();
    ::_exit(0);
  }
  int status = 0;
  for (int i = 0; i < 3000; ++i) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  FAIL("child did not end within 30 s");
  return status;
}

void log_then_signal(const std::filesystem::path& dir, int signo) {
  TrackerHubOptions o;
  o.project_dir = dir;
  TrackerHub hub(o);
  hub.init_trackers("proj", {}, {"csv", std::make_shared<StatusFileTracker>(dir / "status.txt")});
  for (int64_t i = 0; i < 200; ++i) hub.log({{"i", i}}, i);
  ::kill(::getpid(), signo);
  std::this_thread::sleep_for(std::chrono::seconds(20));
  ::_exit(3);  // the signal should have ended the process
}

}  // namespace

TEST_CASE(
    "SIGTERM with a backend that is down: the process ends at once and its journal holds "
    "every record, ended as killed") {
  TempDir dir;
  const auto begin = std::chrono::steady_clock::now();
  int status = run_in_child([&] {
    TrackerHubOptions o;
    o.project_dir = dir.path();
    o.end_training_timeout = std::chrono::seconds(30);  // not waited for: the backend is down
    o.queue_bytes = 4096;                               // most records overflow to the journal
    TrackerHub hub(o);
    hub.init_trackers("proj", {{"lr", 1}}, {std::make_shared<DeadTracker>()});
    for (int64_t i = 0; i < 1000; ++i) hub.log({{"i", i}}, i);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the worker meets the outage
    ::kill(::getpid(), SIGTERM);
    std::this_thread::sleep_for(std::chrono::seconds(20));
    ::_exit(3);
  });
  const auto took = std::chrono::steady_clock::now() - begin;
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGTERM);
  CHECK(took < std::chrono::seconds(5));
  std::vector<std::filesystem::path> journals(
      std::filesystem::directory_iterator(dir.path() / ".accel_journal"), {});
  REQUIRE(journals.size() == 1);
  const JournalContents contents = read_journal_contents(journals[0]);
  CHECK(contents.pending_logs == 1000);
  REQUIRE(contents.pending.size() == 1002);
  CHECK(contents.pending.front().kind == RecordKind::config);
  CHECK(contents.pending.back().kind == RecordKind::finish);
  CHECK(contents.pending.back().status == RunStatus::killed);
}

TEST_CASE(
    "SIGTERM: trackers are flushed and finished as killed, then the process dies by SIGTERM") {
  TempDir dir;
  int status = run_in_child([&] { log_then_signal(dir.path(), SIGTERM); });
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGTERM);
  CHECK(test::read_file(dir.path() / "status.txt") == "killed 200");
  auto csv = test::read_file(dir.path() / "proj" / "version_0" / "metrics.csv");
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 201);
}

TEST_CASE("SIGINT: same, and the process dies by SIGINT") {
  TempDir dir;
  int status = run_in_child([&] { log_then_signal(dir.path(), SIGINT); });
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGINT);
  CHECK(test::read_file(dir.path() / "status.txt") == "killed 200");
}

TEST_CASE(
    "a program that ignores SIGTERM keeps ignoring it; handle_signals=false installs nothing") {
  TempDir dir;
  int status = run_in_child([&] {
    ::signal(SIGTERM, SIG_IGN);
    TrackerHubOptions o;
    o.project_dir = dir.path();
    TrackerHub hub(o);
    hub.init_trackers("proj", {}, {std::make_shared<StatusFileTracker>(dir.path() / "status.txt")});
    hub.log({{"x", 1}}, 0);
    ::kill(::getpid(), SIGTERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    hub.end_training();
    struct sigaction current {};
    ::sigaction(SIGINT, nullptr, &current);
    ::_exit(current.sa_handler == SIG_DFL ? 0 : 4);  // restored after end_training
  });
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(test::read_file(dir.path() / "status.txt") == "finished 1");

  status = run_in_child([&] {
    TrackerHubOptions o;
    o.project_dir = dir.path();
    o.handle_signals = false;
    TrackerHub hub(o);
    hub.init_trackers("proj", {}, {"csv"});
    struct sigaction current {};
    ::sigaction(SIGTERM, nullptr, &current);
    ::_exit(current.sa_handler == SIG_DFL ? 0 : 5);
  });
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
