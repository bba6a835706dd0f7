#include "accel/tracking/retry_policy.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "accel/tracking/errors.hpp"
#include "common/init_kwargs.hpp"

namespace accel {

std::chrono::milliseconds RetryPolicy::backoff(int retry,
                                               std::optional<std::chrono::milliseconds> retry_after,
                                               std::mt19937_64& random) const {
  const double base = static_cast<double>(initial_backoff.count()) *
                      std::pow(2.0, static_cast<double>(std::max(retry, 1) - 1));
  double wait = std::min(base, static_cast<double>(max_backoff.count()));
  if (jitter > 0) wait *= 1.0 + std::uniform_real_distribution<double>(0.0, jitter)(random);
  auto computed = std::chrono::milliseconds(static_cast<int64_t>(wait));
  if (retry_after) computed = std::max(computed, std::min(*retry_after, max_retry_after));
  return computed;
}

bool RetryPolicy::is_transient_status(long status) {
  return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
         status == 504;
}

namespace {

constexpr const char* kKnownOptions[] = {"max_attempts", "initial_backoff_ms", "max_backoff_ms",
                                         "jitter", "max_retry_after_ms"};

int64_t read_non_negative(const nlohmann::json& options, const char* field, int64_t fallback) {
  return detail::integer_option(options, field, 0, fallback, [&](const nlohmann::json& v) {
    return fmt::format("retry option '{}' is {}; it must be a non-negative integer", field,
                       v.dump());
  });
}

}  // namespace

RetryPolicy RetryPolicy::from_json(const nlohmann::json& options) {
  RetryPolicy policy;
  if (options.is_null()) return policy;
  if (!options.is_object()) {
    throw InvalidValue(
        fmt::format("retry options are {}; pass an object such as {{\"max_attempts\": 4, "
                    "\"initial_backoff_ms\": 250}}",
                    options.dump()));
  }
  if (auto unknown = detail::first_unknown_option(options, kKnownOptions)) {
    throw InvalidValue(fmt::format("unknown retry option '{}'; known options: {}", *unknown,
                                   detail::option_list(kKnownOptions)));
  }
  policy.max_attempts = static_cast<int>(read_non_negative(options, "max_attempts", 4));
  if (policy.max_attempts < 1) {
    throw InvalidValue("retry option 'max_attempts' is 0; it counts the first attempt, use >= 1");
  }
  policy.initial_backoff =
      std::chrono::milliseconds(read_non_negative(options, "initial_backoff_ms", 250));
  policy.max_backoff =
      std::chrono::milliseconds(read_non_negative(options, "max_backoff_ms", 4000));
  policy.max_retry_after =
      std::chrono::milliseconds(read_non_negative(options, "max_retry_after_ms", 30000));
  if (options.contains("jitter")) {
    const auto& j = options.at("jitter");
    if (!j.is_number() || j.get<double>() < 0 || j.get<double>() > 10) {
      throw InvalidValue(
          fmt::format("retry option 'jitter' is {}; use a fraction in [0, 10]", j.dump()));
    }
    policy.jitter = j.get<double>();
  }
  return policy;
}

}  // namespace accel
