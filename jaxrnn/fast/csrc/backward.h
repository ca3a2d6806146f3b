// The backward pass of one direction of one layer, all T steps in one call:
// the reverse recurrence, and every gradient it feeds.
//
// Step t, on each thread's own units: the gradients at the gate
// pre-activations, dz_t, from dL/dh_t (the carried gradient plus dy_t),
// into a buffer shared by the threads; one barrier; then dh_{t-1} = dz_t @
// w_hh for the thread's own units, in whose epilogue the next step's gate
// gradients are fused. The dz of a chunk of steps stay in that buffer
// (two of them, alternating, each about a quarter of the L2 cache), and
// when a chunk is done each thread adds to the weight gradients of its own
// units, while their dz are still in its cache:
//   dw_ih += dz^T x,  dw_hh += dz^T h_{t-1},  db += sum dz
// (accumulated transposed, [D or H][unit chunk][gates], and written out
// once at the end), and computes its share of the chunk's rows of
//   dx = dz @ w_ih.
// Where the mask is off, a step's gradients are exactly zero and the
// carried gradient passes through.
//
// A diagonal cell (the IndRNN) has no recurrent matmul: dh_{t-1} = dz_t * u
// and du += dz_t * h_{t-1}, elementwise on the thread's own units, so its
// threads meet only twice a chunk (before it, and before dx, which reads
// every unit's dz).
#pragma once
#include <algorithm>
#include <cstring>
#include <tuple>
#include <utility>

#include "cells.h"
#include "forward.h"
#include "gemm.h"
#include "threads.h"

namespace jaxrnn {

template <Cell C>
struct Backward {
  static constexpr int G = num_gates(C);
  static constexpr bool DIAG = diagonal(C);
  static constexpr int NV = 2;                     // vectors per panel: dh, dx
  static constexpr int NW = single(C) ? 2 : G;     // vectors per panel: dw
  static constexpr int CPW = single(C) ? 2 : 1;    // unit chunks per dw panel

  // As Forward's, and: saved [T, B, 4H] and cs [T, B, H] from the forward
  // pass, hs [T, B, H] its outputs, dys [T, B, H] their cotangents, dh_t
  // and dc_t [B, H] the final carry's.
  int64_t T, B, D, H;
  Act act;
  const float *x, *w_ih, *w_hh, *saved, *hs, *cs, *h0, *c0, *dys, *dh_t, *dc_t, *mask;
  // dx [T, B, D], dw_ih [G*H, D], dw_hh [G*H, H] (DIAG: [H]), db [G*H], db_hn [H] (GRU),
  // dh0 and dc0 [B, H].
  float *dx, *dw_ih, *dw_hh, *db, *db_hn, *dh0, *dc0;
  // Whether dx, and the weight and bias gradients, are wanted (a layer
  // whose input is data needs no dx; a frozen one no weight gradients).
  bool need_dx = true, need_dw = true;

  // Blocking forced by the caller (0: chosen from the caches, as tests and
  // benchmarks may want other chunk lengths and contraction slices).
  int64_t force_tc = 0, force_kc = 0;
  int64_t chunks, Hp, panels, dpanels, W, tc;
  float *pk_hh, *pk_ih, *dzc[2], *dh, *dc, *dhz, *acc_ih, *acc_hh, *dbacc;
  // Where gate g's columns start in a row of dz: as the recurrent product
  // sees them (GRU: dr, dz, dh_n) and as the input projection does (GRU:
  // dr, dz, dn). A row of dz is [G blocks of Hp] (+ dn for the GRU).
  int64_t off_hh[4], off_ih[4];

  float* dz_row(int64_t t, int64_t b) const {
    return dzc[(t / tc) % 2] + ((t % tc) * B + b) * W;
  }

  // Panel p of w [G*H, cols] for dz @ w (w_hh for dh, w_ih for dx): K =
  // G * Hp rows (gate g, unit j) by NV vectors of columns.
  void pack(float* dst, const float* w, int64_t cols, int64_t p) const {
    const int64_t K = G * Hp;
    float* out = dst + p * K * NV * VW;
    for (int64_t g = 0; g < G; ++g)
      for (int64_t j = 0; j < Hp; ++j)
        for (int v = 0; v < NV; ++v)
          for (int l = 0; l < VW; ++l) {
            const int64_t k = (p * NV + v) * VW + l;
            out[((g * Hp + j) * NV + v) * VW + l] =
                j < H && k < cols ? w[(g * H + j) * cols + k] : 0.0f;
          }
  }
  // DIAG: panel p of u, NV vectors.
  void pack_diagonal(int64_t p) const {
    for (int64_t k = p * NV * VW; k < (p + 1) * NV * VW; ++k) pk_hh[k] = k < H ? w_hh[k] : 0.0f;
  }

