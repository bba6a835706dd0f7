// SharedFlag (see shared_flag.hpp).
#include "comm/shm/shared_flag.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ctime>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ACCEL_CPU_RELAX() _mm_pause()
#else
#define ACCEL_CPU_RELAX() ((void)0)
#endif

namespace accel::detail {
namespace {

// The futex word is in memory shared between processes: no FUTEX_PRIVATE_FLAG.
void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected) {
  timespec limit{0, 50'000'000};  // wake up now and then even if a wake-up was missed
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT, expected, &limit, nullptr,
          0);
}

void futex_wake_all(std::atomic<std::uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE, 0x7fffffff, nullptr,
          nullptr, 0);
}

}  // namespace

void SharedFlag::publish(std::uint32_t v) {
  value.store(v, std::memory_order_seq_cst);
  if (sleepers.load(std::memory_order_seq_cst) != 0) futex_wake_all(&value);
}

void SharedFlag::wait_until(std::uint32_t v, std::chrono::nanoseconds spin) {
  if (reached(v)) return;
  const auto spin_end = std::chrono::steady_clock::now() + spin;
  for (unsigned i = 1;; ++i) {
    if (reached(v)) return;
    ACCEL_CPU_RELAX();
    if (i % 64 == 0 && std::chrono::steady_clock::now() >= spin_end) break;
  }
  for (;;) {
    sleepers.fetch_add(1, std::memory_order_seq_cst);
    const std::uint32_t seen = value.load(std::memory_order_seq_cst);
    if (static_cast<std::int32_t>(seen - v) < 0) futex_wait(&value, seen);
    sleepers.fetch_sub(1, std::memory_order_seq_cst);
    if (reached(v)) return;
  }
}

}  // namespace accel::detail
