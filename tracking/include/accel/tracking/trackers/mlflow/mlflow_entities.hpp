#pragma once
// The entities of MLflow's REST API that MlflowClient::log_batch takes: a metric point, a param, a
// tag, as MLflow stores them. Plain values.
#include <cstdint>
#include <string>

namespace accel {

struct MlflowMetric {
  std::string key;
  double value = 0;
  int64_t timestamp_ms = 0;
  int64_t step = 0;
};

struct MlflowParam {
  std::string key;
  std::string value;
};

struct MlflowTag {
  std::string key;
  std::string value;
};

}  // namespace accel
