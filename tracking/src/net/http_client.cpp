#include "net/http_client.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>
#include <system_error>

namespace accel {

namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t read_file_body(char* buffer, size_t size, size_t count, void* user) {
  return std::fread(buffer, size, count, static_cast<FILE*>(user));
}

size_t write_body(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

std::string trim(std::string_view text) {
  auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return {};
  auto end = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(begin, end - begin + 1));
}

bool header_is(std::string_view line, std::string_view name) {
  if (line.size() <= name.size() || line[name.size()] != ':') return false;
  return std::equal(name.begin(), name.end(), line.begin(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) ==
           std::tolower(static_cast<unsigned char>(b));
  });
}

// Retry-After is either delta-seconds or an HTTP date (RFC 9110 §10.2.3).
std::optional<std::chrono::milliseconds> parse_retry_after(const std::string& value) {
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    return std::chrono::seconds(std::stoll(value.substr(0, 9)));
  }
  const time_t when = curl_getdate(value.c_str(), nullptr);
  if (when < 0) return std::nullopt;
  const time_t now = std::time(nullptr);
  return std::chrono::seconds(std::max<time_t>(0, when - now));
}

struct HeaderCapture {
  HttpResponse* response;
};

size_t write_header(char* data, size_t size, size_t count, void* user) {
  auto* capture = static_cast<HeaderCapture*>(user);
  std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {
    capture->response->retry_after.reset();  // a new response (after 100-continue / redirects)
  } else if (header_is(line, "Retry-After")) {
    capture->response->retry_after = parse_retry_after(trim(line.substr(12)));
  } else if (header_is(line, "Content-Type")) {
    capture->response->content_type = trim(line.substr(13));
  }
  return size * count;
}

bool is_transient(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_AGAIN:
      return true;
    default:
      return false;
  }
}

}  // namespace

struct HttpClient::Handle {
  CURL* curl = nullptr;
  char error[CURL_ERROR_SIZE] = {};
  ~Handle() {
    if (curl) curl_easy_cleanup(curl);
  }
};

HttpClient::HttpClient(HttpOptions options)
    : handle_(std::make_unique<Handle>()), options_(std::move(options)) {
  global_init();
  handle_->curl = curl_easy_init();
  if (!handle_->curl) throw Error("libcurl could not create a handle (out of memory?)");
}

HttpClient::~HttpClient() = default;

void HttpClient::set_authorization(std::string value) {
  authorization_ = std::move(value);
}

HttpResponse HttpClient::send(std::string_view method, const std::string& url,
                              std::string_view body, std::string_view content_type,
                              const std::vector<std::string>& extra_headers) {
  return perform(method, url, content_type, extra_headers, [&](void* curl) {
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.request_timeout.count()));
    if (method == "GET") {
      curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
      return;
    }
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  });
}

HttpResponse HttpClient::send_file(std::string_view method, const std::string& url,
                                   const std::filesystem::path& file, std::string_view content_type,
                                   const std::vector<std::string>& extra_headers) {
  std::unique_ptr<FILE, decltype(&std::fclose)> in(std::fopen(file.c_str(), "rb"), &std::fclose);
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  if (!in || ec) {
    throw HttpTransportError(
        fmt::format("{} {}: cannot read the file '{}' to send", method, url, file.string()), false);
  }
  return perform(method, url, content_type, extra_headers, [&](void* curl) {
    // No limit on the whole transfer (a large file takes long); a transfer that moves nothing
    // for request_timeout fails.
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 0L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME,
                     std::max(1L, static_cast<long>(options_.request_timeout.count() / 1000)));
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_file_body);
    curl_easy_setopt(curl, CURLOPT_READDATA, in.get());
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
  });
}

HttpResponse HttpClient::perform(std::string_view method, const std::string& url,
                                 std::string_view content_type,
                                 const std::vector<std::string>& extra_headers,
                                 const std::function<void(void*)>& set_body) {
  CURL* curl = handle_->curl;
  curl_easy_reset(curl);  // keeps the live connection, forgets the last request's options
  HttpResponse response;
  HeaderCapture capture{&response};

  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, handle_->error);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, write_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &capture);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, options_.verify_tls ? 1L : 0L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, options_.verify_tls ? 2L : 0L);
  if (!options_.ca_bundle_path.empty())
    curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_bundle_path.c_str());
  if (!options_.client_cert_path.empty())
    curl_easy_setopt(curl, CURLOPT_SSLCERT, options_.client_cert_path.c_str());

  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip for large bodies
  headers = curl_slist_append(headers, "Accept: application/json");
  // An empty content type sends none ("Content-Type:" disables curl's default).
  std::string content_type_header =
      content_type.empty() ? "Content-Type:" : fmt::format("Content-Type: {}", content_type);
  std::string authorization_header;
  if (!authorization_.empty()) {
    authorization_header = "Authorization: " + authorization_;
    headers = curl_slist_append(headers, authorization_header.c_str());
  }
  for (const auto& header : extra_headers) headers = curl_slist_append(headers, header.c_str());
  set_body(curl);
  const std::string method_string(method);
  if (method != "GET") {
    headers = curl_slist_append(headers, content_type_header.c_str());
    if (method != "POST") curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method_string.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

  ++requests_sent_;
  const CURLcode code = curl_easy_perform(curl);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(headers);
  std::fill(authorization_header.begin(), authorization_header.end(), '\0');
  if (code != CURLE_OK) {
    std::string detail = handle_->error[0] ? handle_->error : curl_easy_strerror(code);
    throw HttpTransportError(fmt::format("{} {}: {}", method, url, detail), is_transient(code));
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

std::string HttpClient::escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  static constexpr char hex[] = "0123456789ABCDEF";
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace accel
