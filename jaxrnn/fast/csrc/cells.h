// The cells' arithmetic for one row and one chunk of VW units: the step
// fused into the epilogue of the recurrent matmul, and the gradients at the
// gate pre-activations fused into the backward one. The equations are
// those of jaxrnn/fast/_elman.py, _lstm.py, _gru.py and _indrnn.py, whose
// docstrings derive the gradients.
#pragma once
#include <cstdint>

#include "vec.h"

namespace jaxrnn {

// The ids are read by _cpu_build.py from jaxrnn_cells() and
// jaxrnn_activations() (recurrence.cc), not mirrored by hand.
enum class Cell : int64_t { RNN = 0, LSTM = 1, GRU = 2, INDRNN = 3 };
enum class Act : int64_t { TANH = 0, SIGMOID = 1, RELU = 2 };

constexpr int num_gates(Cell c) { return c == Cell::LSTM ? 4 : (c == Cell::GRU ? 3 : 1); }
// One gate, h = g1(z): the Elman RNN and the IndRNN.
constexpr bool single(Cell c) { return num_gates(c) == 1; }
// The recurrent weight is a vector u [H] and the recurrent product u * h
// is elementwise (the IndRNN): no matmul, and no unit reads another's h.
constexpr bool diagonal(Cell c) { return c == Cell::INDRNN; }

INLINE vf activate(Act act, vf z) {
  if (act == Act::TANH) return vtanh(z);
  if (act == Act::SIGMOID) return vsigmoid(z);
  return vmax(z, splat(0));
}
// g1'(z) from g1(z) = h.
INLINE vf activate_grad(Act act, vf h) {
  if (act == Act::TANH) return 1.0f - h * h;
  if (act == Act::SIGMOID) return h * (1.0f - h);
  return h > 0 ? splat(1) : splat(0);
}

// The mask rule (jaxrnn/_unroll.py's hold and zero_masked, in Python): a
// step is live where its mask is not 0; where it is not, the carry is held,
// and the step's output and gradients are zero. tests/fast/test_cpu.py pins
// the kernels' masked steps to the reference scan's.
INLINE bool live(const float* mask, int64_t t, int64_t B, int64_t b) {
  return mask[t * B + b] != 0.0f;
}
INLINE vf held(bool on, vf next, vf prev) { return select(on, next, prev); }

// One step's new carry and what the backward pass keeps (LSTM: i, f, g, o;
// GRU: r, z, n and h_n = w_hh_n h + b_hn).
struct Step {
  vf h, c, saved[4];
};

// acc[g]: the recurrent product of gate g (the IndRNN's u * h); xw[g * VW]: the input projection
// with its bias; hp, cp: the carry before the step.
template <Cell C>
INLINE Step step_forward(Act act, const vf* acc, const float* xw, vf b_hn, vf hp, vf cp) {
  Step s{};
  if constexpr (single(C)) {
    s.h = activate(act, acc[0] + load(xw));
  } else if constexpr (C == Cell::LSTM) {
    vf i = vsigmoid(acc[0] + load(xw)), f = vsigmoid(acc[1] + load(xw + VW));
    vf g = vtanh(acc[2] + load(xw + 2 * VW)), o = vsigmoid(acc[3] + load(xw + 3 * VW));
    s.c = f * cp + i * g;
    s.h = o * vtanh(s.c);
    s.saved[0] = i, s.saved[1] = f, s.saved[2] = g, s.saved[3] = o;
  } else {
    vf r = vsigmoid(acc[0] + load(xw)), z = vsigmoid(acc[1] + load(xw + VW));
    vf hn = acc[2] + b_hn;
    vf n = vtanh(load(xw + 2 * VW) + r * hn);
    s.h = n + z * (hp - n);
    s.saved[0] = r, s.saved[1] = z, s.saved[2] = n, s.saved[3] = hn;
  }
  return s;
}

// The gradients of one step: dz, at the gate pre-activations as the
// recurrent product sees them (GRU: r, z and h_n); dn, the GRU's at its
// input projection's n block (dz[2] differs from it by the factor r); dc,
// the LSTM's cell-state gradient carried to the step before; dh, the part
// of dL/dh_{t-1} that skips the matmul (the GRU's z * d).
struct Grad {
  vf dz[4], dn, dc, dh;
};

// d: dL/dh_t (carried plus this step's output's); dc: dL/dc_t carried; s:
// the saved gates; ct, cprev: the LSTM's c_t and c_{t-1}; hprev: h_{t-1}
// (GRU); h: h_t (RNN, IndRNN).
template <Cell C>
INLINE Grad step_backward(Act act, vf d, vf dc, const vf* s, vf ct, vf cprev, vf hprev,
                          vf h) {
  Grad g{};
  if constexpr (single(C)) {
    g.dz[0] = d * activate_grad(act, h);
  } else if constexpr (C == Cell::LSTM) {
    vf i = s[0], f = s[1], gg = s[2], o = s[3];
    vf tc = vtanh(ct);
    vf dcell = dc + d * o * (1.0f - tc * tc);
    g.dz[0] = dcell * gg * i * (1.0f - i);
    g.dz[1] = dcell * cprev * f * (1.0f - f);
    g.dz[2] = dcell * i * (1.0f - gg * gg);
    g.dz[3] = d * tc * o * (1.0f - o);
    g.dc = dcell * f;
  } else {
    vf r = s[0], z = s[1], n = s[2], hn = s[3];
    g.dn = d * (1.0f - z) * (1.0f - n * n);
    g.dz[0] = g.dn * hn * r * (1.0f - r);
    g.dz[1] = d * (hprev - n) * z * (1.0f - z);
    g.dz[2] = g.dn * r;
    g.dh = d * z;
  }
  return g;
}

}  // namespace jaxrnn
