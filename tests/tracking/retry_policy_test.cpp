// RetryPolicy: exponential growth, cap, jitter bounds, Retry-After, option parsing.
#include "accel/tracking/retry_policy.hpp"

#include <catch2/catch.hpp>

#include "accel/tracking/errors.hpp"

using accel::RetryPolicy;
using namespace std::chrono_literals;

TEST_CASE("backoff doubles, is capped, and jitter only stretches it") {
  RetryPolicy policy;
  policy.initial_backoff = 100ms;
  policy.max_backoff = 1000ms;
  policy.jitter = 0.5;
  std::mt19937_64 random(42);
  for (int trial = 0; trial < 200; ++trial) {
    for (int retry = 1; retry <= 8; ++retry) {
      const auto base = std::min<int64_t>(100LL << (retry - 1), 1000);
      const auto wait = policy.backoff(retry, std::nullopt, random).count();
      CHECK(wait >= base);
      CHECK(wait <= base * 3 / 2);
    }
  }
  policy.jitter = 0;
  CHECK(policy.backoff(1, std::nullopt, random) == 100ms);
  CHECK(policy.backoff(3, std::nullopt, random) == 400ms);
  CHECK(policy.backoff(30, std::nullopt, random) == 1000ms);
}

TEST_CASE("Retry-After is honoured up to its cap") {
  RetryPolicy policy;
  policy.jitter = 0;
  policy.initial_backoff = 100ms;
  policy.max_retry_after = 5000ms;
  std::mt19937_64 random(1);
  CHECK(policy.backoff(1, 2000ms, random) == 2000ms);
  CHECK(policy.backoff(1, 60000ms, random) == 5000ms);
  CHECK(policy.backoff(1, 10ms, random) == 100ms);  // never shorter than the backoff
}

TEST_CASE("transient statuses are the mlflow client's") {
  for (long s : {408L, 429L, 500L, 502L, 503L, 504L}) CHECK(RetryPolicy::is_transient_status(s));
  for (long s : {200L, 400L, 401L, 403L, 404L, 409L, 501L})
    CHECK_FALSE(RetryPolicy::is_transient_status(s));
}

TEST_CASE("options parse and bad ones are named") {
  auto policy =
      RetryPolicy::from_json({{"max_attempts", 2}, {"initial_backoff_ms", 10}, {"jitter", 0.0}});
  CHECK(policy.max_attempts == 2);
  CHECK(policy.initial_backoff == 10ms);
  CHECK(policy.max_backoff == 4000ms);
  CHECK_THROWS_WITH(RetryPolicy::from_json({{"max_atempts", 2}}), Catch::Contains("max_atempts"));
  CHECK_THROWS_WITH(RetryPolicy::from_json({{"max_attempts", 0}}), Catch::Contains("max_attempts"));
  CHECK_THROWS_WITH(RetryPolicy::from_json({{"initial_backoff_ms", -1}}),
                    Catch::Contains("initial_backoff_ms"));
  CHECK_THROWS_AS(RetryPolicy::from_json(5), accel::InvalidValue);
}
