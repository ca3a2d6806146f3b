// The forward pass of one direction of one layer, all T steps in one call:
// the input projection and the recurrence, on the threads of threads.h.
//
// The hidden units are split into panels, and each thread owns a run of
// them: all G gates of a unit on one thread. For each chunk of time steps
// a thread first projects the chunk's inputs onto its own units' gates,
//   xw = x_t @ w_ih^T + b     (one matmul over the chunk's steps x batch)
// into a buffer of its own that fits its L2 cache, then runs the chunk's
// steps,
//   z_t = xw_t + h_{t-1} @ w_hh^T, with the cell's arithmetic fused into the
//   matmul's epilogue,
// meeting the other threads at one barrier per step (h_{t-1} is shared and
// double-buffered, so one barrier is enough). The projection needs no
// barrier: a thread reads only x and writes only its own buffer. Nor does
// a diagonal cell's recurrence (the IndRNN's z_t = xw_t + u * h_{t-1}),
// whose units each read only their own h: its threads never meet.
#pragma once
#include <algorithm>
#include <cstring>

#include "cells.h"
#include "gemm.h"
#include "gemm_bf16.h"
#include "threads.h"

namespace jaxrnn {

// The threads a call uses: at most one per panel, and one per MIN_FLOPS of
// the step's recurrent matmul, below which a barrier (about 0.3 us) costs
// more than a thread saves (measured: B=1, H=64, an LSTM's step of 33 kFLOP
// runs at 49 GFLOP/s on one thread and 30 on two).
constexpr int64_t MIN_FLOPS = 1 << 18;
inline int threads_for(int requested, int64_t panels, int64_t step_flops) {
  int64_t most = std::min(panels, std::max<int64_t>(1, step_flops / MIN_FLOPS));
  return int(std::max<int64_t>(1, std::min<int64_t>(requested, most)));
}

// The mean fraction of its time a thread waits because the panels do not
// split evenly: 1 - (its panels / the most any thread has).
inline double uneven(int64_t panels, int threads) {
  int64_t most = ceil_div(panels, threads);
  double sum = 0;
  for (int t = 0; t < threads; ++t)
    sum += 1.0 - double(panels * (t + 1) / threads - panels * t / threads) / most;
  return sum / threads;
}

// How many rows ahead the epilogues prefetch the lines they will write.
constexpr int64_t PREFETCH = 8;

// M (gemm_bf16.h): BF16, the products' operands in bfloat16: the weights
// packed in pairs, each chunk's inputs rounded by each thread for itself,
// and h_{t-1} rounded where the epilogue writes it; ROUND, the float32
// products of h_{t-1} rounded likewise (the caller rounds x and the
// weights). The carry, the gate arithmetic and every output stay float32.
template <Cell C, Mm M = Mm::F32>
struct Forward {
  static constexpr bool BF = M == Mm::BF16, RD = M == Mm::ROUND;
  static constexpr int G = num_gates(C);
  static constexpr bool DIAG = diagonal(C);
  static constexpr int PER = single(C) ? 2 : 1;       // unit chunks per panel
  static constexpr int NV = G * PER;                  // vectors per panel

  // x [T, B, D] time-major, w_ih [G*H, D], w_hh [G*H, H] (DIAG: [H]), bias [G*H],
  // b_hn [H] (GRU), h0 and c0 [B, H], mask [T, B] (0: the step is held).
  int64_t T, B, D, H;
  Act act;
  bool save;
  const float *x, *w_ih, *w_hh, *bias, *b_hn, *h0, *c0, *mask;
  // hs [T, B, H]; cs [T, B, H] and saved [T, B, 4H] when `save`; h_t, c_t [B, H].
  float *hs, *cs, *saved, *h_t, *c_t;

  // Blocking forced by the caller (0: chosen from the caches, as tests and
  // benchmarks may want other chunk lengths and contraction slices).
  int64_t force_tc = 0, force_kc = 0;
  int64_t chunks, Hp, panels, tc, rows_max;
  float *pk_hh, *pk_ih, *pk_b, *hbuf, *cbuf;
  uint16_t* hbf;  // BF: h_{t-1} in bfloat16, [2][B][Hp]
  float* hr;      // RD: h_{t-1} rounded to bfloat16 values, [2][B][Hp]

