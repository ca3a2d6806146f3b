"""The cells as the Pallas kernels run them (impl="pallas").

`_xla_cells`' cells are written for XLA:CPU: one matmul for all G gates and
slices of it, one tanh over the whole gate block, and gate gradients joined
with a concatenate. The GPU lowering of Pallas (Triton) accepts none of that
inside a kernel: it has no concatenate and no slice of a value, every array
in a kernel must have a power-of-two size, and its matmul wants each side at
least 16. So the kernels' cells here differ from those in layout only:

- the recurrent weights enter the loop as G blocks [H, H], one per gate, and
  a step does one matmul per gate;
- a backward step returns one gradient array per gate; they are joined
  after the loop, outside the kernel;
- `pad` pads the batch and the hidden units with zeros to a power of two of
  at least 16 (`size`), and `unpad` drops the padding; the batch then runs
  as programs of TILE rows. A padded unit has zero weights into and out of
  it, so it never reaches a real unit, and its gradients are dropped with
  it;
- bfloat16 and float16 compute in float32 (`accumulator`): every matmul
  accumulates in float32, the gates are float32, and the carry (h, and the
  LSTM's cell state c) stays float32 across all T steps inside the kernel.
  What leaves the kernel (the outputs, the final carry and what the backward
  pass keeps) is rounded to the input's dtype. float32 and float64 compute
  in their own dtype.

On a CPU the same cells run in Pallas' interpret mode, so the padded shapes
and the float32 arithmetic that a GPU kernel uses are the ones the tests
compare with the reference.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxrnn._pallas import pad_axis

# The batch rows of one program of a kernel: the padded batch (a power of
# two, at least 16) splits into programs of this many rows, which run on
# separate cores of a GPU, each with its own copy of W_hh. 16 is the smallest
# tile Triton's matmul takes, and keeps a program's gates and carry small
# (an LSTM's four [16, H] gate tiles rather than [B, H]); it is reasoned, not
# measured: a GPU should settle it.
TILE = 16


def size(n: int) -> int:
    """The padded size of a kernel dimension: a power of two, at least 16."""
    return max(16, 1 << max(n - 1, 0).bit_length())


def accumulator(dtype: Any) -> jnp.dtype:
    """The dtype a kernel computes in: float32 for 16-bit floats, else dtype."""
    dtype = jnp.dtype(dtype)
    return jnp.dtype(jnp.float32) if dtype.itemsize < 4 else dtype


def _dot(a: jax.Array, w: jax.Array) -> jax.Array:
    """a [B, K] @ w [K, N]: operands in w's dtype, accumulated in a's."""
    return jax.lax.dot(a.astype(w.dtype), w, preferred_element_type=a.dtype)


def _dots(ds, ws) -> jax.Array:
    """sum_g ds[g] @ ws[g]: the gradient that reaches h through every gate."""
    total = _dot(ds[0], ws[0])
    for d, w in zip(ds[1:], ws[1:]):
        total = total + _dot(d, w)
    return total


def _sigmoid_grad(s):
    return s * (1 - s)


# forward(w_t, extra, xw, carry) -> (carry, saved), where w_t holds each
# gate's block of w_hh transposed ([H, H]) and xw each gate's projection.
# backward(w, extra, saved, prev, new, dcarry) -> (dprev, dxw, dhw), where w
# holds the blocks themselves and dxw, dhw one array per gate (see _fused).


def _lstm_forward(w_t, extra, xw, carry):
    h, c = carry
    z = [x + _dot(h, w) for x, w in zip(xw, w_t)]
    i, f, o = jax.nn.sigmoid(z[0]), jax.nn.sigmoid(z[1]), jax.nn.sigmoid(z[3])
    g = jnp.tanh(z[2])
    c_new = f * c + i * g
    return (o * jnp.tanh(c_new), c_new), (i, f, g, o)


def lstm_gate_grads(saved, prev, new, dcarry):
    """The LSTM's gradients at its gate pre-activations (i, f, g, o), and
    dL/dc_t, from the saved gates and the carries around the step; shared
    with `_xla_cells`, which joins the four."""
    i, f, g, o = saved
    tc = jnp.tanh(new[1])
    dh, dc = dcarry
    dc = dc + dh * o * (1 - tc * tc)
    dz = (
        dc * g * _sigmoid_grad(i),
        dc * prev[1] * _sigmoid_grad(f),
        dc * i * (1 - g * g),
        dh * tc * _sigmoid_grad(o),
    )
    return dz, dc


def _lstm_backward(w, extra, saved, prev, new, dcarry):
    dz, dc = lstm_gate_grads(saved, prev, new, dcarry)
    return (_dots(dz, w), dc * saved[1]), dz, dz


def _gru_forward(w_t, b_hn, xw, carry):
    (h,) = carry
    x_r, x_z, x_n = xw
    r = jax.nn.sigmoid(x_r + _dot(h, w_t[0]))
    z = jax.nn.sigmoid(x_z + _dot(h, w_t[1]))
    h_n = _dot(h, w_t[2])
    if b_hn is not None:
        h_n = h_n + b_hn[None]
    n = jnp.tanh(x_n + r * h_n)
    return (n + z * (h - n),), (r, z, n, h_n)


def gru_gate_grads(saved, prev, dcarry):
    """The GRU's gradients at r, z and n's pre-activations (dn is also the
    gradient at x_n), and at h_n (inside the reset product)."""
    r, z, n, h_n = saved
    (dh,) = dcarry
    dn = dh * (1 - z) * (1 - n * n)
    dr = dn * h_n * _sigmoid_grad(r)
    dz = dh * (prev[0] - n) * _sigmoid_grad(z)
    return (dr, dz, dn), (dr, dz, dn * r)


def _gru_backward(w, b_hn, saved, prev, new, dcarry):
    dxw, dhw = gru_gate_grads(saved, prev, dcarry)
    return (dcarry[0] * saved[1] + _dots(dhw, w),), dxw, dhw


_ACTIVATIONS = {"tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu}


def _rnn_forward(activation, w_t, extra, xw, carry):
    (h,) = carry
    return (_ACTIVATIONS[activation](xw[0] + _dot(h, w_t[0])),), ()


def rnn_grad(activation, new, dcarry):
    """The Elman RNN's gradient at its pre-activation, from h_t = g1(z_t)."""
    (h_new,) = new
    (dh,) = dcarry
    if activation == "tanh":
        return dh * (1 - h_new * h_new)
    if activation == "sigmoid":
        return dh * _sigmoid_grad(h_new)
    return jnp.where(h_new > 0, dh, jnp.zeros_like(dh))


