// The REST trackers' retry loop (net/request_retry) and their HTTP Basic header
// (net/basic_authorization), driven by scripted answers instead of a server.
#include "net/request_retry.hpp"

#include <catch2/catch.hpp>
#include <deque>
#include <variant>

#include "accel/tracking/retry_policy.hpp"
#include "net/basic_authorization.hpp"

using accel::HttpResponse;
using accel::HttpTransportError;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view kBusyBody = "{\"message\": \"busy\"}";

// One scripted attempt: a response, or a transport error (transient or not).
using Answer = std::variant<long, HttpTransportError>;

struct Script {
  std::deque<Answer> answers;
  std::vector<int> waits_asked;  // `retry` of every wait_before_retry call
  int attempts = 0;

  accel::detail::RetriedRequest request(int max_attempts) {
    accel::detail::RetriedRequest r;
    r.attempt = [this] {
      ++attempts;
      REQUIRE(!answers.empty());
      Answer next = answers.front();
      answers.pop_front();
      if (auto* error = std::get_if<HttpTransportError>(&next)) throw *error;
      HttpResponse response;
      response.status = std::get<long>(next);
      if (response.status >= 300) response.body = kBusyBody;
      return response;
    };
    r.transient_status = accel::RetryPolicy::is_transient_status;
    r.wait_before_retry = [this](int retry, std::optional<std::chrono::milliseconds>) {
      waits_asked.push_back(retry);
      return 1ms;
    };
    r.max_attempts = max_attempts;
    return r;
  }
};

}  // namespace

TEST_CASE("a transient failure is repeated until an answer that is not transient") {
  Script script;
  script.answers = {503L, HttpTransportError("connection refused", true), 429L, 200L};
  const auto outcome = accel::detail::send_with_retries(script.request(5));
  REQUIRE(outcome.response);
  CHECK(outcome.response->status == 200);
  CHECK(outcome.attempts == 4);
  CHECK(script.waits_asked == std::vector<int>{1, 2, 3});
}

TEST_CASE("an answer that retrying cannot change ends the loop at once") {
  Script script;
  script.answers = {401L};
  const auto outcome = accel::detail::send_with_retries(script.request(5));
  REQUIRE(outcome.response);
  CHECK(outcome.response->status == 401);
  CHECK(outcome.attempts == 1);
  CHECK(script.waits_asked.empty());
}

TEST_CASE("after max_attempts transient failures there is no response, and the last problem") {
  Script script;
  script.answers = {502L, 503L, 504L};
  const auto outcome = accel::detail::send_with_retries(script.request(3));
  CHECK_FALSE(outcome.response);
  CHECK(outcome.attempts == 3);
  CHECK(outcome.last_problem == "HTTP 504: {\"message\": \"busy\"}");
  CHECK(script.waits_asked == std::vector<int>{1, 2});
  CHECK(script.answers.empty());
}

TEST_CASE("a transport error that cannot be transient is rethrown without a retry") {
  Script script;
  script.answers = {HttpTransportError("certificate does not verify", false)};
  CHECK_THROWS_AS(accel::detail::send_with_retries(script.request(5)), HttpTransportError);
  CHECK(script.attempts == 1);
}

TEST_CASE("HTTP Basic credentials are base64 of user:password (RFC 7617's example)") {
  CHECK(accel::detail::basic_authorization("Aladdin", "open sesame") ==
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
  CHECK(accel::detail::basic_authorization("api", "k") == "Basic YXBpOms=");
  CHECK(accel::detail::basic_authorization("ab", "") == "Basic YWI6");
}
