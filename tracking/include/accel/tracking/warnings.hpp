#pragma once
// accel::warn: where tracking's warnings go (a tracker disabled after an error, a key skipped by a
// scalar-only backend, a step that went backwards, undelivered records at end_training).
// By default each warning is one line on stderr: "[accel] warning: <message>".
// Thread-safety: warn and set_warning_handler may be called from any thread; the handler is called
// under a lock, one warning at a time.
#include <functional>
#include <string>
#include <string_view>

namespace accel {

using WarningHandler = std::function<void(std::string_view message)>;

void warn(std::string_view message);
// Installs handler (an empty function restores the stderr default) and returns the previous one.
WarningHandler set_warning_handler(WarningHandler handler);

}  // namespace accel
