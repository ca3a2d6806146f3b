"""The fast path: a whole batch of sequences per call, with a hand-written VJP.

The reference layer maps `unroll` over the batch and lets `jax.grad`
differentiate the scan. That is BPTT, and it is correct, but the backward pass
it produces does the weight-gradient matmuls inside the reverse loop, one
[G*H, B] x [B, H] product per step, and keeps every intermediate of every
step. Here the forward pass and the backward pass are written out for a
time-major block [T, B, D] (the layout of cuDNN's RNN), as one
`jax.custom_vjp`:

    forward:   xw = xs @ w_ih^T + b                   one matmul over all T
               for t: z_t = xw_t + h_{t-1} @ w_hh^T   the recurrence (scan)
                      (on a CPU, x_t @ w_ih^T moves into the loop when xw
                      would not fit in cache: see HOIST_BYTES)
                      save the gate activations and the carry
    backward:  for t = T-1 .. 0:                      the reverse scan
                      dz_t from the saved gates; dh_{t-1} = dz_t @ w_hh
               dw_hh = sum_t dz_t^T h_{t-1}           one matmul over all T
               dw_ih = sum_t dz_t^T x_t, dxs = dz @ w_ih, db = sum dz

so the loop carries only the recurrent matmul of each step, and the backward
pass keeps the gate activations and the carries, not XLA's residuals.

The values and gradients are those of the reference (the step under
`lax.scan`); `tests/test_fused.py` checks them, for every cell, mask and
direction, against it. The path has no forward-mode derivative (a custom VJP
has none): use impl="scan" for `jax.jvp` or `jax.jacfwd`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxrnn import _pallas
from jaxrnn._lstm import LSTMCarry

CELLS = ("rnn", "lstm", "gru")
# On a CPU the input projection is hoisted out of the loop only while it is
# small: at or below this many bytes ([T, B, G*H]) one matmul over all T is
# faster; above it, the per-step matmul inside the loop, which keeps its
# operands in cache, is (measured on the benchmark grid: the hoisted forward
# takes 0.79x the in-loop time at 6.5 MB, 1.17x at 26 MB). Elsewhere it is
# always hoisted, as cuDNN does.
HOIST_BYTES = 8 * 2**20
ACTIVATIONS = ("tanh", "sigmoid", "relu")


def _mm(a: jax.Array, w: jax.Array) -> jax.Array:
    """a [..., K] times w [N, K]^T: the layout of every weight here."""
    return jax.lax.dot_general(a, w, (((a.ndim - 1,), (1,)), ((), ())))


def _tmm(dz: jax.Array, a: jax.Array) -> jax.Array:
    """sum over time and batch of dz [T, B, N]^T a [T, B, K]: [N, K]."""
    return jax.lax.dot_general(dz, a, (((0, 1), (0, 1)), ((), ())))


class _Cell(NamedTuple):
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


def _sigmoid(x):
    """sigmoid(x) = tanh(x / 2) / 2 + 1/2, which XLA:CPU evaluates faster
    than its logistic, and exactly in real arithmetic."""
    return jnp.tanh(x * 0.5) * 0.5 + 0.5


def _sigmoid_grad(s):
    return s * (1 - s)


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
    i, f, g, o = saved
    tc = jnp.tanh(carry_new[1])
    dh, dc = dcarry
    dc = dc + dh * o * (1 - tc * tc)
    dz = jnp.concatenate(
        [
            dc * g * _sigmoid_grad(i),
            dc * carry_prev[1] * _sigmoid_grad(f),
            dc * i * (1 - g * g),
            dh * tc * _sigmoid_grad(o),
        ],
        axis=-1,
    )
    return (dz @ w_hh, dc * f), dz, dz


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
    r, z, n, h_n = saved
    (dh,) = dcarry
    dn = dh * (1 - z) * (1 - n * n)
    dr = dn * h_n * _sigmoid_grad(r)
    dz = dh * (carry_prev[0] - n) * _sigmoid_grad(z)
    dxw = jnp.concatenate([dr, dz, dn], axis=-1)
    dhw = jnp.concatenate([dr, dz, dn * r], axis=-1)
    return (dh * z + dhw @ w_hh,), dxw, dhw


_RNN_ACTIVATIONS = {"tanh": jnp.tanh, "sigmoid": _sigmoid, "relu": jax.nn.relu}


def _rnn_forward(activation, w_hh_t, extra, xw, carry):
    (h,) = carry
    h_new = _RNN_ACTIVATIONS[activation](xw[0] + h @ w_hh_t)
    return (h_new,), ()


def _rnn_backward(activation, w_hh, extra, saved, carry_prev, carry_new, dcarry):
    (h_new,) = carry_new
    (dh,) = dcarry
    if activation == "tanh":
        dz = dh * (1 - h_new * h_new)
    elif activation == "sigmoid":
        dz = dh * _sigmoid_grad(h_new)
    else:
        dz = jnp.where(h_new > 0, dh, jnp.zeros_like(dh))
    return (dz @ w_hh,), dz, dz


def _cell(name: str, activation: str) -> _Cell:
    if name == "lstm":
        return _Cell(_lstm_forward, _lstm_backward, False, 1)
    if name == "gru":
        return _Cell(_gru_forward, _gru_backward, True, 3)
    return _Cell(
        functools.partial(_rnn_forward, activation),
        functools.partial(_rnn_backward, activation),
        False,
        1,
    )


def _hold(m, new, old):
    """Where the step is masked out (m False) keep old; m is [B] or None."""
    if m is None:
        return new
    return jax.tree.map(lambda a, b: jnp.where(m[:, None], a, b), new, old)


def hoists(seq_len: int, batch: int, width: int, dtype: Any) -> bool:
    """Whether the input projection [T, B, width] is computed before the loop."""
    if jax.default_backend() != "cpu":
        return True
    return seq_len * batch * width * jnp.dtype(dtype).itemsize <= HOIST_BYTES


def _loop(loop, body, carry, inputs, *, reverse=False, unroll=1):
    """The time loop: `lax.scan`, or the same loop as one Pallas kernel."""
    if loop == "pallas" and jax.tree.leaves(inputs)[0].shape[0] > 0:
        return _pallas.scan(body, carry, inputs, reverse=reverse)
    return jax.lax.scan(body, carry, inputs, reverse=reverse, unroll=unroll)


def _forward(cell, w_ih, w_hh, b, extra, carry, xs, mask, unroll, save, loop):
    """Run the recurrence; return (carry, ys, saved, carries_before)."""
    hoist = hoists(xs.shape[0], xs.shape[1], w_ih.shape[0], xs.dtype)
    # The bias is added inside the loop: fused into the dot of the input
    # projection it costs XLA:CPU more than the whole loop's adds (14 ms of
    # 55 ms at B=64, T=100, H=256).
    if hoist:
        xw = tuple(jnp.split(_mm(xs, w_ih), cell.blocks, axis=-1))
    else:
        xw = xs
        w_ih_t = jax.lax.optimization_barrier(w_ih.T)
    biases = [None] * cell.blocks if b is None else jnp.split(b, cell.blocks)
    # h @ w_hh^T runs faster on XLA:CPU from a materialised [H, G*H] copy
    # (up to 1.4x at H = 512); the barrier keeps XLA from folding the
    # transpose back into the dot.
    w_hh_t = jax.lax.optimization_barrier(w_hh.T)

    def body(carry, inputs):
        xw_t, m = inputs
        if not hoist:
            xw_t = jnp.split(xw_t @ w_ih_t, cell.blocks, axis=-1)
        xw_t = [x if c is None else x + c[None] for x, c in zip(xw_t, biases)]
        new, saved = cell.forward(w_hh_t, extra, xw_t, carry)
        held = _hold(m, new, carry)
        if save:  # the outputs are the held h, masked after the loop
            return held, (saved, held)
        return held, new[0] if m is None else jnp.where(m[:, None], new[0], 0)

    final, out = _loop(loop, body, carry, (xw, mask), unroll=unroll)
    if not save:
        return final, out
    saved, after = out
    ys = after[0] if mask is None else jnp.where(mask[..., None], after[0], 0)
    return final, ys, saved, after


def _shift(carry, after):
    """The carries before each step: the initial carry, then after[:-1]."""
    return tuple(
        jnp.concatenate([c[None], a[:-1]], axis=0) if a.shape[0] else a
        for c, a in zip(carry, after)
    )


def _backward(
    cell, w_ih, w_hh, extra, xs, mask, saved, after, carry, dcarry, dys, unroll, loop
):
    before = _shift(carry, after)

    def body(dcarry, inputs):
        saved_t, prev, new, dy, m = inputs
        d = (dcarry[0] + dy, *dcarry[1:])
        dprev, dxw, dhw = cell.backward(w_hh, extra, saved_t, prev, new, d)
        if m is not None:
            dprev = _hold(m, dprev, dcarry)
            keep = m[:, None]
            dxw = jnp.where(keep, dxw, 0)
            dhw = jnp.where(keep, dhw, 0)
        return dprev, (dxw, dhw) if cell.split_recurrent else (dxw,)

    inputs = (saved, before, after, dys, mask)
    dcarry0, grads = _loop(loop, body, dcarry, inputs, reverse=True, unroll=unroll)
    dxw = grads[0]
    dhw = grads[-1]
    dw_ih = _tmm(dxw, xs)
    dw_hh = _tmm(dhw, before[0])
    db = jnp.sum(dxw, axis=(0, 1))
    dxs = dxw @ w_ih
    return dcarry0, dxs, dw_ih, dw_hh, db, dhw


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _sequence(name, activation, unroll, loop, params, carry, xs, mask):
    cell = _cell(name, activation)
    extra = getattr(params, "b_hn", None)
    w_ih, w_hh, b = params.w_ih, params.w_hh, params.b
    return _forward(cell, w_ih, w_hh, b, extra, carry, xs, mask, unroll, False, loop)


def _sequence_fwd(name, activation, unroll, loop, params, carry, xs, mask):
    cell = _cell(name, activation)
    extra = getattr(params, "b_hn", None)
    w_ih, w_hh, b = params.w_ih, params.w_hh, params.b
    final, ys, saved, after = _forward(
        cell, w_ih, w_hh, b, extra, carry, xs, mask, unroll, True, loop
    )
    # Kept for the backward pass: the gates, and the carry after every step
    # (the carry before each step is the one after the step before).
    return (final, ys), (params, xs, mask, saved, after, carry)


def _sequence_bwd(name, activation, unroll, loop, residuals, cotangents):
    params, xs, mask, saved, after, carry = residuals
    dfinal, dys = cotangents
    cell = _cell(name, activation)
    extra = getattr(params, "b_hn", None)
    dcarry0, dxs, dw_ih, dw_hh, db, dhw = _backward(
        cell,
        params.w_ih,
        params.w_hh,
        extra,
        xs,
        mask,
        saved,
        after,
        carry,
        dfinal,
        dys,
        unroll,
        loop,
    )
    grads = {"w_ih": dw_ih, "w_hh": dw_hh, "b": None if params.b is None else db}
    if name == "gru":
        hidden = params.w_hh.shape[1]
        grads["b_hn"] = (
            None if params.b_hn is None else jnp.sum(dhw[..., 2 * hidden :], (0, 1))
        )
    return type(params)(**grads), dcarry0, dxs, None


_sequence.defvjp(_sequence_fwd, _sequence_bwd)


def unsupported(name: str, activation: Any, **options: bool) -> str:
    """Why the fast path cannot run this layer ("" when it can).

    `options` maps the name of each layer option that the fast path lacks
    (reset, recurrent_dropout, ...) to whether it is in use.
    """
    if name not in CELLS:
        return f"cell={name!r} (it has {', '.join(map(repr, CELLS))})"
    if name == "rnn" and activation not in ACTIVATIONS:
        return f"activation={activation!r} (it has {', '.join(map(repr, ACTIVATIONS))})"
    used = [option for option, on in options.items() if on]
    return ", ".join(used)


def run(
    name: str,
    activation: str,
    params: Any,
    carry: Any,
    xs: jax.Array,
    mask: jax.Array | None,
    *,
    reverse: bool,
    unroll: int = 1,
    loop: str = "scan",
) -> tuple[Any, jax.Array]:
    """One direction of one layer over a batch: the reference's vmapped
    `unroll`, fast.

    Args:
        name: "rnn", "lstm" or "gru".
        activation: the RNN's g1 by name (ignored for the gated cells).
        params: that cell's params (RNNParams, LSTMParams or GRUParams, as
            `structure` checks; the VJP rebuilds their type for gradients).
        carry: the initial carry, h [B, H] or LSTMCarry of two [B, H].
        xs: [B, T, D], batch-first.
        mask: bool [B, T] or None; where False the carry is held and y = 0.
        reverse: run from t = T-1 down to 0 (outputs stay aligned with xs).
        unroll: the scan's unroll factor.
        loop: "scan" runs both time loops (forward, and backward in the VJP)
            with `lax.scan`; "pallas" runs each as one Pallas kernel
            (`jaxrnn._pallas.scan`), in interpret mode on a CPU.

    Returns:
        (final carry, ys [B, T, H]) in the reference's layout.
    """
    lstm = name == "lstm"
    inner = (carry.h, carry.c) if lstm else (carry,)
    xs_t = jnp.swapaxes(xs, 0, 1)
    mask_t = None if mask is None else jnp.swapaxes(mask, 0, 1)
    if reverse:
        xs_t = xs_t[::-1]
        mask_t = None if mask_t is None else mask_t[::-1]
    final, ys = _sequence(name, activation, unroll, loop, params, inner, xs_t, mask_t)
    if reverse:
        ys = ys[::-1]
    final = LSTMCarry(*final) if lstm else final[0]
    return final, jnp.swapaxes(ys, 0, 1)