  int run(Workspace& ws, int requested, int& threads, int64_t& waited, double& expected) {
    chunks = ceil_div(H, VW);
    Hp = chunks * VW;
    panels = ceil_div(chunks, NV);
    dpanels = ceil_div(ceil_div(D, VW), NV);
    W = single(C) ? panels * NV * VW : (C == Cell::GRU ? 4 : G) * Hp;
    for (int g = 0; g < 4; ++g) {
      off_hh[g] = single(C) ? g * VW : g * Hp;
      off_ih[g] = C == Cell::GRU && g == 2 ? 3 * Hp : off_hh[g];
    }
    threads = threads_for(requested, panels, 2 * B * H * G * (DIAG ? D + 1 : H));
    expected = uneven(panels, threads);
    tc = force_tc > 0 ? std::min(force_tc, std::max<int64_t>(T, 1))
                      : tiling().chunk_steps(B * W * 4, B, T);
    const int64_t wpanels = ceil_div(chunks, CPW), own = ceil_div(panels, threads);
    ws.threads(threads);
    pk_hh = ws.get(0, panels * (DIAG ? 1 : G * Hp) * NV * VW);
    pk_ih = ws.get(1, need_dx ? std::max<int64_t>(dpanels, 1) * G * Hp * NV * VW : 1);
    dzc[0] = ws.get(2, tc * B * W);
    dzc[1] = ws.get(3, tc * B * W);
    dh = ws.get(4, B * Hp);
    dc = ws.get(5, B * Hp);
    dhz = ws.get(6, B * Hp);
    acc_ih = ws.get(7, need_dw ? wpanels * std::max<int64_t>(D, 1) * NW * VW : 1);
    acc_hh = ws.get(8, need_dw && !DIAG ? wpanels * H * NW * VW : 1);
    dbacc = ws.get(9, (G + 1) * Hp);
    const int64_t parts = std::max(part_size<NV>(0, own), part_size<NV>(0, dpanels));
    for (int t = 0; t < threads; ++t) ws.mine(0, t, parts);
    if (ws.failed) return 2;
    for (float* p : {dh, dc, dhz}) std::memset(p, 0, sizeof(float) * B * Hp);
    std::memset(dbacc, 0, sizeof(float) * (G + 1) * Hp);
    if (single(C))  // the column past the last chunk, read by the dw panels
      for (float* p : dzc) std::memset(p, 0, sizeof(float) * tc * B * W);
    for (int64_t b = 0; b < B; ++b) {
      std::memcpy(&dh[b * Hp], dh_t + b * H, sizeof(float) * H);
      if (C == Cell::LSTM) std::memcpy(&dc[b * Hp], dc_t + b * H, sizeof(float) * H);
    }
    const int64_t kc = force_kc > 0 ? force_kc : tiling().kc(rows_per_block<NV>());
    const int64_t kw = force_kc > 0 ? force_kc : tiling().kc_sum(NW);
    const int64_t blocks = ceil_div(T, tc);
    Barrier barrier(threads);
    std::atomic<int64_t> total_wait{0};
    bool ran = parallel(threads, [&](int tid) {
      const int64_t p0 = panels * tid / threads, p1 = panels * (tid + 1) / threads;
      const int64_t c0_ = std::min(p0 * NV, chunks), c1_ = std::min(p1 * NV, chunks);
      const int64_t w0 = c0_ / CPW, w1 = ceil_div(c1_, CPW);
      float* part = ws.thread[0][tid].data;
      for (int64_t p = p0; p < p1; ++p) DIAG ? pack_diagonal(p) : pack(pk_hh, w_hh, H, p);
      if (need_dx)
        for (int64_t p = dpanels * tid / threads; p < dpanels * (tid + 1) / threads; ++p)
          pack(pk_ih, w_ih, D, p);
      const Panels<NV> w_rec = packed<NV>(pk_hh, G * Hp), w_dx = packed<NV>(pk_ih, G * Hp);
      if (T > 0)
        for (int64_t b = 0; b < B; ++b)
          for (int64_t c = c0_; c < c1_; ++c) gates(T - 1, b, c);
      int64_t wait = 0;
      PHASES;
      PHASE(3);
      for (int64_t j = blocks - 1; j >= 0; --j) {
        const int64_t t0 = j * tc, t1 = std::min(T, t0 + tc);
        if (DIAG) barrier.wait(wait);  // all are done with the buffer t0 - 1 fills
        for (int64_t t = t1 - 1; DIAG && t >= t0; --t)
          for (int64_t c = c0_; c < c1_; ++c)
            for (int64_t b = 0; b < B; ++b) {
              if (live(mask, t, B, b))
                store(&dh[b * Hp + c * VW], load(dz_row(t, b) + c * VW) * load(pk_hh + c * VW));
              if (t > 0) gates(t - 1, b, c);
            }
        if (DIAG) barrier.wait(wait);  // every dz of the chunk is written
        for (int64_t t = t1 - 1; !DIAG && t >= t0; --t) {
          barrier.wait(wait);
          PHASE(2);
          const Seg rec{dz_row(t, 0), 0, G * Hp};
          gemm<NV, false>(0, B, W, &rec, 1, w_rec, p0, p1, kc, part, Zero{},
                          [&](int64_t p, int64_t b, const vf* acc) {
                            for (int v = 0; v < NV; ++v) {
                              const int64_t c = p * NV + v;
                              if (c >= chunks) break;
                              const int64_t u = c * VW;
                              if (live(mask, t, B, b)) {
                                vf d = acc[v];
                                if (C == Cell::GRU) d += load(&dhz[b * Hp + u]);
                                store(&dh[b * Hp + u], d);
                              }
                              if (t > 0) gates(t - 1, b, c);
                            }
                          });
          PHASE(1);
        }
        // Every dz of steps [t0, t1) is in dzc[j % 2] since the last barrier.
        if (need_dw) weights(t0, t1, j == blocks - 1, w0, w1, c0_, c1_, kw);
        PHASE(0);
        if (!need_dx) continue;
        const int64_t rows = (t1 - t0) * B;
        const Seg dx_segs[2] = {{dzc[j % 2], 0, C == Cell::GRU ? 2 * Hp : G * Hp},
                                {dzc[j % 2] + 3 * Hp, 2 * Hp, Hp}};
        gemm<NV, false>(rows * tid / threads, rows * (tid + 1) / threads, W, dx_segs,
                        C == Cell::GRU ? 2 : 1, w_dx, 0, dpanels, kc, part, Zero{},
                        [&](int64_t p, int64_t row, const vf* acc) {
                          for (int v = 0; v < NV; ++v) {
                            const int64_t d0 = (p * NV + v) * VW;
                            if (d0 >= D) break;
                            store_n(dx + (t0 * B + row) * D + d0, acc[v],
                                    int(std::min<int64_t>(VW, D - d0)));
                          }
                        });
        PHASE(3);
      }
      total_wait += wait;
      if (need_dw) write_out(w0, w1, c0_, c1_);
    });
    if (!ran) return 1;
    waited = total_wait;
    for (int64_t b = 0; b < B; ++b) {
      std::memcpy(dh0 + b * H, &dh[b * Hp], sizeof(float) * H);
      if (C == Cell::LSTM) std::memcpy(dc0 + b * H, &dc[b * Hp], sizeof(float) * H);
    }
    return 0;
  }

