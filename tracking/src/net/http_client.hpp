#pragma once
// accel::HttpClient: one keep-alive HTTP(S) connection over libcurl, used by the REST trackers.
// It sends one request and returns the response; retrying is the caller's business (RetryPolicy).
// The Authorization header is held privately and never appears in messages or logs; URLs with
// user:password@ are refused by the callers, so errors never carry credentials either.
// TLS peer and host verification are on unless HttpOptions::verify_tls is false.
// Thread-safety: NOT thread-safe (one libcurl easy handle); guard it with a mutex when shared.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "accel/tracking/errors.hpp"
#include "accel/tracking/http_options.hpp"

namespace accel {

struct HttpResponse {
  long status = 0;
  std::string body;
  std::string content_type;
  std::optional<std::chrono::milliseconds> retry_after;  // from a Retry-After header, if any
};

// The request never got an HTTP response (refused, reset, timed out, TLS failure, bad URL).
// transient() says whether repeating it later can help (a refused connection can, a certificate
// that does not verify cannot).
class HttpTransportError : public Error {
 public:
  HttpTransportError(std::string message, bool transient)
      : Error(std::move(message)), transient_(transient) {}
  bool transient() const { return transient_; }

 private:
  bool transient_;
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sets the Authorization header value sent with every request ("Basic ..." / "Bearer ...").
  void set_authorization(std::string value);

  // Sends method (GET, POST, PUT, ...) to url with body (sent when non-empty or method is not GET)
  // and any extra headers ("Name: value": the headers a pre-signed upload URL requires, a
  // backend's debug headers; never a credential, set_authorization holds it).
  // Returns any HTTP response, 4xx/5xx included. Throws HttpTransportError when none came back.
  HttpResponse send(std::string_view method, const std::string& url, std::string_view body = {},
                    std::string_view content_type = "application/json",
                    const std::vector<std::string>& extra_headers = {});

  // The same with the contents of `file` as the body, read in pieces as it is sent (a large file
  // is never held in memory). The whole transfer has no time limit; one that moves no byte for
  // HttpOptions::request_timeout fails. Throws HttpTransportError (not transient) when the file
  // cannot be read.
  HttpResponse send_file(std::string_view method, const std::string& url,
                         const std::filesystem::path& file, std::string_view content_type = "",
                         const std::vector<std::string>& extra_headers = {});

  // Requests sent so far (each attempt counts), for benchmarks and tests.
  uint64_t requests_sent() const { return requests_sent_; }

  // Percent-encodes one URL path segment or query value.
  static std::string escape(std::string_view text);

 private:
  // One request: the options every request shares, then set_body (given the CURL handle) sets
  // the body and the time limit.
  HttpResponse perform(std::string_view method, const std::string& url,
                       std::string_view content_type, const std::vector<std::string>& extra_headers,
                       const std::function<void(void*)>& set_body);

  struct Handle;
  std::unique_ptr<Handle> handle_;
  HttpOptions options_;
  std::string authorization_;
  uint64_t requests_sent_ = 0;
};

}  // namespace accel
