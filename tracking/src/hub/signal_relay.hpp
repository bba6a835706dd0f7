#pragma once
// accel::detail::SignalRelay: turns SIGTERM/SIGINT into a call on an ordinary thread.
//
// The signal handler only writes the signal number to a pipe (async-signal-safe). A helper thread
// reads it, runs every subscriber's callback (the hubs flush and finish their trackers), restores
// the default disposition and raises the signal again, so the process ends exactly as it would
// have. Handlers are installed only for signals whose disposition is the default one (a program
// that ignores or handles SIGINT itself keeps its behaviour), and removed when the last subscriber
// leaves. Thread-safety: attach/detach from any thread; a callback may call detach.
#include <functional>

namespace accel::detail {

void attach_signal_subscriber(const void* key, std::function<void()> on_signal);
void detach_signal_subscriber(const void* key);

}  // namespace accel::detail
