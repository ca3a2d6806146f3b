// The AVX-512 instruction path: 16 floats a vector, 32 vector registers.
// One of the isa_*.h files is included by vec.h, chosen by the compiler
// flags that _cpu_build.py passes for this machine; each defines the same
// names (VW, REGS, ISA, vf, vi, splat, reciprocal).
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace jaxrnn {

constexpr int VW = 16;
constexpr int REGS = 32;
#if defined(__AVX512BF16__)
constexpr const char* ISA = "avx512bf16";  // and the bfloat16 products
#else
constexpr const char* ISA = "avx512";
#endif

typedef float vf __attribute__((vector_size(VW * 4)));
typedef int32_t vi __attribute__((vector_size(VW * 4)));

inline __attribute__((always_inline)) vf splat(float x) {
  return (vf)_mm512_set1_ps(x);
}

// 1 / d for d >= 1: the 14-bit estimate and one Newton step (relative error
// about 1e-7), a fraction of a division's cost.
inline __attribute__((always_inline)) vf reciprocal(vf d) {
  vf r = (vf)_mm512_rcp14_ps((__m512)d);
  return r * (2.0f - d * r);
}

}  // namespace jaxrnn
