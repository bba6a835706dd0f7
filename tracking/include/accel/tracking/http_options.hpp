#pragma once
// accel::HttpOptions: how the REST trackers (MLflow, ...) connect: timeouts, TLS verification and
// certificates, the User-Agent. Part of each such tracker's configuration. A plain value.
#include <chrono>
#include <string>

namespace accel {

struct HttpOptions {
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds request_timeout{120000};
  bool verify_tls = true;        // false only when the user asked for it explicitly
  std::string ca_bundle_path;    // PEM bundle used instead of the system store (empty: system)
  std::string client_cert_path;  // PEM client certificate (+ key) for mutual TLS (empty: none)
  std::string user_agent = "accel";
};

}  // namespace accel
