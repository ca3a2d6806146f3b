"""The cells as the fused path runs them under XLA (impl="fused").

Each cell is a step and its hand-written derivative on time-major [B, .]
blocks, written for XLA:CPU (see `Cell`). The Pallas kernels' cells
(`jaxrnn._kernel`) have the same interface in the kernels' layout, and the
same pointwise derivatives, which both take from `_kernel`.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxrnn import _kernel


class Cell(NamedTuple):
    """One cell's step and its hand-written derivative, on [B, .] blocks.

    forward(w_hh_t, extra, xw_t, carry) -> (carry, saved)
    backward(w_hh, extra, saved, carry_prev, carry_new, dcarry)
        -> (dcarry_prev, dxw, dhw)

    The carry is a tuple whose first entry is h, the step's output. xw_t is
    the hoisted input projection with its bias, as a tuple of `blocks`
    arrays [B, G*H / blocks]; w_hh_t is w_hh transposed, [H, G*H]. dxw and
    dhw are the gradients with respect to the input projection and to the
    recurrent product h @ w_hh^T (they differ only for the GRU, whose reset
    gate multiplies the latter).

    XLA:CPU note, measured: an elementwise fusion that reads two slices of
    one scan input (the gate blocks of xw_t, or of saved gates stacked in
    one array) runs several times slower than one that reads separate
    arrays (4.7 ms against 0.7 ms for the GRU's gate arithmetic at B=32,
    T=100, H=128). So the GRU's projection enters the loop as three arrays,
    and the gates are saved for the backward pass one array per gate.
    """

    forward: Callable
    backward: Callable
    split_recurrent: bool
    blocks: int
    # True for `_kernel`'s cells (impl="pallas"): w_hh_t, w_hh, xw_t, dxw and
    # dhw are tuples of one [., H] array per gate, and the carry and the
    # arithmetic are in `_kernel.accumulator`'s dtype.
    kernel: bool = False


def _sigmoid(x):
    """sigmoid(x) = tanh(x / 2) / 2 + 1/2, which XLA:CPU evaluates faster
    than its logistic, and exactly in real arithmetic."""
    return jnp.tanh(x * 0.5) * 0.5 + 0.5


def _gate_scale(blocks: str, hidden: int, dtype) -> tuple[jax.Array, jax.Array]:
    """Per-unit (scale, offset) that turn one tanh into each gate's activation.

    With s = 0.5 on the sigmoid blocks ("s") and s = 1 on the tanh blocks
    ("t"), and offset 1 - s on sigmoid blocks and 0 on tanh blocks, every
    gate of a step is tanh(z * s) * s + offset: one transcendental over the
    whole [B, G*H] block, which XLA:CPU runs several times faster than
    separate sigmoids and tanhs on the slices of z.
    """
    scale = jnp.concatenate(
        [jnp.full((hidden,), 0.5 if b == "s" else 1.0, dtype) for b in blocks]
    )
    offset = jnp.where(scale == 1, jnp.zeros((), dtype), jnp.full((), 0.5, dtype))
    return scale[None], offset[None]


def _lstm_forward(w_hh_t, extra, xw, carry):
    h, c = carry
    z = xw[0] + h @ w_hh_t
    scale, offset = _gate_scale("ssts", h.shape[-1], z.dtype)
    i, f, g, o = jnp.split(jnp.tanh(z * scale) * scale + offset, 4, axis=-1)
    c_new = f * c + i * g
    return (o * jnp.tanh(c_new), c_new), (i, f, g, o)


def _lstm_backward(w_hh, extra, saved, carry_prev, carry_new, dcarry):
    dz, dc = _kernel.lstm_gate_grads(saved, carry_prev, carry_new, dcarry)
    dz = jnp.concatenate(dz, axis=-1)
    return (dz @ w_hh, dc * saved[1]), dz, dz


def _gru_forward(w_hh_t, b_hn, xw, carry):
    (h,) = carry
    hidden = h.shape[-1]
    x_r, x_z, x_n = xw
    hw = h @ w_hh_t
    r = _sigmoid(x_r + hw[:, :hidden])
    z = _sigmoid(x_z + hw[:, hidden : 2 * hidden])
    h_n = hw[:, 2 * hidden :]
    if b_hn is not None:
        h_n = h_n + b_hn[None]
    n = jnp.tanh(x_n + r * h_n)
    return (n + z * (h - n),), (r, z, n, h_n)


def _gru_backward(w_hh, b_hn, saved, carry_prev, carry_new, dcarry):
    dxw, dhw = _kernel.gru_gate_grads(saved, carry_prev, dcarry)
    dxw, dhw = jnp.concatenate(dxw, axis=-1), jnp.concatenate(dhw, axis=-1)
    return (dcarry[0] * saved[1] + dhw @ w_hh,), dxw, dhw


_RNN_ACTIVATIONS = {"tanh": jnp.tanh, "sigmoid": _sigmoid, "relu": jax.nn.relu}


def _rnn_forward(activation, w_hh_t, extra, xw, carry):
    (h,) = carry
    h_new = _RNN_ACTIVATIONS[activation](xw[0] + h @ w_hh_t)
    return (h_new,), ()


def _rnn_backward(activation, w_hh, extra, saved, carry_prev, carry_new, dcarry):
    dz = _kernel.rnn_grad(activation, carry_new, dcarry)
    return (dz @ w_hh,), dz, dz


def cell(name: str, activation: str) -> Cell:
    if name == "lstm":
        return Cell(_lstm_forward, _lstm_backward, False, 1)
    if name == "gru":
        return Cell(_gru_forward, _gru_backward, True, 3)
    return Cell(
        functools.partial(_rnn_forward, activation),
        functools.partial(_rnn_backward, activation),
        False,
        1,
    )
