#pragma once
// Internal: UTF-8 as the trackers and the progress bar need it — counting code points, cutting text
// without splitting a code point, and checking that text is valid UTF-8 (TensorBoard's tags and
// hparams). Byte strings are taken as they are: nothing here decodes or replaces bytes.
// Thread-safety: pure functions.
#include <cstddef>
#include <string>
#include <string_view>

namespace accel {

// True for a continuation byte (10xxxxxx): one that never starts a code point.
constexpr bool is_utf8_continuation(unsigned char byte) {
  return (byte & 0xC0) == 0x80;
}

// The length of the sequence a lead byte announces: 1 for ASCII, 2 to 4 for a lead byte, 0 for a
// continuation byte or a byte that never starts a sequence (0xF8 and above).
std::size_t utf8_announced_length(unsigned char lead);

// The length of the valid UTF-8 sequence that starts at text[i] (lead byte announcing n bytes and
// n - 1 continuation bytes that fit in text), or 0 when there is none. Overlong forms and
// surrogates are not rejected.
std::size_t utf8_sequence_length(std::string_view text, std::size_t i);

// Every byte of text belongs to a valid sequence (see utf8_sequence_length).
bool is_valid_utf8(std::string_view text);

// The number of code points in text: its bytes that are not continuation bytes.
std::size_t utf8_code_points(std::string_view text);

// The longest prefix of text with at most max_code_points code points; never ends inside a code
// point.
std::string_view utf8_prefix(std::string_view text, std::size_t max_code_points);

// Cuts text to at most max_code_points UTF-8 code points (never inside a code point).
// Sets *truncated when it cut anything.
std::string truncate_utf8(std::string_view text, std::size_t max_code_points, bool* truncated);

}  // namespace accel
