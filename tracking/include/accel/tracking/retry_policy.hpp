#pragma once
// accel::RetryPolicy: when and how long to wait before repeating a request that failed transiently
// (connection refused/reset, timeout, HTTP 408/429/5xx). Exponential backoff with random jitter,
// capped, and a server's Retry-After honoured up to a cap. Mirrors the mlflow Python client
// (mlflow/utils/request_utils.py) with smaller defaults, because accel's trackers run on a worker
// thread and hand records to the on-disk journal instead of waiting minutes.
// Thread-safety: a RetryPolicy is an immutable value; backoff() takes the caller's random engine.
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>

namespace accel {

struct RetryPolicy {
  int max_attempts = 4;                              // total attempts, the first one included
  std::chrono::milliseconds initial_backoff{250};    // wait before the first retry
  std::chrono::milliseconds max_backoff{4000};       // no single wait is longer than this
  double jitter = 0.25;                              // each wait is stretched by U[0, jitter)
  std::chrono::milliseconds max_retry_after{30000};  // cap on a server's Retry-After

  // The wait before retry number `retry` (1 = the first retry): initial * 2^(retry-1), capped at
  // max_backoff, stretched by jitter. A Retry-After from the server replaces the computed wait
  // (capped at max_retry_after) when it is longer.
  std::chrono::milliseconds backoff(int retry, std::optional<std::chrono::milliseconds> retry_after,
                                    std::mt19937_64& random) const;

  // HTTP statuses worth repeating: 408, 429, 500, 502, 503, 504 (the mlflow client's list).
  static bool is_transient_status(long status);

  // Reads {"max_attempts", "initial_backoff_ms", "max_backoff_ms", "jitter", "max_retry_after_ms"};
  // absent fields keep their defaults. Throws accel::InvalidValue naming the field for a bad value.
  static RetryPolicy from_json(const nlohmann::json& options);
};

}  // namespace accel
