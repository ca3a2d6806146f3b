// The AVX2 (with FMA) instruction path: 8 floats a vector, 16 vector
// registers. See isa_avx512.h for what each isa_*.h defines.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace jaxrnn {

constexpr int VW = 8;
constexpr int REGS = 16;
constexpr const char* ISA = "avx2";

typedef float vf __attribute__((vector_size(VW * 4)));
typedef int32_t vi __attribute__((vector_size(VW * 4)));

inline __attribute__((always_inline)) vf splat(float x) {
  return (vf)_mm256_set1_ps(x);
}

// 1 / d for d >= 1: the 12-bit estimate and two Newton steps.
inline __attribute__((always_inline)) vf reciprocal(vf d) {
  vf r = (vf)_mm256_rcp_ps((__m256)d);
  r = r * (2.0f - d * r);
  return r * (2.0f - d * r);
}

}  // namespace jaxrnn
