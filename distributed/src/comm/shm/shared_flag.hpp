#pragma once
// SharedFlag: a counter in memory shared between processes that one rank advances and its peers wait
// for. publish(v) stores v; wait_until(v) returns once the counter reached v (compared modulo 2^32, so
// it may wrap). A waiter spins briefly (the peer is usually microseconds away), then sleeps on a futex,
// so a rank waiting for a slow peer leaves the CPU to the computation that peer's process (or its own
// training thread) needs; publish() makes the futex system call only when someone sleeps.
// The object must live in shared memory that starts zero-filled; it has no constructor to run.
#include <atomic>
#include <chrono>
#include <cstdint>

namespace accel::detail {

struct alignas(64) SharedFlag {
  std::atomic<std::uint32_t> value;     // last published value
  std::atomic<std::uint32_t> sleepers;  // waiters inside futex wait

  void publish(std::uint32_t v);
  // publish() for a value no one can be waiting for yet: a plain release store, no wake-up check.
  void advance(std::uint32_t v) { value.store(v, std::memory_order_release); }
  void wait_until(std::uint32_t v, std::chrono::nanoseconds spin);
  bool reached(std::uint32_t v) const {
    return static_cast<std::int32_t>(value.load(std::memory_order_acquire) - v) >= 0;
  }
};

static_assert(std::atomic<std::uint32_t>::is_always_lock_free,
              "SharedFlag needs lock-free 32-bit atomics to work across processes");

}  // namespace accel::detail