  // BF: panel p of w^T in pairs along K (gemm_bf16.h), ceil(K / 2) rows.
  void pack_pairs(float* dst, const float* w, int64_t k_len, int64_t p) const {
    const int64_t kp_len = ceil_div(k_len, 2);
    uint16_t* out = reinterpret_cast<uint16_t*>(dst) + p * kp_len * NV * 2 * VW;
    for (int v = 0; v < NV; ++v) {
      const int64_t chunk = p * PER + v / G, g = v % G;
      for (int l = 0; l < VW; ++l) {
        const int64_t j = chunk * VW + l;
        const float* row = w + (g * H + j) * k_len;
        for (int64_t k = 0; k < 2 * kp_len; ++k)
          out[((k / 2) * NV + v) * 2 * VW + 2 * l + k % 2] =
              j < H && k < k_len ? to_bf16(row[k]) : 0;
      }
    }
  }

  // Panel p of w^T (w [G*H, K]): row k holds, for each of its NV vectors
  // (unit chunk p * PER + v / G, gate v % G), w's rows of those units.
  void pack(float* dst, const float* w, int64_t k_len, int64_t p) const {
    float* out = dst + p * k_len * NV * VW;
    for (int v = 0; v < NV; ++v) {
      const int64_t chunk = p * PER + v / G, g = v % G;
      for (int l = 0; l < VW; ++l) {
        const int64_t j = chunk * VW + l;
        const float* row = w + (g * H + j) * k_len;
        for (int64_t k = 0; k < k_len; ++k)
          out[k * NV * VW + v * VW + l] = j < H ? row[k] : 0.0f;
      }
    }
  }
  // Panel p of a vector over the gates' units (the bias, or DIAG's u),
  // [NV * VW].
  void pack_vector(float* dst, const float* src, int64_t p) const {
    for (int v = 0; v < NV; ++v) {
      const int64_t chunk = p * PER + v / G, g = v % G;
      for (int l = 0; l < VW; ++l) {
        const int64_t j = chunk * VW + l;
        dst[p * NV * VW + v * VW + l] = j < H ? src[g * H + j] : 0.0f;
      }
    }
  }

