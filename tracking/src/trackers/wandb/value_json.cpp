#include "trackers/wandb/value_json.hpp"

#include <cmath>

namespace accel::wandb {
namespace {

void append(std::string& out, const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, member] : value.items()) {
        if (!first) out += ',';
        first = false;
        out += nlohmann::json(key).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        out += ':';
        append(out, member);
      }
      out += '}';
      return;
    }
    case nlohmann::json::value_t::array: {
      out += '[';
      for (std::size_t i = 0; i < value.size(); ++i) {
        if (i) out += ',';
        append(out, value[i]);
      }
      out += ']';
      return;
    }
    case nlohmann::json::value_t::number_float: {
      const double d = value.get<double>();
      if (std::isnan(d)) {
        out += "NaN";
      } else if (std::isinf(d)) {
        out += d > 0 ? "Infinity" : "-Infinity";
      } else {
        out += value.dump();  // nlohmann prints the shortest text that reads back as d
      }
      return;
    }
    default:
      // Strings are escaped as JSON; invalid UTF-8 is replaced rather than thrown on.
      out += value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      return;
  }
}

}  // namespace

std::string value_json(const nlohmann::json& value) {
  std::string out;
  append(out, value);
  return out;
}

}  // namespace accel::wandb
