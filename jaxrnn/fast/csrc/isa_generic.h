// The portable instruction path: 4-float vectors in GCC's vector
// extensions, which compile to SSE2 on x86-64, NEON on aarch64 and scalar
// code elsewhere. See isa_avx512.h for what each isa_*.h defines.
#pragma once
#include <cstdint>

namespace jaxrnn {

constexpr int VW = 4;
#if defined(__ARM_NEON)
constexpr int REGS = 32;
constexpr const char* ISA = "neon";
#elif defined(__SSE2__)
constexpr int REGS = 16;
constexpr const char* ISA = "sse2";
#else
constexpr int REGS = 16;
constexpr const char* ISA = "generic";
#endif

typedef float vf __attribute__((vector_size(VW * 4)));
typedef int32_t vi __attribute__((vector_size(VW * 4)));

inline __attribute__((always_inline)) vf splat(float x) { return vf{} + x; }

inline __attribute__((always_inline)) vf reciprocal(vf d) { return 1.0f / d; }

}  // namespace jaxrnn