  // Returns 0 when it ran, 1 when the threads could not start, 2 when the
  // workspace could not be allocated.
  int run(Workspace& ws, int requested, int& threads, int64_t& waited, double& expected) {
    chunks = ceil_div(H, VW);
    Hp = chunks * VW;
    panels = ceil_div(chunks, PER);
    // DIAG: no barrier, so the threads pay wherever the projection does.
    threads = threads_for(requested, panels, 2 * B * H * G * (DIAG ? D + 1 : H));
    expected = uneven(panels, threads);
    const int64_t own = ceil_div(panels, threads);
    tc = force_tc > 0 ? std::min(force_tc, std::max<int64_t>(T, 1))
                      : tiling().chunk_steps(B * own * NV * VW * 4, B, T);
    rows_max = tc * B;
    ws.threads(threads);
    // Floats for a panel of K rows: K * NV * VW, or as pairs ceil(K / 2) *
    // NV * VW (two bfloat16 a float).
    const int64_t kh = BF ? ceil_div(H, 2) : H, kd = BF ? ceil_div(D, 2) : D;
    pk_hh = ws.get(0, panels * (DIAG ? 1 : kh) * NV * VW);
    pk_ih = ws.get(1, panels * std::max<int64_t>(kd, 1) * NV * VW);
    if (BF) hbf = reinterpret_cast<uint16_t*>(ws.get(5, B * Hp));
    if (RD) hr = ws.get(6, 2 * B * Hp);
    pk_b = ws.get(2, panels * NV * VW);
    hbuf = ws.get(3, 2 * B * Hp);
    cbuf = ws.get(4, B * Hp);
    for (int t = 0; t < threads; ++t) {
      ws.mine(0, t, own * rows_max * NV * VW);
      ws.mine(1, t, part_size<NV>(0, own));
      if (BF) ws.mine(2, t, std::max<int64_t>(1, rows_max * kd));
    }
    if (ws.failed) return 2;
    std::memset(hbuf, 0, sizeof(float) * 2 * B * Hp);
    std::memset(cbuf, 0, sizeof(float) * B * Hp);
    for (int64_t b = 0; b < B; ++b) {
      std::memcpy(&hbuf[b * Hp], h0 + b * H, sizeof(float) * H);
      if (C == Cell::LSTM) std::memcpy(&cbuf[b * Hp], c0 + b * H, sizeof(float) * H);
      if (BF) round_row(hbf + b * Hp, &hbuf[b * Hp], Hp);
      if (RD)
        for (int64_t u = 0; u < Hp; u += VW) store(hr + b * Hp + u, round_bf16(load(&hbuf[b * Hp + u])));
    }
    const int64_t kc = force_kc > 0 ? force_kc : tiling().kc(rows_per_block<NV>());
    Barrier barrier(threads);
    std::atomic<int64_t> total_wait{0};
    bool ran = parallel(threads, [&](int tid) {
      const int64_t p0 = panels * tid / threads, p1 = panels * (tid + 1) / threads;
      float* xwc = ws.thread[0][tid].data;
      float* part = ws.thread[1][tid].data;
      uint16_t* xbf = BF ? reinterpret_cast<uint16_t*>(ws.thread[2][tid].data) : nullptr;
      for (int64_t p = p0; p < p1; ++p) {
        if (DIAG) pack_vector(pk_hh, w_hh, p);
        if (BF) {
          if (!DIAG) pack_pairs(pk_hh, w_hh, H, p);
          pack_pairs(pk_ih, w_ih, D, p);
        } else {
          if (!DIAG) pack(pk_hh, w_hh, H, p);
          pack(pk_ih, w_ih, D, p);
        }
        pack_vector(pk_b, bias, p);
      }
      const Panels<NV> w_in = packed<NV>(pk_ih, D), w_rec = packed<NV>(pk_hh, H);
      int64_t wait = 0;
      PHASES;
      PHASE(3);
      for (int64_t t0 = 0; t0 < T; t0 += tc) {
        const int64_t t1 = std::min(T, t0 + tc);
        const int64_t rows = (t1 - t0) * B;
        auto project = [&](int64_t p, int64_t row, const vf* acc) {
          float* dst = xwc + ((p - p0) * rows_max + row) * NV * VW;
          const float* b = pk_b + p * NV * VW;
          for (int v = 0; v < NV; ++v) store(dst + v * VW, acc[v] + load(b + v * VW));
        };
        if constexpr (BF) {
          for (int64_t r = 0; r < rows; ++r)
            round_row(xbf + r * 2 * kd, x + (t0 * B + r) * D, D);
          gemm_bf16<NV>(rows, xbf, 2 * kd, reinterpret_cast<const uint16_t*>(pk_ih), kd,
                        p0, p1, project);
        } else {
          const Seg in{x + t0 * B * D, 0, D};
          gemm<NV, false>(0, rows, D, &in, 1, w_in, p0, p1, kc, part, Zero{}, project);
        }
        PHASE(0);
        for (int64_t t = t0; t < t1; ++t) {
          const float* h_prev = &hbuf[(t % 2) * B * Hp];
          float* h_next = &hbuf[((t + 1) % 2) * B * Hp];
          void* hb_next = BF   ? static_cast<void*>(hbf + ((t + 1) % 2) * B * Hp)
                          : RD ? static_cast<void*>(hr + ((t + 1) % 2) * B * Hp)
                               : nullptr;
          auto epilogue = [&](int64_t p, int64_t b, const vf* acc) {
            const float* xw = xwc + ((p - p0) * rows_max + (t - t0) * B + b) * NV * VW;
            for (int u = 0; u < PER; ++u) {
              const int64_t chunk = p * PER + u;
              if (chunk < chunks)
                step(t, b, chunk, acc + u * G, xw + u * G * VW, h_prev, h_next, hb_next);
            }
          };
          if constexpr (DIAG) {
            // u * h_{t-1}, elementwise, in float32 under every policy.
            for (int64_t p = p0; p < p1; ++p)
              for (int64_t b = 0; b < B; ++b) {
                vf acc[NV];
                for (int v = 0; v < NV; ++v)
                  acc[v] = load(pk_hh + (p * NV + v) * VW) *
                           load(h_prev + b * Hp + std::min(p * PER + v, chunks - 1) * VW);
                epilogue(p, b, acc);
              }
          } else if constexpr (BF) {
            gemm_bf16<NV>(B, hbf + (t % 2) * B * Hp, Hp,
                          reinterpret_cast<const uint16_t*>(pk_hh), kh, p0, p1, epilogue);
          } else {
            const Seg rec{RD ? hr + (t % 2) * B * Hp : h_prev, 0, H};
            gemm<NV, false>(0, B, Hp, &rec, 1, w_rec, p0, p1, kc, part, Zero{}, epilogue);
          }
          PHASE(1);
          if (!DIAG) barrier.wait(wait);
          PHASE(2);
        }
      }
      total_wait += wait;
    });
    if (!ran) return 1;
    waited = total_wait;
    const float* h_last = &hbuf[(T % 2) * B * Hp];
    for (int64_t b = 0; b < B; ++b) {
      std::memcpy(h_t + b * H, h_last + b * Hp, sizeof(float) * H);
      if (C == Cell::LSTM) std::memcpy(c_t + b * H, &cbuf[b * Hp], sizeof(float) * H);
    }
    return 0;
  }

