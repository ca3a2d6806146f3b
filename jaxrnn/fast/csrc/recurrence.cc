// The time loops of the fast path as compiled CPU kernels, called through
// the XLA FFI (jaxrnn/fast/_cpu.py builds, loads and calls this file).
//
// One call runs all T steps of one direction of one layer, forward or the
// reverse recurrence of the VJP, for the Elman RNN (tanh, sigmoid, relu),
// the LSTM and the GRU. The input projection and the weight-gradient
// matmuls stay in XLA, one matmul each over all T; only the loops are here.
//
// Inside a call:
// - the hidden units are split over persistent threads (the calling thread
//   and `threads - 1` more, started once per call), all the gates of a unit
//   on one thread, so that every core is busy on every step;
// - the threads meet at one spinning barrier per step; the state they share
//   (h forward, the gate gradients backward) is double-buffered, so that
//   one barrier is enough;
// - the recurrent weights are packed once per call into panels of NV
//   vectors for a register-blocked microkernel (MR rows by NV vectors of
//   accumulators), and the gate arithmetic is fused into its epilogue: the
//   gates never leave the registers between the matmul and the new carry.
//
// Everything is float32. The vector width is the machine's, chosen by the
// compiler flags _cpu.py passes (-mavx512f, -mavx2, or none); the vectors
// are GCC's vector extensions, so the same source compiles for AVX-512,
// AVX2, SSE2 and NEON.
//
// The equations are those of jaxrnn/fast/_elman.py, _lstm.py and _gru.py,
// whose docstrings derive the gradients; tests/fast/test_cpu.py checks this
// file against the reference scan.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif
#if defined(__linux__)
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

#if defined(__AVX512F__)
constexpr int VW = 16;
constexpr int REGS = 32;
const char* const ENGINE = "avx512";
#elif defined(__AVX2__)
constexpr int VW = 8;
constexpr int REGS = 16;
const char* const ENGINE = "avx2";
#elif defined(__ARM_NEON)
constexpr int VW = 4;
constexpr int REGS = 32;
const char* const ENGINE = "neon";
#elif defined(__SSE2__)
constexpr int VW = 4;
constexpr int REGS = 16;
const char* const ENGINE = "sse2";
#else
constexpr int VW = 4;
constexpr int REGS = 16;
const char* const ENGINE = "generic";
#endif

#define INLINE inline __attribute__((always_inline))

typedef float vf __attribute__((vector_size(VW * 4)));
typedef int32_t vi __attribute__((vector_size(VW * 4)));

INLINE vf splat(float x) {
#if defined(__AVX512F__)
  return (vf)_mm512_set1_ps(x);
#elif defined(__AVX2__)
  return (vf)_mm256_set1_ps(x);
#else
  return vf{} + x;
#endif
}
INLINE vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
INLINE void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
// The first n lanes (0 < n <= VW), the rest zero.
INLINE vf load_n(const float* p, int n) {
  if (n == VW) return load(p);
  vf v = {};
  std::memcpy(&v, p, sizeof(float) * n);
  return v;
}
INLINE void store_n(float* p, vf v, int n) {
  if (n == VW) return store(p, v);
  std::memcpy(p, &v, sizeof(float) * n);
}
// max(a, b) and min(a, b) that keep a NaN in a, as jnp.maximum does: a NaN
// that reaches a step comes out of it, never a clamped number.
INLINE vf vmax(vf a, vf b) { return a < b ? b : a; }
INLINE vf vmin(vf a, vf b) { return a > b ? b : a; }
INLINE vf select(bool c, vf a, vf b) { return c ? a : b; }

