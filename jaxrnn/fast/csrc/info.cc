// What _cpu_build.py reads with ctypes: what the library was built for,
// the ids of its cells and activations, the blocking it chose for this
// CPU and the Governor's state; and the engine alone, for the tests
// (jaxrnn_matmul) and the benchmarks (jaxrnn_gemm_seconds).

#include <chrono>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <cstring>
#include <vector>

#include "cells.h"
#include "forward.h"
#include "gemm.h"
#include "gemm_bf16.h"
#include "threads.h"

using namespace jaxrnn;

extern "C" {

const char* jaxrnn_isa() { return ISA; }
// 1 where the build has the bfloat16 products (AVX512-BF16, gemm_bf16.h).
int jaxrnn_bf16() { return HAS_BF16 ? 1 : 0; }
int jaxrnn_vector_width() { return VW; }
// "name=id" pairs, in the enums' order.
const char* jaxrnn_cells() { return "rnn=0 lstm=1 gru=2 indrnn=3"; }
const char* jaxrnn_activations() { return "tanh=0 sigmoid=1 relu=2"; }
static_assert(int64_t(Cell::RNN) == 0 && int64_t(Cell::LSTM) == 1 && int64_t(Cell::GRU) == 2 &&
                  int64_t(Cell::INDRNN) == 3,
              "jaxrnn_cells() lists the enum");
static_assert(int64_t(Act::TANH) == 0 && int64_t(Act::SIGMOID) == 1 && int64_t(Act::RELU) == 2,
              "jaxrnn_activations() lists the enum");

int64_t jaxrnn_cache_bytes(int level) { return level == 1 ? tiling().l1 : tiling().l2; }
// The contraction slice for panels of nv vectors, and the row block.
int64_t jaxrnn_k_slice(int nv) {
  switch (nv) {
    case 1: return tiling().kc(rows_per_block<1>());
    case 2: return tiling().kc(rows_per_block<2>());
    case 3: return tiling().kc(rows_per_block<3>());
    default: return tiling().kc(rows_per_block<4>());
  }
}
int jaxrnn_rows_per_block(int nv) {
  switch (nv) {
    case 1: return rows_per_block<1>();
    case 2: return rows_per_block<2>();
    case 3: return rows_per_block<3>();
    default: return rows_per_block<4>();
  }
}
int jaxrnn_thread_cap() { return governor().cap(); }

// Ask glibc's malloc to keep freed memory for the next allocation, rather
// than give it back to the system at once: blocks up to 32 MiB (the most it
// allows) come from its heaps instead of fresh mappings, and up to 1 GiB of
// free memory stays at the top of a heap. XLA allocates each call's buffers
// afresh, so without this a training step first-touches its arrays anew
// on every call, at a page fault per 4 KiB. Returns 1 where it took effect.
int jaxrnn_keep_memory() {
#if defined(__GLIBC__)
  return mallopt(M_MMAP_THRESHOLD, 1 << 30) && mallopt(M_TRIM_THRESHOLD, 1 << 30);
#else
  return 0;
#endif
}
int64_t jaxrnn_contended_calls() { return governor().contended(); }

}  // extern "C"

