// The emulated grid (grid.h): a pool of host threads, a block barrier, per-block shared memory.
#include "grid.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include <atomic>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cstdint>
#include <mutex>
#include <thread>

namespace fromax::emulation {
namespace {

// Thrown on a worker to leave the kernel once its grid has failed.
struct KernelAbort {};

enum class Arrival { kSyncThreads, kExit };

thread_local bool on_worker = false;
thread_local size_t shared_used = 0;

// Waiting on a 32-bit word: Linux futexes, so a barrier wakes all its waiters with one system call
// and none of them has to take a lock to leave (a condition variable's mutex would hand itself
// from thread to thread, 256 times per barrier).
void WaitWhileEqual(std::atomic<uint32_t>* word, uint32_t value) {
  while (word->load(std::memory_order_acquire) == value)
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, value, nullptr, nullptr, 0);
}
void WakeAll(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
}

// A worker inherits its creator's floating-point modes, and XLA's CPU threads flush denormals
// (FTZ/DAZ); a GPU keeps them (nvcc's default -ftz=false), so the emulated kernels do too.
void KeepDenormals() {
#if defined(__SSE__)
  _mm_setcsr(_mm_getcsr() & ~(_MM_FLUSH_ZERO_ON | 0x0040u));  // FTZ and DAZ (bit 6) off
#endif
}

class Pool {
 public:
  static Pool& Get() {
    static Pool* pool = new Pool();  // never destroyed: its workers wait on it until the process ends
    return *pool;
  }

  // Called under the launch lock: one grid at a time.
  void Run(int64_t blocks, int64_t threads, const std::function<void()>& body) {
    // A new worker starts from the current launch count, so it waits for this launch's bump like
    // the others: starting from 0 it would run at once and could execute this launch before its
    // counters are reset below (lost barrier arrivals: a hang), and then again.
    while (int64_t(workers_) < threads) {
      std::thread(&Pool::Work, this, int64_t(workers_), launch_.load(std::memory_order_acquire)).detach();
      ++workers_;
    }
    body_ = &body;
    blocks_ = blocks;
    threads_ = threads;
    workers_now_ = int64_t(workers_);
    finished_.store(0);
    arrived_.store(0);
    exits_.store(0);
    failed_.store(false);
    Poison();
    const uint32_t done = done_.load();
    launch_.fetch_add(1, std::memory_order_release);
    WakeAll(&launch_);
    WaitWhileEqual(&done_, done);
    body_ = nullptr;
    if (failed_.load()) last_error = cudaErrorLaunchFailure;
  }

  // __syncthreads(): every thread of the block arrives, or the grid fails.
  void SyncThreads() {
    if (!Arrive(Arrival::kSyncThreads)) throw KernelAbort{};
  }

  void* Shared(size_t bytes, size_t alignment) {
    const size_t offset = (shared_used + alignment - 1) / alignment * alignment;
    if (offset + bytes > kSharedBytesPerBlock) {
      std::fprintf(stderr, "fromax CUDA emulation: block %u uses more than %zu bytes of shared memory\n", blockIdx.x,
                   kSharedBytesPerBlock);
      Fail();
      throw KernelAbort{};
    }
    shared_used = offset + bytes;
    return shared_ + offset;
  }

 private:
  void Work(int64_t index, uint32_t seen) {
    on_worker = true;
    KeepDenormals();
    for (;;) {
      WaitWhileEqual(&launch_, seen);
      seen = launch_.load(std::memory_order_acquire);
      const int64_t blocks = blocks_, threads = threads_;
      // Every worker checks in, the idle ones too, before Run returns: none can still be reading
      // this launch's parameters when the next launch writes them.
      if (index < threads) RunBlocks(index, blocks, threads);
      if (finished_.fetch_add(1) + 1 == workers_now_) {
        done_.fetch_add(1, std::memory_order_release);
        WakeAll(&done_);
      }
    }
  }