  // The thread's share of the weight gradients of steps [t0, t1): its own
  // dw panels [w0, w1) (unit chunks [c0_, c1_)).
  void weights(int64_t t0, int64_t t1, bool first, int64_t w0, int64_t w1, int64_t c0_,
               int64_t c1_, int64_t kw) {
    const int64_t rows = (t1 - t0) * B;
    float* dz = dzc[(t0 / tc) % 2];
    Panels<NW> p_ih{dz, CPW * VW, W, {}}, p_hh{dz, CPW * VW, W, {}};
    for (int v = 0; v < NW; ++v) p_ih.off[v] = off_ih[v], p_hh.off[v] = off_hh[v];
    const Seg in{x + t0 * B * D, 0, rows};
    gemm_sum<NW>(D, D, &in, 1, p_ih, w0, w1, kw, acc_ih, first);
    // h_{t-1}: h0 for t = 0, else the forward pass's output at t - 1.
    Seg prev[2] = {{h0, 0, B}, {hs, B, rows - B}};
    int n = rows > B ? 2 : 1;
    if (t0 > 0) {
      prev[0] = {hs + (t0 - 1) * B * H, 0, rows};
      n = 1;
    }
    if (!DIAG) gemm_sum<NW>(H, H, prev, n, p_hh, w0, w1, kw, acc_hh, first);
    for (int64_t c = c0_; c < c1_; ++c)
      for (int64_t row = 0; row < rows; ++row) {
        const float* z = dz + row * W + c * VW;
        if (DIAG) {  // du += dz * h_{t-1}
          const int64_t t = t0 + row / B, b = row % B, u = c * VW;
          const float* hp = t > 0 ? hs + ((t - 1) * B + b) * H : h0 + b * H;
          float* s = dbacc + Hp + u;
          store(s, load(s) + load(z) * load_n(hp + u, int(std::min<int64_t>(VW, H - u))));
        }
        for (int g = 0; g < G; ++g) {
          float* s = dbacc + g * Hp + c * VW;
          store(s, load(s) + load(z + off_ih[g]));
        }
        if (C == Cell::GRU) {
          float* s = dbacc + 3 * Hp + c * VW;
          store(s, load(s) + load(z + 2 * Hp));
        }
      }
  }