namespace {

// c [m, n] = op(a) @ b [k, n] on the kernels' engine, one thread, panels of
// NV vectors: op(a) is a [m, k], or a [k, m] transposed when ta.
template <int NV>
void matmul(int64_t m, int64_t n, int64_t k, const float* a, bool ta, const float* b,
            float* c, int64_t kc) {
  const int64_t panels = ceil_div(ceil_div(n, VW), NV);
  std::vector<float> pk(std::max<int64_t>(1, panels * k * NV * VW), 0.0f);
  for (int64_t p = 0; p < panels; ++p)
    for (int64_t kk = 0; kk < k; ++kk)
      for (int64_t j = 0; j < NV * VW; ++j) {
        const int64_t col = p * NV * VW + j;
        if (col < n) pk[(p * k + kk) * NV * VW + j] = b[kk * n + col];
      }
  std::vector<float> part(part_size<NV>(0, panels));
  const Seg seg{a, 0, k};
  auto epi = [&](int64_t p, int64_t r, const vf* acc) {
    for (int v = 0; v < NV; ++v) {
      const int64_t col = (p * NV + v) * VW;
      if (col >= n) break;
      store_n(c + r * n + col, acc[v], int(std::min<int64_t>(VW, n - col)));
    }
  };
  if (kc <= 0) kc = tiling().kc(rows_per_block<NV>());
  if (ta)
    gemm<NV, true>(0, m, m, &seg, 1, packed<NV>(pk.data(), k), 0, panels, kc, part.data(),
                   Zero{}, epi);
  else
    gemm<NV, false>(0, m, k, &seg, 1, packed<NV>(pk.data(), k), 0, panels, kc,
                    part.data(), Zero{}, epi);
}

// `steps` times h [B, H] @ w_hh^T [H, G * H], the recurrent matmul alone as
// the forward pass runs it: on `threads` threads with a barrier per step,
// the accumulators stored to an output.
template <int G>
double gemm_seconds(int64_t B, int64_t H, int threads, int64_t steps) {
  constexpr int NV = G;
  const int64_t chunks = ceil_div(H, VW), Hp = chunks * VW, panels = chunks;
  threads = threads_for(threads, panels, 2 * B * H * G * H);
  std::vector<float> pk(panels * H * NV * VW), h(B * Hp), out(B * G * Hp);
  for (size_t i = 0; i < pk.size(); ++i) pk[i] = float(i % 7) * 0.01f;
  for (size_t i = 0; i < h.size(); ++i) h[i] = float(i % 5) * 0.1f;
  std::vector<std::vector<float>> parts(threads);
  for (int t = 0; t < threads; ++t) parts[t].resize(part_size<NV>(0, ceil_div(panels, threads)));
  const int64_t kc = tiling().kc(rows_per_block<NV>());
  Barrier barrier(threads);
  auto start = std::chrono::steady_clock::now();
  bool ran = parallel(threads, [&](int tid) {
    int64_t p0 = panels * tid / threads, p1 = panels * (tid + 1) / threads, wait = 0;
    const Seg seg{h.data(), 0, H};
    for (int64_t t = 0; t < steps; ++t) {
      gemm<NV, false>(0, B, Hp, &seg, 1, packed<NV>(pk.data(), H), p0, p1, kc,
                      parts[tid].data(), Zero{}, [&](int64_t p, int64_t b, const vf* acc) {
                        for (int v = 0; v < NV; ++v)
                          store(&out[(b * G + v) * Hp + p * VW], acc[v]);
                      });
      barrier.wait(wait);
    }
  });
  if (!ran) return -1.0;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The time of the float32 products over that of the bfloat16 products, for
// one thread's share of an LSTM step (B = 64, K = H = 256, 8 panels of 4
// vectors), best of 15 runs of each, alternating; 0 without the bfloat16
// products. Where it is not above 1, the policy runs as ROUND (float32
// products of rounded operands), which costs what float32 does.
double bf16_speedup() {
  if (!HAS_BF16) return 0.0;
  constexpr int NV = 4;
  const int64_t B = 64, K = 256, panels = 8;
  std::vector<float> pk(panels * K * NV * VW), a(B * K), part(part_size<NV>(0, panels));
  std::vector<uint16_t> pb(panels * K * NV * VW), ab(B * K);
  for (size_t i = 0; i < pk.size(); ++i) pk[i] = float(i % 7) * 0.01f, pb[i] = to_bf16(pk[i]);
  for (size_t i = 0; i < a.size(); ++i) a[i] = float(i % 5) * 0.1f, ab[i] = to_bf16(a[i]);
  float sink = 0;
  auto epi = [&](int64_t, int64_t, const vf* acc) { sink += acc[0][0]; };
  const int64_t kc = tiling().kc(rows_per_block<NV>());
  double f32 = 1e9, bf = 1e9;
  for (int run = 0; run < 15; ++run) {
    auto t0 = std::chrono::steady_clock::now();
    const Seg seg{a.data(), 0, K};
    gemm<NV, false>(0, B, K, &seg, 1, packed<NV>(pk.data(), K), 0, panels, kc, part.data(),
                    Zero{}, epi);
    auto t1 = std::chrono::steady_clock::now();
    gemm_bf16<NV>(B, ab.data(), K, pb.data(), K / 2, 0, panels, epi);
    auto t2 = std::chrono::steady_clock::now();
    f32 = std::min(f32, std::chrono::duration<double>(t1 - t0).count());
    bf = std::min(bf, std::chrono::duration<double>(t2 - t1).count());
  }
  return sink == -1.0f ? 0.0 : f32 / bf;
}

}  // namespace

extern "C" {

double jaxrnn_bf16_speedup() { return bf16_speedup(); }

int jaxrnn_matmul(int64_t m, int64_t n, int64_t k, const float* a, int ta, const float* b,
                  float* c, int nv, int64_t kc) {
  switch (nv) {
    case 1: matmul<1>(m, n, k, a, ta, b, c, kc); return 0;
    case 2: matmul<2>(m, n, k, a, ta, b, c, kc); return 0;
    case 3: matmul<3>(m, n, k, a, ta, b, c, kc); return 0;
    case 4: matmul<4>(m, n, k, a, ta, b, c, kc); return 0;
  }
  return 1;
}

double jaxrnn_gemm_seconds(int64_t B, int64_t H, int64_t G, int64_t threads, int64_t steps) {
  if (G == 4) return gemm_seconds<4>(B, H, int(threads), steps);
  if (G == 3) return gemm_seconds<3>(B, H, int(threads), steps);
  return gemm_seconds<1>(B, H, int(threads), steps);
}

}  // extern "C"
