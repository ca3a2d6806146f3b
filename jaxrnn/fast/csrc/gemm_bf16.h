// The bfloat16 products of the mixed-precision policy (matmul_dtype =
// bfloat16): both operands rounded to bfloat16, the products summed in
// float32, by AVX512-BF16's vdpbf16ps, which multiplies two pairs of
// bfloat16 and adds both products to a float32 lane:
//
//   acc[l] += a[2k] * w[2k][l] + a[2k + 1] * w[2k + 1][l]
//
// so a weight panel is packed in pairs along K (the "VNNI" layout): row kp
// of a panel holds, for each of its NV vectors and each lane l, the pair
// (w[2kp][l], w[2kp + 1][l]), one 64-byte vector per vector of the panel.
// A row of A is bfloat16 with its pairs adjacent, so one 32-bit broadcast
// feeds a row. An odd K is padded with a zero.
//
// HAS_BF16 says whether this build has the instructions (the compiler flags
// of _cpu_build.py's "avx512bf16" path); without them nothing here is
// compiled, and the Python side runs the policy on the reference scan.
#pragma once
#include <cstdint>
#include <cstring>

#include "gemm.h"

namespace jaxrnn {

// How a call's products treat their operands (the attribute "policy"):
// F32, as they are; ROUND, rounded to bfloat16 values and multiplied in
// float32 (the policy on any CPU: the caller rounds the inputs and the
// weights, the kernel h_{t-1}); BF16, by the bfloat16 products below.
enum class Mm : int64_t { F32 = 0, ROUND = 1, BF16 = 2 };

// Each lane rounded to the nearest bfloat16 value (ties to even), kept as
// a float; a NaN stays a NaN.
INLINE vf round_bf16(vf v) {
  typedef uint32_t vu __attribute__((vector_size(VW * 4)));
  vu u;
  std::memcpy(&u, &v, sizeof u);
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  vf r;
  std::memcpy(&r, &u, sizeof r);
  return v != v ? v : r;
}

#if defined(__AVX512BF16__) && defined(__AVX512BW__) && defined(__AVX512VL__)
constexpr bool HAS_BF16 = true;

// 16 floats rounded to bfloat16 (to nearest, ties to even), stored at dst.
INLINE void store_bf16(uint16_t* dst, vf v) {
  __m256bh h = _mm512_cvtneps_pbh((__m512)v);
  std::memcpy(dst, &h, sizeof h);
}

// n floats at src rounded to bfloat16 at dst, and a zero after them when n
// is odd (the pad of the last pair).
INLINE void round_row(uint16_t* dst, const float* src, int64_t n) {
  int64_t k = 0;
  for (; k + VW <= n; k += VW) store_bf16(dst + k, load(src + k));
  if (k < n) {
    uint16_t tail[VW];
    store_bf16(tail, load_n(src + k, int(n - k)));
    std::memcpy(dst + k, tail, sizeof(uint16_t) * (n - k));
  }
  if (n % 2) dst[n] = 0;
}

// acc[r][v] += sum over kp < kp_len of the pair products of row r of A
// (a + r * lda, bfloat16) and row kp of the panel (p, ldk uint16 a row).
template <int MR, int NV>
INLINE void block_bf16(const uint16_t* a, int64_t lda, const uint16_t* p, int64_t ldk,
                       int64_t kp_len, vf (&acc)[MR][NV]) {
  for (int64_t kp = 0; kp < kp_len; ++kp) {
    __m512bh w[NV];
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v)
      w[v] = (__m512bh)_mm512_loadu_si512(p + kp * ldk + v * 2 * VW);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      int32_t pair;
      std::memcpy(&pair, a + r * lda + 2 * kp, sizeof pair);
      const __m512bh x = (__m512bh)_mm512_set1_epi32(pair);
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v)
        acc[r][v] = (vf)_mm512_dpbf16_ps((__m512)acc[r][v], x, w[v]);
    }
  }
}

// Rows [r, rows) against panel p in blocks of MR (then 4, 2, 1): the whole
// contraction into the accumulators, then epi(p, row, acc).
template <int NV, int MR, class Epi>
void panel_rows_bf16(int64_t r, int64_t rows, const uint16_t* a, int64_t lda,
                     const uint16_t* panel, int64_t kp_len, int64_t p, const Epi& epi) {
  for (; r + MR <= rows; r += MR) {
    vf acc[MR][NV] = {};
    block_bf16<MR, NV>(a + r * lda, lda, panel, NV * 2 * VW, kp_len, acc);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) epi(p, r + i, acc[i]);
  }
  constexpr int NEXT = MR > 4 ? 4 : MR / 2;
  if constexpr (NEXT >= 1) {
    if (r < rows) panel_rows_bf16<NV, NEXT>(r, rows, a, lda, panel, kp_len, p, epi);
  }
}

// C = A @ P for panels [p0, p1) of a packed weight (`w`, kp_len pairs of
// rows a panel): panel by panel where A's rows fit half the L2 cache (each
// panel read once), else in row blocks of at most a quarter of it, each
// against every panel.
template <int NV, class Epi>
void gemm_bf16(int64_t rows, const uint16_t* a, int64_t lda, const uint16_t* w,
               int64_t kp_len, int64_t p0, int64_t p1, const Epi& epi) {
  constexpr int MR = rows_per_block<NV>();
  const int64_t panel = kp_len * NV * 2 * VW;
  const int64_t bytes = std::max<int64_t>(1, kp_len * 4);
  const int64_t step = std::max<int64_t>(MR, tiling().l2 / 4 / bytes / MR * MR);
  for (int64_t r0 = 0; r0 < rows; r0 += step) {
    const int64_t r1 = rows * bytes <= tiling().l2 / 2 ? rows : std::min(rows, r0 + step);
    for (int64_t p = p0; p < p1; ++p)
      panel_rows_bf16<NV, MR>(r0, r1, a, lda, w + p * panel, kp_len, p, epi);
    if (r1 == rows) break;
  }
}
#else
// Never called without the instructions (the calls refuse bf16 first).
constexpr bool HAS_BF16 = false;
INLINE void store_bf16(uint16_t*, vf) { __builtin_trap(); }
INLINE void round_row(uint16_t*, const float*, int64_t) { __builtin_trap(); }
template <int NV, class Epi>
void gemm_bf16(int64_t, const uint16_t*, int64_t, const uint16_t*, int64_t, int64_t,
               int64_t, const Epi&) {
  __builtin_trap();
}
#endif

// One float rounded to bfloat16, to nearest with ties to even (a NaN stays
// a NaN), for packing weights.
inline uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1);
  return uint16_t(u >> 16);
}

}  // namespace jaxrnn
