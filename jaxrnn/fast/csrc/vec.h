// The vectors every kernel file computes with: the instruction path's
// primitives (isa_*.h, one per path, chosen by the compiler flags), and on
// top of them loads, stores, and exp, sigmoid and tanh to float32's
// accuracy.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__)
#include "isa_avx512.h"
#elif defined(__AVX2__) && defined(__FMA__)
#include "isa_avx2.h"
#else
#include "isa_generic.h"
#endif

#define INLINE inline __attribute__((always_inline))

namespace jaxrnn {

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
// v with lanes n.. set to zero.
INLINE vf keep_n(vf v, int n) {
  if (n == VW) return v;
  float lanes[VW];
  std::memcpy(lanes, &v, sizeof v);
  for (int l = n; l < VW; ++l) lanes[l] = 0.0f;
  std::memcpy(&v, lanes, sizeof v);
  return v;
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

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace jaxrnn