// exp(x) - 1 and exp(x), by the Cephes expf polynomial on x = n ln2 + r,
// |r| <= ln2 / 2. expm1 keeps its relative accuracy near 0 (n = 0 there),
// which tanh needs. x is clamped to [-87, 88]: no inf, no NaN.
INLINE vf expm1_parts(vf x, vf* scale) {
  x = vmin(vmax(x, splat(-87.0f)), splat(88.0f));
  vf fx = x * 1.44269504088896341f;
  fx = fx + (fx >= 0 ? splat(0.5f) : splat(-0.5f));
  vi n = __builtin_convertvector(fx, vi);
  vf nf = __builtin_convertvector(n, vf);
  vf r = x - nf * 0.693359375f + nf * 2.12194440e-4f;
  vf p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  vf q = p * r * r + r;  // exp(r) - 1
  vi bits = (n + 127) << 23;
  std::memcpy(scale, &bits, sizeof bits);  // 2^n
  return *scale * q + (*scale - 1.0f);
}
INLINE vf vexp(vf x) {
  vf scale;
  return expm1_parts(x, &scale) + 1.0f;
}
// 1 / d for d >= 1 (all the divisions here): the hardware's estimate and
// one Newton step, a relative error of about 1e-7, at a fraction of a
// division's cost.
INLINE vf reciprocal(vf d) {
#if defined(__AVX512F__)
  vf r = (vf)_mm512_rcp14_ps((__m512)d);
  return r * (2.0f - d * r);
#elif defined(__AVX2__)
  vf r = (vf)_mm256_rcp_ps((__m256)d);
  r = r * (2.0f - d * r);
  return r * (2.0f - d * r);
#else
  return 1.0f / d;
#endif
}
INLINE vf vsigmoid(vf x) { return reciprocal(1.0f + vexp(-x)); }
INLINE vf vtanh(vf x) {
  vi bits, sign;
  std::memcpy(&bits, &x, sizeof x);
  sign = bits & int32_t(0x80000000u);
  vf a = x;
  a = a < 0 ? -a : a;
  vf scale;
  vf e = expm1_parts(a * -2.0f, &scale);  // in (-1, 0]
  vf t = -e * reciprocal(e + 2.0f);
  std::memcpy(&bits, &t, sizeof t);
  bits |= sign;
  std::memcpy(&t, &bits, sizeof t);
  return t;
}

enum Cell : int64_t { RNN = 0, LSTM = 1, GRU = 2 };
enum Act : int64_t { TANH = 0, SIGMOID = 1, RELU = 2 };

INLINE vf activate(int64_t act, vf z) {
  if (act == TANH) return vtanh(z);
  if (act == SIGMOID) return vsigmoid(z);
  return vmax(z, splat(0));
}
// g1'(z) from g1(z) = h.
INLINE vf activate_grad(int64_t act, vf h) {
  if (act == TANH) return 1.0f - h * h;
  if (act == SIGMOID) return h * (1.0f - h);
  return h > 0 ? splat(1) : splat(0);
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
// likely lost its CPU to another process, and the waiter
// sleeps on a futex, which frees its CPU for the partner to move to.
struct alignas(64) Barrier {
  explicit Barrier(int n) : n(n) {}
  void wait() {
    if (n == 1) return;
    int gen = generation.load(std::memory_order_acquire);
    if (count.fetch_add(1, std::memory_order_acq_rel) == n - 1) {
      count.store(0, std::memory_order_relaxed);
      generation.store(gen + 1, std::memory_order_release);
      if (sleepers.load(std::memory_order_acquire) > 0) wake();
      return;
    }
    for (int spins = 0; generation.load(std::memory_order_acquire) == gen;) {
      if (++spins < 1 << 11) {
        pause();
      } else {
        sleepers.fetch_add(1, std::memory_order_acq_rel);
        while (generation.load(std::memory_order_acquire) == gen) sleep(gen);
        sleepers.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
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

// Run fn(tid) for tid < threads: one on the caller when threads == 1, else
// each on a thread started here (the caller sleeps in join). Each thread
// starts on its own CPU of the caller's affinity set, and is then let free:
// left to itself, Linux may start a new thread on its parent's CPU and keep
// both there for milliseconds, so that threads that meet at a barrier take
// a time slice per step (measured: 15 ms instead of 0.8 ms for 1000 steps
// of a B=1, H=64 LSTM); kept pinned, a thread whose CPU another process
// takes cannot move to a free one.
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

// The microkernel: for rows r < MR and vectors v < NV,
//   acc[r][v] (+)= sum_{k < k_len} a[r * lda + k] * p[k * NV * VW + v * VW : +VW]
// starting from zero (first) or from the partial sums in `part`, then
// epi(r, acc[r]) (last) or back into `part`. p is a packed panel [K][NV * VW].
template <int MR, int NV, class Epi>
inline void block(const float* a, int64_t lda, int64_t k_len, const float* p,
                  float* part, bool first, bool last, Epi&& epi) {
  vf acc[MR][NV];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v)
      acc[r][v] = first ? vf{} : load(part + (r * NV + v) * VW);
  for (int64_t k = 0; k < k_len; ++k) {
    vf w[NV];
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) w[v] = load(p + (k * NV + v) * VW);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      vf x = splat(a[r * lda + k]);
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[r][v] += x * w[v];
    }
  }
  if (last) {
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) epi(r, acc[r]);
  } else {
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) store(part + (r * NV + v) * VW, acc[r][v]);
  }
}