def _rnn_backward(activation, w, extra, saved, prev, new, dcarry):
    dz = rnn_grad(activation, new, dcarry)
    return (_dot(dz, w[0]),), (dz,), (dz,)


def cell(name: str, activation: str) -> tuple[Callable, Callable, bool, int]:
    """(forward, backward, split_recurrent, blocks), as `_xla_cells.Cell` has them."""
    if name == "lstm":
        return _lstm_forward, _lstm_backward, False, 4
    if name == "gru":
        return _gru_forward, _gru_backward, True, 3
    return (
        functools.partial(_rnn_forward, activation),
        functools.partial(_rnn_backward, activation),
        False,
        1,
    )


def _pad_gates(a: jax.Array, gates: int, n: int) -> jax.Array:
    """Pad each gate's block of rows of a [G*H, ...] to n rows."""
    blocks = a.reshape(gates, a.shape[0] // gates, *a.shape[1:])
    return pad_axis(blocks, 1, n).reshape(gates * n, *a.shape[1:])


def pad(params: Any, carry: tuple, xs: jax.Array, mask: Any):
    """The kernel's sizes: B and H padded with zeros to `size(B)`, `size(H)`.

    params are a cell's (w_hh [G*H, H] gives G); carry holds [B, H] leaves;
    xs is [T, B, D] (D stays: the input projection is one matmul outside the
    kernel); mask is [T, B] or None.
    """
    gates = params.w_hh.shape[0] // params.w_hh.shape[1]
    hidden = size(params.w_hh.shape[1])
    batch = size(xs.shape[1])
    w_hh = pad_axis(_pad_gates(params.w_hh, gates, hidden), 1, hidden)
    new = {"w_ih": _pad_gates(params.w_ih, gates, hidden), "w_hh": w_hh}
    if params.b is not None:
        new["b"] = _pad_gates(params.b, gates, hidden)
    if getattr(params, "b_hn", None) is not None:
        new["b_hn"] = pad_axis(params.b_hn, 0, hidden)
    carry = tuple(pad_axis(pad_axis(c, 0, batch), 1, hidden) for c in carry)
    xs = pad_axis(xs, 1, batch)
    mask = None if mask is None else pad_axis(mask, 1, batch)
    return params._replace(**new), carry, xs, mask


def unpad(final: tuple, ys: jax.Array, batch: int, hidden: int):
    """Drop `pad`'s rows and units from the final carry and ys [T, B, H]."""
    return tuple(c[:batch, :hidden] for c in final), ys[:, :batch, :hidden]