  // The output lines that the epilogue PREFETCH rows later writes, into
  // the cache while this row computes: the rows of hs, cs and saved lie H
  // or 4H floats apart, each often on its own page, where the hardware
  // prefetchers stop.
  INLINE void prefetch(int64_t t, int64_t b, int64_t chunk) const {
    b += PREFETCH;
    if (b >= B) b -= B, chunk += PER;
    if (b >= B || chunk >= chunks) return;
    const int64_t u = chunk * VW, tb = t * B + b;
    __builtin_prefetch(hs + tb * H + u, 1, 2);
    if (save && !single(C)) {
      for (int g = 0; g < 4; ++g) __builtin_prefetch(saved + tb * 4 * H + u + g * H, 1, 2);
      if (C == Cell::LSTM) __builtin_prefetch(cs + tb * H + u, 1, 2);
    }
  }

  // One row and one chunk of units at step t, from the recurrent products
  // `acc` and the projection `xw`.
  INLINE void step(int64_t t, int64_t b, int64_t chunk, const vf* acc, const float* xw,
                   const float* h_prev, float* h_next, void* hb_next) {
    const int64_t u = chunk * VW;
    const int n = int(std::min<int64_t>(VW, H - u));
    const bool on = live(mask, t, B, b);
    const int64_t row = (t * B + b) * H + u;
    prefetch(t, b, chunk);
    const vf hp = load(h_prev + b * Hp + u);
    const vf cp = C == Cell::LSTM ? load(&cbuf[b * Hp + u]) : vf{};
    const vf bhn = C == Cell::GRU ? load_n(b_hn + u, n) : vf{};
    Step s = step_forward<C>(act, acc, xw, bhn, hp, cp);
    // Padded units stay zero, since h_next feeds the next step's products.
    const vf h = keep_n(held(on, s.h, hp), n);
    store(h_next + b * Hp + u, h);
    if constexpr (BF && !DIAG) store_bf16(static_cast<uint16_t*>(hb_next) + b * Hp + u, h);
    if constexpr (RD && !DIAG) store(static_cast<float*>(hb_next) + b * Hp + u, round_bf16(h));
    store_n(hs + row, h, n);
    if (C == Cell::LSTM) {
      const vf c = held(on, s.c, cp);
      store(&cbuf[b * Hp + u], c);
      if (save) store_n(cs + row, c, n);
    }
    if (save && !single(C)) {
      float* out = saved + (t * B + b) * 4 * H + u;
      for (int g = 0; g < 4; ++g) store_n(out + g * H, s.saved[g], n);
    }
  }
};

}  // namespace jaxrnn