// The largest row block whose accumulators, NV loads and a broadcast fit
// the vector registers.
template <int NV>
constexpr int rows_per_block() {
  int mr = (REGS - NV - 1) / NV;
  return mr < 1 ? 1 : (mr > 12 ? 12 : mr);
}

// Rows [b, batch) of panels [p0, p1), in blocks of MR rows and a
// remainder. For each row block: K in slices of KC, and for each slice every
// panel, so that the row block's slice of `a` stays in the L1 cache while
// the panels stream past it from L2 (`part` holds the partial sums between
// slices), and so that the epilogues of one row block touch few pages of
// the per-step arrays (rows of xw lie G * H floats apart).
template <int NV, int MR, class Epi>
void row_blocks(int64_t b, int64_t batch, const float* a, int64_t lda,
                int64_t k_len, const float* panels, int64_t p0, int64_t p1,
                float* part, const Epi& epi) {
  constexpr int64_t KC = std::max<int64_t>(64, (2048 / MR) / 16 * 16);
  for (; b + MR <= batch; b += MR) {
    for (int64_t k0 = 0; k0 < k_len; k0 += KC) {
      const int64_t k1 = std::min(k0 + KC, k_len);
      for (int64_t p = p0; p < p1; ++p)
        block<MR, NV>(a + b * lda + k0, lda, k1 - k0,
                      panels + (p * k_len + k0) * NV * VW,
                      part + (p - p0) * MR * NV * VW, k0 == 0, k1 == k_len,
                      [&](int r, vf* acc) { epi(p, b + r, acc); });
    }
  }
  if constexpr (MR > 1) {
    if (b < batch)
      row_blocks<NV, MR - 1>(b, batch, a, lda, k_len, panels, p0, p1, part, epi);
  }
}

