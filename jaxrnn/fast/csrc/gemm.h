// The one matrix-multiply engine of the kernels: a register-blocked
// microkernel and the driver that tiles a product for the caches, used for
// every matmul of a layer: the input projection, both recurrences, the
// input gradient and the weight gradients.
//
//   C[r, p] = C0[r, p] + sum_k A(r, k) P_p(k, :)
//
// for rows r and panels p. A panel is NV vectors of VW columns; P_p(k, v)
// is the vector at panel p + k * ldk + off[v] (a packed weight panel has
// off[v] = v * VW; a panel read in place, such as the gate gradients of one
// unit chunk, has its gates' offsets). A(r, k) is a[r * lda + k], or
// a[k * lda + r] when TA (the weight gradients contract over the rows of
// x or h, which are read by columns). The epilogue gets each row's NV
// accumulators, so that the gate arithmetic of a step is fused into the
// matmul that produces it.
#pragma once
#include <algorithm>
#include <cstdint>

#include "vec.h"

namespace jaxrnn {

// The caches of the CPU the kernels run on, read once at load, and the
// blocking derived from them.
struct Tiling {
  int64_t l1, l2;  // bytes of data cache per core
  // The contraction slice for a row block of MR rows: its slice of A
  // (MR * kc floats) takes at most a quarter of the L1 cache.
  int64_t kc(int mr) const {
    int64_t k = l1 / 4 / (4 * mr) / 16 * 16;
    return std::max<int64_t>(64, k);
  }
  // The contraction slice of gemm_sum for panels of nv vectors: the
  // panel's slice (kc rows of nv vectors) takes at most half the L1 cache.
  int64_t kc_sum(int nv) const {
    int64_t k = l1 / 2 / (4 * VW * nv) / 16 * 16;
    return std::max<int64_t>(16, k);
  }
  // The time steps of a chunk whose per-step buffers of `bytes_per_step`
  // take about a quarter of the L2 cache, and whose rows (steps x batch)
  // are at least 64 for the chunk's matmuls to run at speed.
  int64_t chunk_steps(int64_t bytes_per_step, int64_t batch, int64_t steps) const {
    int64_t c = std::max<int64_t>(1, l2 / 4 / std::max<int64_t>(1, bytes_per_step));
    c = std::max(c, ceil_div(64, std::max<int64_t>(1, batch)));
    return std::max<int64_t>(1, std::min(c, steps));
  }
};

const Tiling& tiling();

// The panels of one operand.
template <int NV>
struct Panels {
  const float* base;
  int64_t stride;   // floats from panel p to panel p + 1
  int64_t ldk;      // floats from row k to row k + 1 of a panel
  int64_t off[NV];  // each vector's offset in a row
  const float* at(int64_t p, int64_t k) const { return base + p * stride + k * ldk; }
};

// The panels of a packed weight: [panel][K][NV * VW].
template <int NV>
Panels<NV> packed(const float* base, int64_t k_len) {
  Panels<NV> w{base, k_len * NV * VW, NV * VW, {}};
  for (int v = 0; v < NV; ++v) w.off[v] = v * VW;
  return w;
}

// One run of the contraction: A from `a` (its column k0, or its row k0
// when TA, already applied) against panel rows [w_row, w_row + len).
struct Seg {
  const float* a;
  int64_t w_row, len;
};

// The microkernel: acc[r][v] += sum_{k < k_len} A(r, k) P(k, v).
template <int MR, int NV, bool TA>
INLINE void block(const float* a, int64_t lda, const float* p, int64_t ldk,
                  const int64_t* off, int64_t k_len, vf (&acc)[MR][NV]) {
  int64_t o[NV];
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) o[v] = off[v];
  for (int64_t k = 0; k < k_len; ++k) {
    vf w[NV];
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) w[v] = load(p + k * ldk + o[v]);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      vf x = splat(TA ? a[k * lda + r] : a[r * lda + k]);
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[r][v] += x * w[v];
    }
  }
}

