// The threads of one kernel call, where they meet, the memory they reuse,
// and how many of them a call takes when other processes want the cores.
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>
#include <cstdio>

#if defined(__linux__)
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace jaxrnn {

inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline void pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// A barrier that spins, then sleeps: the threads of one call meet here once
// per step. A step is microseconds, so a waiter spins first (2^11 pauses,
// an estimated tens of microseconds, not timed); past that, a partner has
// likely lost its CPU to another process, and the waiter sleeps on a futex,
// which frees its CPU for the partner to move to. Each waiter adds the
// nanoseconds it waited to `waited`, which the Governor reads.
struct alignas(64) Barrier {
  explicit Barrier(int n) : n(n) {}
  void wait(int64_t& waited) {
    if (n == 1) return;
    int gen = generation.load(std::memory_order_acquire);
    if (count.fetch_add(1, std::memory_order_acq_rel) == n - 1) {
      count.store(0, std::memory_order_relaxed);
      generation.store(gen + 1, std::memory_order_release);
      if (sleepers.load(std::memory_order_acquire) > 0) wake();
      return;
    }
    const int64_t start = now_ns();
    for (int spins = 0; generation.load(std::memory_order_acquire) == gen;) {
      if (++spins < 1 << 11) {
        pause();
      } else {
        sleepers.fetch_add(1, std::memory_order_acq_rel);
        while (generation.load(std::memory_order_acquire) == gen) sleep(gen);
        sleepers.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
    waited += now_ns() - start;
  }
  void sleep(int gen) {
#if defined(__linux__)
    syscall(SYS_futex, reinterpret_cast<int*>(&generation), FUTEX_WAIT_PRIVATE, gen,
            nullptr, nullptr, 0);
#else
    std::this_thread::yield();
#endif
  }
  void wake() {
#if defined(__linux__)
    syscall(SYS_futex, reinterpret_cast<int*>(&generation), FUTEX_WAKE_PRIVATE,
            INT32_MAX, nullptr, nullptr, 0);
#endif
  }
  const int n;
  alignas(64) std::atomic<int> count{0};
  alignas(64) std::atomic<int> generation{0};
  alignas(64) std::atomic<int> sleepers{0};
};
static_assert(sizeof(std::atomic<int>) == sizeof(int), "the futex is an int");

// Run fn(tid) for tid < threads: on the caller when threads == 1, else each
// on a thread started here (the caller sleeps in join). Each thread starts
// on its own CPU of the caller's affinity set, and is then let free: left
// to itself, Linux may start a new thread on its parent's CPU and keep both
// there for milliseconds, so that threads that meet at a barrier take a
// time slice per step (measured: 15 ms instead of 0.8 ms for 1000 steps of
// a B=1, H=64 LSTM); kept pinned, a thread whose CPU another process takes
// cannot move to a free one.
//
// Returns false, having run nothing, when the threads cannot all be started.
template <class F>
bool parallel(int threads, F&& fn) {
  if (threads == 1) {
    fn(0);
    return true;
  }
#if defined(__linux__)
  cpu_set_t allowed;
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof allowed, &allowed) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  std::atomic<int> go{0};  // 1: run, 2: give up
  struct Start {
    F* fn;
    int tid;
    cpu_set_t* allowed;
    std::atomic<int>* go;
  };
  std::vector<Start> starts(threads);
  std::vector<pthread_t> pool;
  pool.reserve(threads);
  auto body = [](void* arg) -> void* {
    auto* start = static_cast<Start*>(arg);
    while (start->go->load(std::memory_order_acquire) == 0) std::this_thread::yield();
    if (start->go->load(std::memory_order_acquire) == 1) {
      pthread_setaffinity_np(pthread_self(), sizeof(cpu_set_t), start->allowed);
      (*start->fn)(start->tid);
    }
    return nullptr;
  };
  for (int t = 0; t < threads; ++t) {
    starts[t] = {&fn, t, &allowed, &go};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (cpus.size() >= size_t(threads)) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpus[t], &one);
      pthread_attr_setaffinity_np(&attr, sizeof one, &one);
    }
    pthread_t th;
    bool ok = pthread_create(&th, &attr, body, &starts[t]) == 0;
    pthread_attr_destroy(&attr);
    if (!ok) break;
    pool.push_back(th);
  }
  const bool all = pool.size() == size_t(threads);
  go.store(all ? 1 : 2, std::memory_order_release);
  for (auto& th : pool) pthread_join(th, nullptr);
  return all;
#else
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(fn, t);
  for (auto& th : pool) th.join();
  return true;
#endif
}

