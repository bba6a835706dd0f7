#pragma once
// Internal: ASCII case folding for the words accel compares without case (URL schemes, modes,
// boolean words in environment variables). Bytes outside A-Z are kept as they are, so UTF-8 text
// passes through unchanged.
// Thread-safety: a pure function.
#include <string>
#include <string_view>

namespace accel::detail {

std::string ascii_lower(std::string_view text);

}  // namespace accel::detail
