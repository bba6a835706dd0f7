// Watchdog (see watchdog.hpp).
#include "comm/mpi/watchdog.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "accel/state.hpp"

namespace accel::detail {
namespace {

using Clock = OperationProgress::Clock;
constexpr int kQueryTag = 0x4143;  // "how far are you?" (payload: the asker's sequence number)
constexpr int kReplyTag = 0x4144;  // ProgressReport
constexpr std::chrono::milliseconds kWatchdogPeriod{20};

// The report's two lists: peers that had not arrived (or called something else), and the others.
struct PeerLines {
  std::string not_arrived;
  std::string others;
};

PeerLines describe_peers(const ProgressReport& mine, const std::vector<ProgressReport>& replies,
                         const std::vector<char>& answered, int rank,
                         std::chrono::milliseconds grace) {
  PeerLines lines;
  std::string& not_arrived = lines.not_arrived;
  std::string& other_lines = lines.others;
  const int size = static_cast<int>(replies.size());
  for (int peer = 0; peer < size; ++peer) {
    if (peer == rank) continue;
    if (answered[peer] == 0) {
      not_arrived +=
          fmt::format("\n    rank {}: did not answer within {} ms (hung outside MPI, or dead)",
                      peer, grace.count());
      continue;
    }
    const ProgressReport& p = replies[peer];
    const std::string peer_op(p.operation, strnlen(p.operation, sizeof(p.operation)));
    if (p.started < mine.started) {
      const bool idle = p.completed == p.started;
      not_arrived +=
          fmt::format("\n    rank {}: has not arrived; {} #{} {}", peer,
                      idle ? "idle since it completed" : "still running", p.started,
                      p.started == 0 ? std::string("(no operation yet)") : "'" + peer_op + "'");
    } else if (p.started == mine.started && peer_op != mine.operation) {
      not_arrived += fmt::format(
          "\n    rank {}: called a DIFFERENT operation as #{}: '{}' (collective calls do not "
          "match)",
          peer, p.started, peer_op);
    } else if (p.started == mine.started) {
      other_lines += fmt::format("\n    rank {}: arrived, waiting in #{} too", peer, p.started);
    } else {
      other_lines += fmt::format("\n    rank {}: is ahead, at #{} '{}'", peer, p.started, peer_op);
    }
  }
  return lines;
}

}  // namespace

void Watchdog::start(MPI_Comm control, int rank, int size, std::chrono::milliseconds timeout) {
  control_ = control;
  rank_ = rank;
  size_ = size;
  timeout_ = timeout;
  thread_ = std::thread([this] { loop(); });
}

void Watchdog::stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Watchdog::post_query_receive() {
  MPI_Irecv(&query_payload_, 1, MPI_UINT64_T, MPI_ANY_SOURCE, kQueryTag, control_, &query_request_);
}

void Watchdog::answer_queries() {
  for (;;) {
    int arrived = 0;
    MPI_Status status;
    MPI_Test(&query_request_, &arrived, &status);
    if (arrived == 0) return;
    ProgressReport report = progress_.snapshot();
    MPI_Send(&report, sizeof(report), MPI_BYTE, status.MPI_SOURCE, kReplyTag, control_);
    post_query_receive();
  }
}

void Watchdog::loop() {
  post_query_receive();
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (wake_.wait_for(lock, kWatchdogPeriod, [&] { return stop_; })) break;
    }
    answer_queries();
    if (progress_.running_longer_than(timeout_)) report_timeout_and_abort();
  }
  MPI_Cancel(&query_request_);
  MPI_Wait(&query_request_, MPI_STATUS_IGNORE);
}

void Watchdog::ask_peers(const ProgressReport& mine, std::chrono::milliseconds grace,
                         PeerReplies* peers) {
  std::vector<ProgressReport>& replies = peers->replies;
  std::vector<char>& answered = peers->answered;
  replies.assign(static_cast<std::size_t>(size_), ProgressReport{});
  answered.assign(static_cast<std::size_t>(size_), 0);
  std::vector<MPI_Request> receives(static_cast<std::size_t>(size_), MPI_REQUEST_NULL);
  std::vector<MPI_Request> sends(static_cast<std::size_t>(size_), MPI_REQUEST_NULL);
  for (int peer = 0; peer < size_; ++peer) {
    if (peer == rank_) continue;
    MPI_Irecv(&replies[peer], sizeof(ProgressReport), MPI_BYTE, peer, kReplyTag, control_,
              &receives[peer]);
    MPI_Isend(&mine.started, 1, MPI_UINT64_T, peer, kQueryTag, control_, &sends[peer]);
  }
  const auto deadline = Clock::now() + grace;
  int missing = size_ - 1;
  while (missing > 0 && Clock::now() < deadline) {
    answer_queries();
    for (int peer = 0; peer < size_; ++peer) {
      if (peer == rank_ || answered[peer] != 0) continue;
      int done = 0;
      MPI_Test(&receives[peer], &done, MPI_STATUS_IGNORE);
      if (done != 0) {
        answered[peer] = 1;
        --missing;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void Watchdog::report_timeout_and_abort() {
  const ProgressReport mine = progress_.snapshot();
  // Ask every peer, then collect answers for a bounded grace period (answering others meanwhile:
  // they may be timing out too).
  const auto grace =
      std::clamp(timeout_, std::chrono::milliseconds(1000), std::chrono::milliseconds(5000));
  PeerReplies peers;
  ask_peers(mine, grace, &peers);
  const PeerLines lines = describe_peers(mine, peers.replies, peers.answered, rank_, grace);
  const std::string message = fmt::format(
      "accel: collective timeout on {}: operation #{} '{}' did not complete within {} ms "
      "(ACCEL_COLLECTIVE_TIMEOUT).\n  peers that had not arrived:{}{}\n  Every rank must make "
      "the same "
      "collective calls in the same order. Aborting the job (MPI_Abort).\n",
      State::instance().describe(), mine.started, mine.operation, timeout_.count(),
      lines.not_arrived.empty()
          ? std::string("\n    (none: all peers are inside it; slow network?)")
          : lines.not_arrived,
      lines.others.empty() ? std::string() : "\n  others:" + lines.others);
  std::fputs(message.c_str(), stderr);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 3);
  std::abort();
}

}  // namespace accel::detail