// The largest row block whose accumulators, NV loads and a broadcast fit
// the vector registers.
template <int NV>
constexpr int rows_per_block() {
  int mr = (REGS - NV - 1) / NV;
  return mr < 1 ? 1 : (mr > 12 ? 12 : mr);
}

// No starting values: C0 = 0.
struct Zero {
  const float* operator()(int64_t, int64_t) const { return nullptr; }
};

// Rows [r, rows) in blocks of MR (and smaller blocks for the rest), panels
// [p0, p1). For each row block: the segments in slices of kc, and for each
// slice every panel, so that the row block's slice of A stays in the L1
// cache while the panels stream past it; `part` ((p1 - p0) * MR * NV * VW
// floats) holds the partial sums between slices. c0(p, r) points to the
// starting values of rows r.. of panel p ([row][NV * VW]) or is null for
// zero; epi(p, r, acc) takes the sums of row r.
template <int NV, int MR, bool TA, class C0, class Epi>
void gemm(int64_t r, int64_t rows, int64_t lda, const Seg* segs, int nseg,
          const Panels<NV>& w, int64_t p0, int64_t p1, int64_t kc, float* part,
          const C0& c0, const Epi& epi) {
  for (; r + MR <= rows; r += MR) {
    bool first = true;
    for (int s = 0; s < nseg; ++s) {
      int64_t k0 = 0;
      do {  // a segment of length 0 still runs once: C = C0
        const int64_t k1 = std::min(k0 + kc, segs[s].len);
        const bool last = s == nseg - 1 && k1 == segs[s].len;
        const float* a = TA ? segs[s].a + k0 * lda + r : segs[s].a + r * lda + k0;
        for (int64_t p = p0; p < p1; ++p) {
          float* pt = part + (p - p0) * MR * NV * VW;
          const float* start = first ? c0(p, r) : pt;
          vf acc[MR][NV];
#pragma GCC unroll 16
          for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
            for (int v = 0; v < NV; ++v)
              acc[i][v] = start ? load(start + (i * NV + v) * VW) : vf{};
          block<MR, NV, TA>(a, lda, w.at(p, segs[s].w_row + k0), w.ldk, w.off,
                            k1 - k0, acc);
          if (last) {
#pragma GCC unroll 16
            for (int i = 0; i < MR; ++i) epi(p, r + i, acc[i]);
          } else {
#pragma GCC unroll 16
            for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
              for (int v = 0; v < NV; ++v) store(pt + (i * NV + v) * VW, acc[i][v]);
          }
        }
        first = false;
        k0 = k1;
      } while (k0 < segs[s].len);
    }
  }
  // The rest in blocks of 4, 2 and 1 rows: fewer variants to compile than
  // one per remainder, for a few more passes over the panels.
  constexpr int NEXT = MR > 4 ? 4 : MR / 2;
  if constexpr (NEXT >= 1) {
    if (r < rows)
      gemm<NV, NEXT, TA>(r, rows, lda, segs, nseg, w, p0, p1, kc, part, c0, epi);
  }
}

// One panel p against rows [r, rows), in blocks of MR: the whole
// contraction (every segment) into the accumulators at once, so that the
// panel is read from the caches once per row block and from memory once.
template <int NV, int MR, bool TA, class C0, class Epi>
void panel_rows(int64_t r, int64_t rows, int64_t lda, const Seg* segs, int nseg,
                const Panels<NV>& w, int64_t p, const C0& c0, const Epi& epi) {
  for (; r + MR <= rows; r += MR) {
    const float* start = c0(p, r);
    vf acc[MR][NV];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[i][v] = start ? load(start + (i * NV + v) * VW) : vf{};
    for (int s = 0; s < nseg; ++s)
      block<MR, NV, TA>(TA ? segs[s].a + r : segs[s].a + r * lda, lda,
                        w.at(p, segs[s].w_row), w.ldk, w.off, segs[s].len, acc);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) epi(p, r + i, acc[i]);
  }
  constexpr int NEXT = MR > 4 ? 4 : MR / 2;
  if constexpr (NEXT >= 1) {
    if (r < rows) panel_rows<NV, NEXT, TA>(r, rows, lda, segs, nseg, w, p, c0, epi);
  }
}

