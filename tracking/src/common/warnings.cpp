#include "accel/tracking/warnings.hpp"

#include <cstdio>
#include <mutex>

namespace accel {
namespace {

std::mutex& handler_mutex() {
  static std::mutex mutex;
  return mutex;
}

WarningHandler& current_handler() {
  static WarningHandler handler;
  return handler;
}

}  // namespace

void warn(std::string_view message) {
  std::lock_guard lock(handler_mutex());
  if (current_handler()) {
    current_handler()(message);
    return;
  }
  std::fprintf(stderr, "[accel] warning: %.*s\n", static_cast<int>(message.size()), message.data());
}

WarningHandler set_warning_handler(WarningHandler handler) {
  std::lock_guard lock(handler_mutex());
  WarningHandler previous = std::move(current_handler());
  current_handler() = std::move(handler);
  return previous;
}

}  // namespace accel