// How many threads calls take when other processes compete for the cores.
// A call reports how long its threads waited at the barriers beyond what
// its own split of the work explains. On an idle machine that excess is a
// few percent to about 18% of the threads' time (measured on 2-core VMs,
// where a core's speed wanders); beside one busy process on a 2-core
// machine it is about 40%, every call: a thread keeps losing its core, and
// its partners wait for it. After STRIKES calls in a row above LIMIT,
// later calls take a quarter fewer threads (at least one fewer). A probe
// then gives back one thread every `interval`: if the contention is still
// there, the cap falls again and the interval doubles (up to MAX_NS), so
// that a long-running competitor costs a few slow calls a minute; once
// calls run clean, the interval returns to PROBE_NS.
class Governor {
 public:
  static constexpr double LIMIT = 0.3;
  static constexpr int STRIKES = 3;
  static constexpr int64_t PROBE_NS = 2'000'000'000, MAX_NS = 64'000'000'000;

  int limit(int requested) {
    if (off_) return requested;
    std::lock_guard<std::mutex> lock(mutex_);
    if (cap_ < requested && now_ns() - since_ > interval_) {
      cap_ += 1;
      since_ = now_ns();
      probing_ = true;
    }
    return std::max(1, std::min(requested, cap_));
  }
  // `waited`: the threads' waits together; `expected`: the part of them that
  // the split explains, as a fraction of threads x elapsed.
  void report(int threads, int64_t elapsed_ns, int64_t waited, double expected) {
    if (off_ || threads < 2 || elapsed_ns < 1'000'000) return;
    const double excess = double(waited) / (double(threads) * elapsed_ns) - expected;
    std::lock_guard<std::mutex> lock(mutex_);
    if (excess <= LIMIT) {
      strikes_ = 0;
      if (probing_ && now_ns() - since_ > interval_ / 2) probing_ = false, interval_ = PROBE_NS;
      return;
    }
    if (++strikes_ < STRIKES) return;
    strikes_ = 0;
    cap_ = std::max(1, threads - std::max(1, threads / 4));
    interval_ = probing_ ? std::min(2 * interval_, MAX_NS) : PROBE_NS;
    probing_ = false;
    since_ = now_ns();
    contended_ += 1;
  }
  int cap() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cap_;
  }
  int64_t contended() {
    std::lock_guard<std::mutex> lock(mutex_);
    return contended_;
  }

 private:
  const bool off_ = [] {
    const char* v = std::getenv("JAXRNN_ADAPT_THREADS");
    return v && v[0] == '0';
  }();
  std::mutex mutex_;
  int cap_ = INT_MAX, strikes_ = 0;
  bool probing_ = false;
  int64_t since_ = 0, interval_ = PROBE_NS, contended_ = 0;
};

Governor& governor();

// Time per phase of a call on thread 0, printed to stderr: compiled in only
// with -DJAXRNN_PROFILE (for tuning; never in a built library).
#if defined(JAXRNN_PROFILE)
struct Phases {
  int64_t ns[4] = {}, last = now_ns();
  int tid = 0;
  void mark(int i) {
    int64_t t = now_ns();
    ns[i] += t - last;
    last = t;
  }
  ~Phases() {
    if (ns[0] + ns[1] + ns[2] + ns[3] == 0) return;
    fprintf(stderr, "[phases%d] %.2f %.2f %.2f %.2f ms\n", tid, ns[0] / 1e6, ns[1] / 1e6,
            ns[2] / 1e6, ns[3] / 1e6);
  }
};
#define PHASES Phases phases_
#define PHASE(i) \
  phases_.tid = tid; \
  phases_.mark(i)
#else
#define PHASES
#define PHASE(i)
#endif

// Memory that outlives a call: grown when a call needs more, never given
// back, so that a training loop's calls touch no fresh pages (a fresh page
// costs a fault on its first touch).
struct Buffer {
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : data(o.data), size(o.size) {
    o.data = nullptr;
    o.size = 0;
  }
  float* data = nullptr;
  size_t size = 0;
  float* get(size_t n) {
    if (n > size) {
      std::free(data);
      size_t bytes = (std::max<size_t>(n, 1) * sizeof(float) + 63) / 64 * 64;
      data = static_cast<float*>(std::aligned_alloc(64, bytes));
      size = data ? n : 0;
    }
    return data;
  }
  ~Buffer() { std::free(data); }
};

// The buffers of one call. A call leases one from a process-wide pool and
// returns it when done; calls that run at once get one each.
struct Workspace {
  Buffer shared[12];
  std::vector<Buffer> thread[3];  // per thread, three of them
  float* get(int i, size_t n) { return check(shared[i].get(n)); }
  float* mine(int i, int tid, size_t n) { return check(thread[i][tid].get(n)); }
  void threads(int count) {
    for (auto& t : thread)
      if (int(t.size()) < count) t.resize(count);
  }
  float* check(float* p) {
    if (!p) failed = true;
    return p;
  }
  bool failed = false;  // an allocation failed (set before threads start)
};

class Lease {
 public:
  Lease();
  ~Lease();
  Workspace& operator*() { return *ws_; }

 private:
  Workspace* ws_;
};

}  // namespace jaxrnn