  void RunBlocks(int64_t index, int64_t blocks, int64_t threads) {
    const std::function<void()>& body = *body_;
    threadIdx = {unsigned(index), 0, 0};
    blockDim = {unsigned(threads), 1, 1};
    gridDim = {unsigned(blocks), 1, 1};
    for (int64_t b = 0; b < blocks; ++b) {
      blockIdx = {unsigned(b), 0, 0};
      shared_used = 0;
      try {
        body();
      } catch (const KernelAbort&) {
        return;
      } catch (...) {
        Fail();
        return;
      }
      if (!Arrive(Arrival::kExit)) return;
    }
  }

  // The block barrier, for both __syncthreads() and the end of a block. All threads of a block
  // must arrive for the same reason: a thread that left the kernel while others wait at
  // __syncthreads() is a divergent barrier (a hang or undefined behaviour on a device), and fails
  // the grid here. The last thread to leave a block poisons the shared memory for the next one.
  // Returns false if the grid has failed.
  bool Arrive(Arrival why) {
    if (failed_.load()) return false;
    const uint32_t phase = phase_.load(std::memory_order_acquire);
    if (why == Arrival::kExit) exits_.fetch_add(1);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == threads_) {
      const int64_t exits = exits_.load();
      if (exits != 0 && exits != threads_) {
        std::fprintf(stderr,
                     "fromax CUDA emulation: block %u: %lld of %lld threads left the kernel while the others "
                     "waited at __syncthreads()\n",
                     blockIdx.x, (long long)exits, (long long)threads_);
        failed_.store(true);
      } else if (exits == threads_) {
        Poison();
      }
      exits_.store(0);
      arrived_.store(0);
      phase_.fetch_add(1, std::memory_order_release);
      WakeAll(&phase_);
    } else {
      while (phase_.load(std::memory_order_acquire) == phase && !failed_.load()) WaitWhileEqual(&phase_, phase);
    }
    return !failed_.load();
  }

  void Fail() {
    failed_.store(true);
    phase_.fetch_add(1, std::memory_order_release);  // releases the threads waiting at a barrier
    WakeAll(&phase_);
  }

  void Poison() { std::memset(shared_, 0xFF, sizeof shared_); }

  size_t workers_ = 0;                     // Run only, under the launch lock
  int64_t workers_now_ = 0;                // the workers of this launch: all check in
  const std::function<void()>* body_ = nullptr;  // the launch's, written before launch_ is bumped
  int64_t blocks_ = 0, threads_ = 0;
  std::atomic<uint32_t> launch_{0}, done_{0}, phase_{0};
  std::atomic<int64_t> finished_{0}, arrived_{0}, exits_{0};
  std::atomic<bool> failed_{false};
  alignas(64) unsigned char shared_[kSharedBytesPerBlock];
};

std::mutex launch_mu;
std::atomic<int64_t> launches{0};

[[noreturn]] void Misuse(const char* what) {
  std::fprintf(stderr, "fromax CUDA emulation: %s\n", what);
  std::abort();
}

}  // namespace

void RunGrid(int64_t blocks, int64_t threads, const std::function<void()>& body) {
  if (on_worker) Misuse("a kernel launched a kernel (dynamic parallelism is not emulated)");
  std::lock_guard<std::mutex> lock(launch_mu);
  launches.fetch_add(1);
  if (threads < 1 || threads > kMaxThreadsPerBlock || blocks < 1 || blocks > kMaxGridX) {
    last_error = cudaErrorInvalidConfiguration;
    return;
  }
  Pool::Get().Run(blocks, threads, body);
}

void* SharedBytes(size_t bytes, size_t alignment) {
  if (!on_worker) Misuse("shared memory declared outside a kernel");
  return Pool::Get().Shared(bytes, alignment);
}

void SyncThreads() {
  if (!on_worker) Misuse("__syncthreads() called outside a kernel");
  Pool::Get().SyncThreads();
}

int64_t LaunchCount() { return launches.load(); }

}  // namespace fromax::emulation
