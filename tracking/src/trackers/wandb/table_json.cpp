#include "trackers/wandb/table_json.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <set>
#include <string_view>

namespace accel::wandb {
namespace {

// One code point from UTF-8 at text[i] (i moves past it); U+FFFD for a malformed sequence.
uint32_t next_code_point(std::string_view text, std::size_t& i) {
  const auto byte = [&](std::size_t at) { return static_cast<unsigned char>(text[at]); };
  const unsigned char lead = byte(i);
  const int extra = lead < 0x80           ? 0
                    : (lead >> 5) == 0x6  ? 1
                    : (lead >> 4) == 0xE  ? 2
                    : (lead >> 3) == 0x1E ? 3
                                          : -1;
  if (extra < 0 || i + static_cast<std::size_t>(extra) >= text.size()) {
    ++i;
    return 0xFFFD;
  }
  uint32_t code = extra == 0 ? lead : lead & (0x3F >> extra);
  for (int k = 1; k <= extra; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    code = (code << 6) | (byte(i + k) & 0x3F);
  }
  i += extra + 1;
  return code;
}

// Python's json.dumps(s) with ensure_ascii=True.
void append_string(std::string& out, std::string_view text) {
  out += '"';
  for (std::size_t i = 0; i < text.size();) {
    const uint32_t c = next_code_point(text, i);
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (c >= 0x20 && c <= 0x7E) {
      out += static_cast<char>(c);
    } else if (c <= 0xFFFF) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      const uint32_t v = c - 0x10000;
      out += fmt::format("\\u{:04x}\\u{:04x}", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
    }
  }
  out += '"';
}

void append(std::string& out, const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, member] : value.items()) {  // sorted by key, as sort_keys=True
        if (!first) out += ", ";
        first = false;
        append_string(out, key);
        out += ": ";
        append(out, member);
      }
      out += '}';
      return;
    }
    case nlohmann::json::value_t::array: {
      out += '[';
      for (std::size_t i = 0; i < value.size(); ++i) {
        if (i) out += ", ";
        append(out, value[i]);
      }
      out += ']';
      return;
    }
    case nlohmann::json::value_t::string:
      append_string(out, value.get_ref<const std::string&>());
      return;
    case nlohmann::json::value_t::number_float: {
      const double d = value.get<double>();
      if (std::isnan(d)) {
        out += "null";  // the SDK's table data has NaN as None
      } else if (std::isinf(d)) {
        out += d > 0 ? "Infinity" : "-Infinity";
      } else {
        out += python_float_repr(d);
      }
      return;
    }
    default:  // integers, booleans, null
      out += value.dump();
      return;
  }
}

// W&B's type name of a cell, or nullopt for one accel does not infer (lists, objects).
std::optional<std::string> cell_type(const nlohmann::json& cell) {
  if (cell.is_null()) return "none";
  if (cell.is_boolean()) return "boolean";
  if (cell.is_number()) return "number";
  if (cell.is_string()) return "string";
  return std::nullopt;
}

// {"params": {"type_map": {...}}, "wb_type": "typedDict"}, or null when some column's type is not
// one accel infers.
nlohmann::json column_types(const Table& table) {
  nlohmann::json type_map = nlohmann::json::object();
  for (std::size_t column = 0; column < table.columns.size(); ++column) {
    std::set<std::string> types;
    for (const auto& row : table.rows) {
      if (column >= row.size()) continue;
      auto type = cell_type(row[column]);
      if (!type) return nullptr;
      if (*type != "none") types.insert(*type);
    }
    if (types.size() > 1) return nullptr;
    std::set<std::string> members = {"none", types.empty() ? "unknown" : *types.begin()};
    nlohmann::json allowed = nlohmann::json::array();
    for (const auto& member : members) allowed.push_back({{"wb_type", member}});
    type_map[table.columns[column]] = {{"params", {{"allowed_types", allowed}}},
                                       {"wb_type", "union"}};
  }
  return {{"params", {{"type_map", type_map}}}, {"wb_type", "typedDict"}};
}

}  // namespace

std::string python_float_repr(double d) {
  char buffer[64];
  const auto [end, error] =
      std::to_chars(buffer, buffer + sizeof buffer, d, std::chars_format::scientific);
  std::string_view text(buffer, static_cast<std::size_t>(end - buffer));  // "-1.25e+07"
  std::string sign;
  if (text.front() == '-') {
    sign = "-";
    text.remove_prefix(1);
  }
  const auto e = text.find('e');
  std::string digits;
  for (char c : text.substr(0, e)) {
    if (c != '.') digits += c;
  }
  const int exponent = std::atoi(std::string(text.substr(e + 1)).c_str());
  const int point = exponent + 1;  // d = 0.<digits> × 10^point
  const int count = static_cast<int>(digits.size());
  if (point > -4 && point <= 16) {
    if (point <= 0) return sign + "0." + std::string(-point, '0') + digits;
    if (point >= count) return sign + digits + std::string(point - count, '0') + ".0";
    return sign + digits.substr(0, point) + "." + digits.substr(point);
  }
  std::string mantissa = digits.substr(0, 1);
  if (count > 1) mantissa += "." + digits.substr(1);
  return fmt::format("{}{}e{}{:02d}", sign, mantissa, exponent < 0 ? '-' : '+', std::abs(exponent));
}

std::string sdk_table_json(const Table& table) {
  nlohmann::json data = nlohmann::json::array();
  for (const auto& cells : table.rows) data.push_back(cells);
  nlohmann::json object = {
      {"_type", "table"},        {"columns", table.columns},      {"data", std::move(data)},
      {"log_mode", "IMMUTABLE"}, {"ncols", table.columns.size()}, {"nrows", table.rows.size()}};
  if (auto types = column_types(table); !types.is_null()) object["column_types"] = types;
  std::string out;
  append(out, object);
  return out;
}

}  // namespace accel::wandb
