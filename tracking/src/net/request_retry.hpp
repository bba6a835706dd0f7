#pragma once
// Internal: one REST request, repeated under a RetryPolicy while it fails in a way that waiting can
// fix (a transient transport error such as a refused connection, or a transient HTTP status). The
// REST trackers (MLflow, W&B) share this loop; each words its own messages and decides what the
// final answer means (credentials refused, request rejected, ...).
// Thread-safety: the function keeps no state; it calls `attempt` and `wait_before_retry` on the
// caller's thread and sleeps there between attempts.
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "net/http_client.hpp"

namespace accel::detail {

struct RetriedRequest {
  // Sends the request once. Throws HttpTransportError when no response came back.
  std::function<HttpResponse()> attempt;
  // Whether an HTTP status is worth repeating (e.g. RetryPolicy::is_transient_status).
  std::function<bool(long status)> transient_status;
  // The wait before retry number `retry` (1 = the first), given the server's Retry-After.
  std::function<std::chrono::milliseconds(int retry,
                                          std::optional<std::chrono::milliseconds> retry_after)>
      wait_before_retry;
  int max_attempts = 1;  // the first attempt included; at least 1
};

// How the loop ended.
struct RetryOutcome {
  // The response that ended it: any status that is not transient (2xx, 4xx, ...). Empty when every
  // attempt failed transiently.
  std::optional<HttpResponse> response;
  // Without a response: what the last attempt met ("HTTP 503: <body>", the transport error).
  std::string last_problem;
  int attempts = 0;  // attempts made
};

// Runs the loop. An HttpTransportError that is not transient (a certificate that does not verify,
// a malformed URL) is rethrown at once: waiting cannot fix it.
RetryOutcome send_with_retries(const RetriedRequest& request);

}  // namespace accel::detail
