#pragma once
// Watchdog: enforces an MpiGroup's collective timeout and explains who did not arrive.
//
// Its thread wakes every 20 ms: it answers peers' "how far are you?" queries on the control
// communicator (with this rank's OperationProgress) and, when the running operation has exceeded the
// timeout, asks every peer how far it got (answering others meanwhile: they may be timing out too),
// prints the report to stderr and calls MPI_Abort. The communication thread never polls: it runs
// blocking collectives, and the watchdog is what notices that one of them hangs.
//
// Who calls it: MpiGroup, which starts it after the communicators exist and stops it (joining the
// thread) before freeing them.
// Thread-safety: start and stop from the group's owner, once each; everything else runs on the
// watchdog's own thread. Throws nothing itself; on timeout the process ends (MPI_Abort, then abort).
#include <mpi.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "comm/mpi/operation_progress.hpp"

namespace accel::detail {

class Watchdog {
 public:
  explicit Watchdog(const OperationProgress& progress) : progress_(progress) {}
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Starts the thread. control: a communicator only the watchdogs of this group's ranks use.
  void start(MPI_Comm control, int rank, int size, std::chrono::milliseconds timeout);
  // Stops and joins the thread (cancelling its pending query receive). Safe when never started.
  void stop();

 private:
  void loop();
  void post_query_receive();
  // Answers every progress query that has arrived. Watchdog thread only.
  void answer_queries();
  [[noreturn]] void report_timeout_and_abort();

  // What the peers answered to this rank's query; answered[peer] == 0: no answer within the grace period.
  struct PeerReplies {
    std::vector<ProgressReport> replies;
    std::vector<char> answered;
  };
  // Asks every peer how far it got and collects the answers for `grace` (answering others meanwhile).
  // Receives still pending at the deadline write into peers->replies later: the caller keeps it (and
  // `mine`, the sends' buffer) alive until the process ends.
  void ask_peers(const ProgressReport& mine, std::chrono::milliseconds grace, PeerReplies* peers);

  const OperationProgress& progress_;
  MPI_Comm control_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  std::chrono::milliseconds timeout_{0};

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::uint64_t query_payload_ = 0;
  MPI_Request query_request_ = MPI_REQUEST_NULL;
  std::thread thread_;
};

}  // namespace accel::detail