// The product with the largest row block for NV, in the order that reads
// the least: panel by panel (each panel read once, A once per panel) where
// A's rows fit in half the L2 cache, else row block by row block (A's
// slice read once, the panels once per row block).
template <int NV, bool TA, class C0, class Epi>
void gemm(int64_t r, int64_t rows, int64_t lda, const Seg* segs, int nseg,
          const Panels<NV>& w, int64_t p0, int64_t p1, int64_t kc, float* part,
          const C0& c0, const Epi& epi) {
  constexpr int MR = rows_per_block<NV>();
  int64_t k_len = 0;
  for (int s = 0; s < nseg; ++s) k_len += segs[s].len;
  if ((rows - r) * k_len * 4 <= tiling().l2 / 2) {
    for (int64_t p = p0; p < p1; ++p)
      panel_rows<NV, MR, TA>(r, rows, lda, segs, nseg, w, p, c0, epi);
    return;
  }
  gemm<NV, MR, TA>(r, rows, lda, segs, nseg, w, p0, p1, kc, part, c0, epi);
}

// Sums into C in place, for products that contract over a long K, such as
// the weight gradients (dz^T x over the steps and rows of a chunk):
//   C[r, p] = (first ? 0 : C[r, p]) + sum_k A(r, k) P_p(k, :),
// A(r, k) = a[k * lda + r] (A read by columns), C of panel p at
// c + p * rows * NV * VW, [row][NV * VW]. For each K slice and each panel,
// every row block: the panel's slice (kc rows of NV vectors) stays in the L1
// cache while the row blocks pass, and C (a row block's NV vectors) is read
// and written once a slice.
template <int NV, int MR>
INLINE void sum_rows(int64_t r, int64_t rows, const float* a, int64_t lda,
                     const float* wp, int64_t ldk, const int64_t* off, int64_t k_len,
                     float* c, bool first) {
  for (; r + MR <= rows; r += MR) {
    vf acc[MR][NV];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[i][v] = first ? vf{} : load(c + ((r + i) * NV + v) * VW);
    block<MR, NV, true>(a + r, lda, wp, ldk, off, k_len, acc);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) store(c + ((r + i) * NV + v) * VW, acc[i][v]);
  }
  constexpr int NEXT = MR > 4 ? 4 : MR / 2;
  if constexpr (NEXT >= 1) {
    if (r < rows) sum_rows<NV, NEXT>(r, rows, a, lda, wp, ldk, off, k_len, c, first);
  }
}

template <int NV>
void gemm_sum(int64_t rows, int64_t lda, const Seg* segs, int nseg, const Panels<NV>& w,
              int64_t p0, int64_t p1, int64_t kc, float* c, bool first) {
  for (int s = 0; s < nseg; ++s) {
    int64_t k0 = 0;
    do {  // a segment of length 0 still runs once: C = 0 if first
      const int64_t k1 = std::min(k0 + kc, segs[s].len);
      for (int64_t p = p0; p < p1; ++p)
        sum_rows<NV, rows_per_block<NV>()>(0, rows, segs[s].a + k0 * lda, lda,
                                           w.at(p, segs[s].w_row + k0), w.ldk, w.off,
                                           k1 - k0, c + p * rows * NV * VW, first);
      first = false;
      k0 = k1;
    } while (k0 < segs[s].len);
  }
}

// The floats of `part` that gemm needs for panels [p0, p1).
template <int NV>
int64_t part_size(int64_t p0, int64_t p1) {
  return std::max<int64_t>(1, (p1 - p0) * rows_per_block<NV>() * NV * VW);
}


}  // namespace jaxrnn
