#include "net/request_retry.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

namespace accel::detail {

namespace {

constexpr std::size_t kProblemBodyChars = 200;  // of a response body quoted in a message

std::string describe_status(const HttpResponse& response) {
  if (response.body.empty()) return fmt::format("HTTP {}", response.status);
  return fmt::format("HTTP {}: {}", response.status,
                     response.body.substr(0, std::min(response.body.size(), kProblemBodyChars)));
}

}  // namespace

RetryOutcome send_with_retries(const RetriedRequest& request) {
  RetryOutcome outcome;
  const int max_attempts = std::max(request.max_attempts, 1);
  for (int attempt = 1;; ++attempt) {
    outcome.attempts = attempt;
    std::optional<std::chrono::milliseconds> retry_after;
    try {
      HttpResponse response = request.attempt();
      if (!request.transient_status(response.status)) {
        outcome.response = std::move(response);
        return outcome;
      }
      outcome.last_problem = describe_status(response);
      retry_after = response.retry_after;
    } catch (const HttpTransportError& e) {
      if (!e.transient()) throw;
      outcome.last_problem = e.what();
    }
    if (attempt >= max_attempts) return outcome;
    std::this_thread::sleep_for(request.wait_before_retry(attempt, retry_after));
  }
}

}  // namespace accel::detail
