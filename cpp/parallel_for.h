// ParallelFor over XLA's intra-op thread pool (ffi::ThreadPool), deadlock-free and allocation-light.
//
// Work items are pulled from a shared atomic counter by the calling thread and by helper tasks
// scheduled on the pool. The caller never waits for a helper that has not started: XLA may run
// several custom calls concurrently on the same small pool, so waiting for queued tasks could
// deadlock. A helper that starts late finds the counter exhausted and returns without touching the
// caller's data; the state it touches is kept alive by a shared_ptr.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "xla/ffi/api/ffi.h"

namespace fromax {

namespace detail {
struct SharedCounter {
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> active{0};  // helpers currently inside the work loop
};

template <class Fn>
void Drain(SharedCounter& c, int64_t n, const Fn& fn) {
  for (int64_t i = c.next.fetch_add(1); i < n; i = c.next.fetch_add(1)) fn(i);
}
}  // namespace detail

// Calls fn(i) for i in [0, n), each exactly once, possibly concurrently.
// `workers` bounds how many threads (caller included) take part.
template <class Fn>
void ParallelFor(xla::ffi::ThreadPool* pool, int64_t n, int64_t workers, const Fn& fn) {
  if (n <= 0) return;
  int64_t helpers = 0;
  if (pool != nullptr) helpers = std::min<int64_t>({pool->num_threads(), workers, n}) - 1;
  if (helpers <= 0) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  auto counter = std::make_shared<detail::SharedCounter>();
  const Fn* body = &fn;
  for (int64_t h = 0; h < helpers; ++h) {
    pool->Schedule([counter, body, n] {
      counter->active.fetch_add(1);
      // Checked after registering as active: if the counter is already exhausted the caller may
      // have returned, and `body` must not be touched.
      detail::Drain(*counter, n, *body);
      counter->active.fetch_sub(1);
    });
  }
  detail::Drain(*counter, n, fn);
  while (counter->active.load() != 0) std::this_thread::yield();
}

}  // namespace fromax