  // The thread's rows of dw_ih, dw_hh, db and db_hn, from the transposed sums.
  void write_out(int64_t w0, int64_t w1, int64_t c0_, int64_t c1_) {
    for (int64_t p = w0; p < w1; ++p)
      for (int v = 0; v < NW; ++v) {
        const int64_t chunk = p * CPW + (CPW == 2 ? v : 0), g = CPW == 2 ? 0 : v;
        for (int l = 0; l < VW && chunk < chunks; ++l) {
          const int64_t j = chunk * VW + l;
          if (j >= H) break;
          for (auto [acc, R, dw] : {std::make_tuple(acc_ih, D, dw_ih),
                                    std::make_tuple(acc_hh, DIAG ? 0 : H, dw_hh)}) {
            float* out = dw + (g * H + j) * R;
            for (int64_t r = 0; r < R; ++r)
              out[r] = T > 0 ? acc[(p * R + r) * NW * VW + v * VW + l] : 0.0f;
          }
        }
      }
    for (int64_t j = c0_ * VW; j < std::min(c1_ * VW, H); ++j) {
      for (int g = 0; g < G; ++g) db[g * H + j] = dbacc[g * Hp + j];
      if (C == Cell::GRU) db_hn[j] = dbacc[3 * Hp + j];
      if (DIAG) dw_hh[j] = dbacc[Hp + j];
    }
  }

  // What gates() PREFETCH rows later reads (the same chunk, or the next
  // one's first rows): the rows of saved, cs and dys lie 4H or H floats
  // apart, each often on its own page, where the hardware prefetchers stop.
  INLINE void prefetch(int64_t t, int64_t b, int64_t chunk) const {
    b += PREFETCH;
    if (b >= B) b -= B, chunk += 1;
    if (b >= B || chunk >= chunks) return;
    const int64_t u = chunk * VW, tb = t * B + b, row = tb * H + u;
    __builtin_prefetch(dys + row, 0, 2);
    if (single(C)) {
      __builtin_prefetch(hs + row, 0, 2);
      return;
    }
    for (int g = 0; g < 4; ++g) __builtin_prefetch(saved + tb * 4 * H + u + g * H, 0, 2);
    if (C == Cell::LSTM) {
      __builtin_prefetch(cs + row, 0, 2);
      if (t > 0) __builtin_prefetch(cs + row - B * H, 0, 2);
    }
    if (C == Cell::GRU && t > 0) __builtin_prefetch(hs + row - B * H, 0, 2);
  }

  // The gate gradients of one row and one chunk at step t into dz; the
  // LSTM's dc and the GRU's direct dh carried to step t - 1.
  INLINE void gates(int64_t t, int64_t b, int64_t chunk) {
    const int64_t u = chunk * VW;
    const int n = int(std::min<int64_t>(VW, H - u));
    float* z = dz_row(t, b) + u;
    prefetch(t, b, chunk);
    if (!live(mask, t, B, b)) {
      for (int g = 0; g < G; ++g) store(z + off_hh[g], vf{});
      if (C == Cell::GRU) store(z + 3 * Hp, vf{});
      return;
    }
    const int64_t row = (t * B + b) * H + u;
    const vf d = load(&dh[b * Hp + u]) + load_n(dys + row, n);
    vf s[4] = {};
    if (!single(C))
      for (int g = 0; g < 4; ++g) s[g] = load_n(saved + (t * B + b) * 4 * H + u + g * H, n);
    vf ct = {}, cprev = {}, hprev = {}, h = {};
    if (C == Cell::LSTM) {
      ct = load_n(cs + row, n);
      cprev = t > 0 ? load_n(cs + row - B * H, n) : load_n(c0 + b * H + u, n);
    }
    if (C == Cell::GRU) hprev = t > 0 ? load_n(hs + row - B * H, n) : load_n(h0 + b * H + u, n);
    if (single(C)) h = load_n(hs + row, n);
    const vf dcin = C == Cell::LSTM ? load(&dc[b * Hp + u]) : vf{};
    Grad gr = step_backward<C>(act, d, dcin, s, ct, cprev, hprev, h);
    for (int g = 0; g < G; ++g) store(z + off_hh[g], gr.dz[g]);
    if (C == Cell::LSTM) store(&dc[b * Hp + u], gr.dc);
    if (C == Cell::GRU) {
      store(z + 3 * Hp, gr.dn);
      store(&dhz[b * Hp + u], gr.dh);
    }
  }
};

}  // namespace jaxrnn