// out = a [batch, K] @ panel p [K, NV * VW] for p in [p0, p1), then
// epi(p, row, accumulators) for each panel and row.
template <int NV, class Epi>
void rows(int64_t batch, const float* a, int64_t lda, int64_t k_len,
          const float* panels, int64_t p0, int64_t p1, const Epi& epi) {
  constexpr int MR = rows_per_block<NV>();
  thread_local std::vector<float> part;
  part.resize(std::max<int64_t>(1, (p1 - p0) * MR * NV * VW));
  row_blocks<NV, MR>(0, batch, a, lda, k_len, panels, p0, p1, part.data(), epi);
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The threads a call uses: at most one per panel, and one per MIN_FLOPS of
// the step's matmul, below which a barrier (about 0.3 us here) costs more
// than a thread saves (measured: B=1, H=64, an LSTM's step of 33 kFLOP runs
// at 49 GFLOP/s on one thread and 30 on two).
constexpr int64_t MIN_FLOPS = 1 << 18;
int threads_for(int requested, int64_t panels, int64_t step_flops) {
  int64_t most = std::min(panels, std::max<int64_t>(1, step_flops / MIN_FLOPS));
  return int(std::max<int64_t>(1, std::min<int64_t>(requested, most)));
}

// How many rows ahead the epilogues prefetch what they read and write.
constexpr int64_t PREFETCH = 8;

// The forward recurrence.
//
// Panels: NVF vectors each, `per` unit chunks of VW units by G gates (vector
// u * G + g holds gate g of chunk u). The packed panel is w_hh^T's columns
// for those gates and units, over k < H.
template <int64_t CELL>
struct Forward {
  static constexpr int G = CELL == LSTM ? 4 : (CELL == GRU ? 3 : 1);
  static constexpr int PER = CELL == RNN ? 2 : 1;  // unit chunks per panel
  static constexpr int NV = G * PER;

  int64_t T, B, H, Hp, act;
  bool save;
  const float *xw, *w_hh, *bias, *b_hn, *h0, *c0, *mask;
  float *hs, *cs, *saved, *h_t, *c_t;
  int64_t chunks, panels;
  std::vector<float> packed, hbuf, cbuf;

  void pack() {
    packed.assign(panels * H * NV * VW, 0.0f);
    for (int64_t p = 0; p < panels; ++p)
      for (int64_t k = 0; k < H; ++k)
        for (int v = 0; v < NV; ++v) {
          int64_t chunk = p * PER + v / G, g = v % G;
          for (int l = 0; l < VW; ++l) {
            int64_t j = chunk * VW + l;
            if (j < H)
              packed[((p * H + k) * NV + v) * VW + l] = w_hh[(g * H + j) * H + k];
          }
        }
  }

  bool run(int threads) {
    chunks = ceil_div(H, VW);
    Hp = chunks * VW;
    panels = ceil_div(chunks, PER);
    threads = threads_for(threads, panels, 2 * B * H * G * H);
    pack();
    hbuf.assign(2 * B * Hp, 0.0f);
    cbuf.assign(B * Hp, 0.0f);
    for (int64_t b = 0; b < B; ++b) {
      std::memcpy(&hbuf[b * Hp], h0 + b * H, sizeof(float) * H);
      if (CELL == LSTM) std::memcpy(&cbuf[b * Hp], c0 + b * H, sizeof(float) * H);
    }
    Barrier barrier(threads);
    bool ran = parallel(threads, [&](int tid) {
      int64_t p0 = panels * tid / threads, p1 = panels * (tid + 1) / threads;
      for (int64_t t = 0; t < T; ++t) {
        const float* h_prev = &hbuf[(t % 2) * B * Hp];
        float* h_next = &hbuf[((t + 1) % 2) * B * Hp];
        rows<NV>(B, h_prev, Hp, H, packed.data(), p0, p1,
                 [&](int64_t p, int64_t b, vf* acc) {
                   for (int u = 0; u < PER; ++u) {
                     int64_t chunk = p * PER + u;
                     if (chunk < chunks) step(t, b, chunk, acc + u * G, h_prev, h_next);
                   }
                 });
        barrier.wait();
      }
    });
    if (!ran) return false;
    const float* h_last = &hbuf[(T % 2) * B * Hp];
    for (int64_t b = 0; b < B; ++b) {
      std::memcpy(h_t + b * H, h_last + b * Hp, sizeof(float) * H);
      if (CELL == LSTM) std::memcpy(c_t + b * H, &cbuf[b * Hp], sizeof(float) * H);
    }
    return true;
  }

  // The lines that the epilogue of PREFETCH rows later will read and write
  // (the same chunk, or the next panel's), into the L2 cache while this
  // row computes. Without it every line is a miss: the rows of xw are
  // G * H floats apart, so each lies on its own page, where the hardware
  // prefetchers stop (measured: B=64, H=256, one thread: 52 ms, of which
  // 12 ms go to the loads of xw).
  inline void prefetch(int64_t t, int64_t b, int64_t chunk) {
    b += PREFETCH;
    if (b >= B) b -= B, chunk += PER;
    if (b >= B || chunk >= chunks) return;
    const int64_t u = chunk * VW, tb = t * B + b;
    for (int g = 0; g < G; ++g) __builtin_prefetch(xw + tb * G * H + g * H + u, 0, 2);
    __builtin_prefetch(hs + tb * H + u, 1, 2);
    if (save && CELL != RNN) {
      for (int g = 0; g < 4; ++g) __builtin_prefetch(saved + tb * 4 * H + u + g * H, 1, 2);
      if (CELL == LSTM) __builtin_prefetch(cs + tb * H + u, 1, 2);
    }
  }

  // One row and one chunk of units at step t, from the recurrent products.
  inline void step(int64_t t, int64_t b, int64_t chunk, const vf* acc,
                   const float* h_prev, float* h_next) {
    const int64_t u = chunk * VW;
    const int n = int(std::min<int64_t>(VW, H - u));
    const float* x = xw + (t * B + b) * G * H + u;
    const bool on = mask[t * B + b] != 0.0f;
    const int64_t row = (t * B + b) * H + u;
    prefetch(t, b, chunk);
    vf hp = load(h_prev + b * Hp + u);
    vf h;
    if (CELL == RNN) {
      vf z = acc[0] + load_n(x, n) + load_n(bias + u, n);
      h = select(on, activate(act, z), hp);
    } else if (CELL == LSTM) {
      vf z[4];
      for (int g = 0; g < 4; ++g)
        z[g] = acc[g] + load_n(x + g * H, n) + load_n(bias + g * H + u, n);
      vf i = vsigmoid(z[0]), f = vsigmoid(z[1]), gg = vtanh(z[2]), o = vsigmoid(z[3]);
      vf cp = load(&cbuf[b * Hp + u]);
      vf c = f * cp + i * gg;
      h = o * vtanh(c);
      h = select(on, h, hp);
      c = select(on, c, cp);
      store(&cbuf[b * Hp + u], c);
      if (save) {
        store_n(cs + row, c, n);
        float* s = saved + (t * B + b) * 4 * H + u;
        store_n(s, i, n);
        store_n(s + H, f, n);
        store_n(s + 2 * H, gg, n);
        store_n(s + 3 * H, o, n);
      }
    } else {  // GRU
      vf r = vsigmoid(acc[0] + load_n(x, n) + load_n(bias + u, n));
      vf z = vsigmoid(acc[1] + load_n(x + H, n) + load_n(bias + H + u, n));
      vf hn = acc[2] + load_n(b_hn + u, n);
      vf nn = vtanh(load_n(x + 2 * H, n) + load_n(bias + 2 * H + u, n) + r * hn);
      h = select(on, nn + z * (hp - nn), hp);
      if (save) {
        float* s = saved + (t * B + b) * 4 * H + u;
        store_n(s, r, n);
        store_n(s + H, z, n);
        store_n(s + 2 * H, nn, n);
        store_n(s + 3 * H, hn, n);
      }
    }
    // Padded units stay zero: their weights are zero, and h_next feeds the
    // next step's products.
    if (n < VW) {
      float lanes[VW];
      std::memcpy(lanes, &h, sizeof h);
      for (int l = n; l < VW; ++l) lanes[l] = 0.0f;
      std::memcpy(&h, lanes, sizeof h);
    }
    store(h_next + b * Hp + u, h);
    store_n(hs + row, h, n);
  }
};

// The reverse recurrence of the VJP.
//
// Step t, on each thread's own units: the gradients at the gate
// pre-activations, dz_t, from dL/dh_t (the carried gradient plus dy_t),
// into a shared buffer [B, G * Hp]; one barrier; then dh_{t-1} = dz_t @
// w_hh for the thread's own units (panels of NV chunks over the output
// units, reducing over all G * Hp gate columns), in which the next step's
// gate gradients are fused.
template <int64_t CELL>
struct Backward {
  static constexpr int G = CELL == LSTM ? 4 : (CELL == GRU ? 3 : 1);
  static constexpr int NV = 2;  // unit chunks per panel

  int64_t T, B, H, Hp, act;
  const float *w_hh, *saved, *hs, *cs, *h0, *c0, *dys, *dh_t, *dc_t, *mask;
  float *dxw, *dhw, *dh0, *dc0;
  int64_t chunks, panels;
  std::vector<float> packed, dz, dh, dc, dhz;

  void pack() {
    const int64_t K = G * Hp;
    packed.assign(panels * K * NV * VW, 0.0f);
    for (int64_t p = 0; p < panels; ++p)
      for (int64_t g = 0; g < G; ++g)
        for (int64_t j = 0; j < H; ++j)
          for (int v = 0; v < NV; ++v)
            for (int l = 0; l < VW; ++l) {
              int64_t k = (p * NV + v) * VW + l;
              if (k < H)
                packed[((p * K + g * Hp + j) * NV + v) * VW + l] =
                    w_hh[(g * H + j) * H + k];
            }
  }

  bool run(int threads) {
    chunks = ceil_div(H, VW);
    Hp = chunks * VW;
    panels = ceil_div(chunks, NV);
    threads = threads_for(threads, panels, 2 * B * H * G * H);
    pack();
    dz.assign(2 * B * G * Hp, 0.0f);
    dh.assign(B * Hp, 0.0f);
    dc.assign(B * Hp, 0.0f);
    dhz.assign(B * Hp, 0.0f);
    for (int64_t b = 0; b < B; ++b) {
      std::memcpy(&dh[b * Hp], dh_t + b * H, sizeof(float) * H);
      if (CELL == LSTM) std::memcpy(&dc[b * Hp], dc_t + b * H, sizeof(float) * H);
    }
    Barrier barrier(threads);
    bool ran = parallel(threads, [&](int tid) {
      int64_t p0 = panels * tid / threads, p1 = panels * (tid + 1) / threads;
      int64_t c0_ = std::min(p0 * NV, chunks), c1_ = std::min(p1 * NV, chunks);
      if (T > 0)
        for (int64_t b = 0; b < B; ++b)
          for (int64_t c = c0_; c < c1_; ++c) gates(T - 1, b, c);
      for (int64_t t = T - 1; t >= 0; --t) {
        barrier.wait();
        const float* dz_t = &dz[(t % 2) * B * G * Hp];
        rows<NV>(B, dz_t, G * Hp, G * Hp, packed.data(), p0, p1,
                 [&](int64_t p, int64_t b, vf* acc) {
                   for (int v = 0; v < NV; ++v) {
                     int64_t c = p * NV + v;
                     if (c >= chunks) break;
                     const int64_t u = c * VW;
                     if (mask[t * B + b] != 0.0f) {
                       vf d = acc[v];
                       if (CELL == GRU) d += load(&dhz[b * Hp + u]);
                       store(&dh[b * Hp + u], d);
                     }
                     if (t > 0) gates(t - 1, b, c);
                   }
                 });
      }
    });
    if (!ran) return false;
    for (int64_t b = 0; b < B; ++b) {
      std::memcpy(dh0 + b * H, &dh[b * Hp], sizeof(float) * H);
      if (CELL == LSTM) std::memcpy(dc0 + b * H, &dc[b * Hp], sizeof(float) * H);
    }
    return true;
  }

  // What gates() PREFETCH rows later reads and writes (see
  // Forward::prefetch).
  inline void prefetch(int64_t t, int64_t b, int64_t chunk) {
    b += PREFETCH;
    if (b >= B) b -= B, chunk += 1;
    if (b >= B || chunk >= chunks) return;
    const int64_t u = chunk * VW, tb = t * B + b, row = tb * H + u;
    __builtin_prefetch(dys + row, 0, 2);
    for (int g = 0; g < G; ++g) __builtin_prefetch(dxw + tb * G * H + u + g * H, 1, 2);
    if (CELL == RNN) {
      __builtin_prefetch(hs + row, 0, 2);
      return;
    }
    for (int g = 0; g < 4; ++g) __builtin_prefetch(saved + tb * 4 * H + u + g * H, 0, 2);
    if (CELL == LSTM) {
      __builtin_prefetch(cs + row, 0, 2);
      if (t > 0) __builtin_prefetch(cs + row - B * H, 0, 2);
    }
    if (CELL == GRU) {
      if (t > 0) __builtin_prefetch(hs + row - B * H, 0, 2);
      for (int g = 0; g < G; ++g) __builtin_prefetch(dhw + tb * G * H + u + g * H, 1, 2);
    }
  }

  // The gate gradients of one row and one chunk at step t into dz (and the
  // outputs dxw, dhw); the LSTM's dc carried to step t - 1.
  inline void gates(int64_t t, int64_t b, int64_t chunk) {
    const int64_t u = chunk * VW;
    const int n = int(std::min<int64_t>(VW, H - u));
    const bool on = mask[t * B + b] != 0.0f;
    const int64_t row = (t * B + b) * H + u;
    prefetch(t, b, chunk);
    float* dz_t = &dz[((t % 2) * B + b) * G * Hp + u];
    float* out = dxw + (t * B + b) * G * H + u;
    vf zero = {};
    if (!on) {
      for (int g = 0; g < G; ++g) {
        store(dz_t + g * Hp, zero);
        store_n(out + g * H, zero, n);
        if (CELL == GRU) store_n(dhw + (t * B + b) * G * H + u + g * H, zero, n);
      }
      return;
    }
    vf d = load(&dh[b * Hp + u]) + load_n(dys + row, n);
    if (CELL == RNN) {
      vf g = d * activate_grad(act, load_n(hs + row, n));
      store(dz_t, g);
      store_n(out, g, n);
    } else if (CELL == LSTM) {
      const float* s = saved + (t * B + b) * 4 * H + u;
      vf i = load_n(s, n), f = load_n(s + H, n), gg = load_n(s + 2 * H, n),
         o = load_n(s + 3 * H, n);
      vf tc = vtanh(load_n(cs + row, n));
      vf cp = t > 0 ? load_n(cs + row - B * H, n) : load_n(c0 + b * H + u, n);
      vf dcell = load(&dc[b * Hp + u]) + d * o * (1.0f - tc * tc);
      vf g4[4] = {dcell * gg * i * (1.0f - i), dcell * cp * f * (1.0f - f),
                  dcell * i * (1.0f - gg * gg), d * tc * o * (1.0f - o)};
      for (int g = 0; g < 4; ++g) {
        store(dz_t + g * Hp, g4[g]);
        store_n(out + g * H, g4[g], n);
      }
      store(&dc[b * Hp + u], dcell * f);
    } else {  // GRU
      const float* s = saved + (t * B + b) * 4 * H + u;
      vf r = load_n(s, n), z = load_n(s + H, n), nn = load_n(s + 2 * H, n),
         hn = load_n(s + 3 * H, n);
      vf hp = t > 0 ? load_n(hs + row - B * H, n) : load_n(h0 + b * H + u, n);
      vf dn = d * (1.0f - z) * (1.0f - nn * nn);
      vf dr = dn * hn * r * (1.0f - r);
      vf dzz = d * (hp - nn) * z * (1.0f - z);
      vf dhn = dn * r;
      float* outh = dhw + (t * B + b) * G * H + u;
      store(dz_t, dr);
      store(dz_t + Hp, dzz);
      store(dz_t + 2 * Hp, dhn);
      store_n(out, dr, n);
      store_n(out + H, dzz, n);
      store_n(out + 2 * H, dn, n);
      store_n(outh, dr, n);
      store_n(outh + H, dzz, n);
      store_n(outh + 2 * H, dhn, n);
      store(&dhz[b * Hp + u], d * z);
    }
  }
};

// Shape checks: a mismatch is a bug in _cpu.py, reported, never a crash.
template <class Dims>
ffi::Error expect(Dims dims, std::vector<int64_t> shape, const char* name) {
  if (dims.size() == shape.size() &&
      std::equal(dims.begin(), dims.end(), shape.begin()))
    return ffi::Error::Success();
  std::string got;
  for (auto d : dims) got += std::to_string(d) + ",";
  return ffi::Error::InvalidArgument(std::string("jaxrnn cpu kernel: ") + name +
                                     " has shape [" + got + "]");
}

#define CHECK(expr)                       \
  do {                                    \
    ffi::Error e_ = (expr);               \
    if (e_.failure()) return e_;          \
  } while (0)

ffi::Error no_threads(int64_t threads) {
  return ffi::Error::Internal("jaxrnn cpu kernel: could not start " +
                              std::to_string(threads) +
                              " threads (set JAXRNN_THREADS lower)");
}

using F32 = ffi::Buffer<ffi::F32>;
using OutF32 = ffi::ResultBuffer<ffi::F32>;

int64_t gates_of(int64_t cell) { return cell == LSTM ? 4 : (cell == GRU ? 3 : 1); }

ffi::Error forward_impl(F32 xw, F32 w_hh, F32 bias, F32 b_hn, F32 h0, F32 c0,
                        F32 mask, OutF32 hs, OutF32 cs, OutF32 saved, OutF32 h_t,
                        OutF32 c_t, int64_t cell, int64_t act, int64_t threads,
                        bool save) {
  auto d = xw.dimensions();
  if (d.size() != 3) return ffi::Error::InvalidArgument("xw must be [T, B, G*H]");
  const int64_t T = d[0], B = d[1], G = gates_of(cell), H = d[2] / G;
  CHECK(expect(w_hh.dimensions(), {G * H, H}, "w_hh"));
  CHECK(expect(bias.dimensions(), {G * H}, "b"));
  CHECK(expect(h0.dimensions(), {B, H}, "h0"));
  CHECK(expect(mask.dimensions(), {T, B}, "mask"));
  auto common = [&](auto& k) {
    k.T = T, k.B = B, k.H = H, k.act = act, k.save = save;
    k.xw = xw.typed_data(), k.w_hh = w_hh.typed_data(), k.bias = bias.typed_data();
    k.b_hn = b_hn.typed_data(), k.h0 = h0.typed_data(), k.c0 = c0.typed_data();
    k.mask = mask.typed_data(), k.hs = hs->typed_data(), k.cs = cs->typed_data();
    k.saved = saved->typed_data(), k.h_t = h_t->typed_data();
    k.c_t = c_t->typed_data();
    return k.run(int(threads));
  };
  if (cell == LSTM) {
    CHECK(expect(c0.dimensions(), {B, H}, "c0"));
    Forward<LSTM> k;
    if (!common(k)) return no_threads(threads);
  } else if (cell == GRU) {
    CHECK(expect(b_hn.dimensions(), {H}, "b_hn"));
    Forward<GRU> k;
    if (!common(k)) return no_threads(threads);
  } else {
    Forward<RNN> k;
    if (!common(k)) return no_threads(threads);
  }
  return ffi::Error::Success();
}

ffi::Error backward_impl(F32 w_hh, F32 saved, F32 hs, F32 cs, F32 h0, F32 c0,
                         F32 dys, F32 dh_t, F32 dc_t, F32 mask, OutF32 dxw,
                         OutF32 dhw, OutF32 dh0, OutF32 dc0, int64_t cell,
                         int64_t act, int64_t threads) {
  auto d = hs.dimensions();
  if (d.size() != 3) return ffi::Error::InvalidArgument("hs must be [T, B, H]");
  const int64_t T = d[0], B = d[1], H = d[2], G = gates_of(cell);
  CHECK(expect(w_hh.dimensions(), {G * H, H}, "w_hh"));
  CHECK(expect(dys.dimensions(), {T, B, H}, "dys"));
  CHECK(expect(dh_t.dimensions(), {B, H}, "dh_t"));
  CHECK(expect(mask.dimensions(), {T, B}, "mask"));
  auto common = [&](auto& k) {
    k.T = T, k.B = B, k.H = H, k.act = act;
    k.w_hh = w_hh.typed_data(), k.saved = saved.typed_data();
    k.hs = hs.typed_data(), k.cs = cs.typed_data(), k.h0 = h0.typed_data();
    k.c0 = c0.typed_data(), k.dys = dys.typed_data(), k.dh_t = dh_t.typed_data();
    k.dc_t = dc_t.typed_data(), k.mask = mask.typed_data();
    k.dxw = dxw->typed_data(), k.dhw = dhw->typed_data();
    k.dh0 = dh0->typed_data(), k.dc0 = dc0->typed_data();
    return k.run(int(threads));
  };
  if (cell == LSTM) {
    CHECK(expect(saved.dimensions(), {T, B, 4 * H}, "saved"));
    CHECK(expect(cs.dimensions(), {T, B, H}, "cs"));
    Backward<LSTM> k;
    if (!common(k)) return no_threads(threads);
  } else if (cell == GRU) {
    CHECK(expect(saved.dimensions(), {T, B, 4 * H}, "saved"));
    Backward<GRU> k;
    if (!common(k)) return no_threads(threads);
  } else {
    Backward<RNN> k;
    if (!common(k)) return no_threads(threads);
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxrnnForward, forward_impl,
                              ffi::Ffi::Bind()
                                  .Arg<F32>()
                                  .Arg<F32>()
                                  .Arg<F32>()
                                  .Arg<F32>()
                                  .Arg<F32>()
                                  .Arg<F32>()
                                  .Arg<F32>()
                                  .Ret<F32>()
                                  .Ret<F32>()
                                  .Ret<F32>()
                                  .Ret<F32>()
                                  .Ret<F32>()
                                  .Attr<int64_t>("cell")
                                  .Attr<int64_t>("activation")
                                  .Attr<int64_t>("threads")
                                  .Attr<bool>("save"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxrnnBackward, backward_impl,
                              ffi::Ffi::Bind()
                                  .Arg<F32>()
                                  .Arg<F32>()
                                  .Arg<F32>()
                                  .Arg<F32>()
                                  .Arg<F32>()
                                  .Arg<F32>()
                                  .Arg<F32>()
                                  .Arg<F32>()
                                  .Arg<F32>()
                                  .Arg<F32>()
                                  .Ret<F32>()
                                  .Ret<F32>()
                                  .Ret<F32>()
                                  .Ret<F32>()
                                  .Attr<int64_t>("cell")
                                  .Attr<int64_t>("activation")
                                  .Attr<int64_t>("threads"));

namespace {

// The recurrent matmul alone, as the forward kernel runs it: `steps` times
// h [B, H] @ w_hh^T [H, G * H] on `threads` threads with one barrier per
// step, the accumulators stored to an output. For the GEMM-engine
// measurements (benchmarks/bench_gemm_engines.py).
template <int G>
double gemm_seconds(int64_t B, int64_t H, int threads, int64_t steps) {
  constexpr int NV = G;
  const int64_t chunks = ceil_div(H, VW), Hp = chunks * VW, panels = chunks;
  threads = threads_for(threads, panels, 2 * B * H * G * H);
  std::vector<float> packed(panels * H * NV * VW), h(B * Hp), out(B * G * Hp);
  for (size_t i = 0; i < packed.size(); ++i) packed[i] = float(i % 7) * 0.01f;
  for (size_t i = 0; i < h.size(); ++i) h[i] = float(i % 5) * 0.1f;
  Barrier barrier(threads);
  auto start = std::chrono::steady_clock::now();
  bool ran = parallel(threads, [&](int tid) {
    int64_t p0 = panels * tid / threads, p1 = panels * (tid + 1) / threads;
    for (int64_t t = 0; t < steps; ++t) {
      rows<NV>(B, h.data(), Hp, H, packed.data(), p0, p1,
               [&](int64_t p, int64_t b, vf* acc) {
                 for (int v = 0; v < NV; ++v)
                   store(&out[(b * G + v) * Hp + p * VW], acc[v]);
               });
      barrier.wait();
    }
  });
  if (!ran) return -1.0;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

extern "C" double jaxrnn_gemm_seconds(int64_t B, int64_t H, int64_t G,
                                      int64_t threads, int64_t steps) {
  if (G == 4) return gemm_seconds<4>(B, H, int(threads), steps);
  if (G == 3) return gemm_seconds<3>(B, H, int(threads), steps);
  return gemm_seconds<1>(B, H, int(threads), steps);
}

// What the library was built for, read by _cpu.py with ctypes.
extern "C" const char* jaxrnn_engine() { return ENGINE; }
extern "C" int jaxrnn_vector_width() { return VW; }
