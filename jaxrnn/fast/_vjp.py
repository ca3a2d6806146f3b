"""The fast path's driver: a whole batch per call, with a hand-written VJP.

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
`lax.scan`); `tests/fast/test_fused.py` checks them, for every cell, mask and
direction, against it. The path has no forward-mode derivative (a custom VJP
has none): use impl="scan" for `jax.jvp` or `jax.jacfwd`.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

import jax
import jax.numpy as jnp
from jax.custom_derivatives import CustomVJPPrimal, SymbolicZero

from jaxrnn.cells._lstm import LSTMCarry
from jaxrnn.fast import _cpu, _elman, _gru, _kernel, _lstm
from jaxrnn.fast._cell import Cell

# Each cell's fast forms: `xla(activation)` and `kernel(activation)`.
LAYOUTS = {"rnn": _elman, "lstm": _lstm, "gru": _gru}
# On a CPU the input projection is hoisted out of the loop only while it is
# small: at or below this many bytes ([T, B, G*H]) one matmul over all T is
# faster; above it, the per-step matmul inside the loop, which keeps its
# operands in cache, is (measured on the benchmark grid: the hoisted forward
# takes 0.79x the in-loop time at 6.5 MB, 1.17x at 26 MB). Elsewhere it is
# always hoisted, as cuDNN does.
HOIST_BYTES = 8 * 2**20


def _mm(a: jax.Array, w: jax.Array, out: Any = None) -> jax.Array:
    """a [..., K] times w [N, K]^T (the layout of every weight here), in the
    dtype `out` (default: the operands')."""
    dims = (((a.ndim - 1,), (1,)), ((), ()))
    return jax.lax.dot_general(a, w, dims, preferred_element_type=out)


def _tmm(dz: jax.Array, a: jax.Array) -> jax.Array:
    """sum over time and batch of dz [T, B, N]^T a [T, B, K]: [N, K], as one
    [T*B, N]^T [T*B, K] matmul (XLA:CPU runs it 1.2x faster than the same
    contraction over two axes: 26.6 ms against 31.3 at T=100, B=64, N=1024,
    K=256)."""
    dz = dz.reshape(-1, dz.shape[-1])
    a = a.reshape(-1, a.shape[-1])
    return jax.lax.dot_general(dz, a, (((0,), (0,)), ((), ())))


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
    """The time loop: `lax.scan`, or the same loop as one Pallas kernel.

    Pallas (and its Triton and Mosaic backends) is imported here, when a
    kernel loop is first traced, so that `import jaxrnn` does not load it.
    """
    if loop == "pallas" and jax.tree.leaves(inputs)[0].shape[0] > 0:
        pallas = importlib.import_module("jaxrnn.fast._pallas")
        return pallas.scan(body, carry, inputs, reverse=reverse, tile=_kernel.TILE)
    return jax.lax.scan(body, carry, inputs, reverse=reverse, unroll=unroll)


def _cast(tree, dtype):
    return jax.tree.map(lambda a: a.astype(dtype), tree)


def _forward(cell, w_ih, w_hh, b, extra, carry, xs, mask, unroll, save, loop):
    """Run the recurrence; return (carry, ys, saved, carries_before)."""
    dtype = xs.dtype
    hoist = cell.kernel or hoists(xs.shape[0], xs.shape[1], w_ih.shape[0], dtype)
    # The bias is added inside the loop: fused into the dot of the input
    # projection it costs XLA:CPU more than the whole loop's adds (14 ms of
    # 55 ms at B=64, T=100, H=256).
    # The kernels' cells compute in `accumulator` (float32 for 16-bit
    # inputs): the projection, the biases and the carry enter it cast once.
    acc = _kernel.accumulator(dtype) if cell.kernel else dtype
    if hoist:
        xw = tuple(jnp.split(_mm(xs, w_ih, acc), cell.blocks, axis=-1))
    else:
        xw = xs
        w_ih_t = jax.lax.optimization_barrier(w_ih.T)
    b, extra = (None if a is None else a.astype(acc) for a in (b, extra))
    biases = [None] * cell.blocks if b is None else jnp.split(b, cell.blocks)
    if cell.kernel:  # one [H, H] block per gate
        w_hh_t = tuple(w.T for w in jnp.split(w_hh, cell.blocks))
        carry = _cast(carry, acc)
    else:
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
            return held, _cast((saved, held), dtype)
        y = new[0] if m is None else jnp.where(m[:, None], new[0], 0)
        return held, y.astype(dtype)

    final, out = _loop(loop, body, carry, (xw, mask), unroll=unroll)
    final = _cast(final, dtype)
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
    dtype = xs.dtype
    if cell.kernel:  # one [H, H] block per gate; the carry in `accumulator`
        w_hh = tuple(jnp.split(w_hh, cell.blocks))
        dcarry = _cast(dcarry, _kernel.accumulator(dtype))

    def body(dcarry, inputs):
        *inputs, m = inputs
        saved_t, prev, new, dy = _cast(inputs, dcarry[0].dtype)
        d = (dcarry[0] + dy, *dcarry[1:])
        dprev, dxw, dhw = cell.backward(w_hh, extra, saved_t, prev, new, d)
        if m is not None:
            dprev = _hold(m, dprev, dcarry)
            dxw, dhw = jax.tree.map(lambda a: jnp.where(m[:, None], a, 0), (dxw, dhw))
        return dprev, _cast((dxw, dhw) if cell.split_recurrent else (dxw,), dtype)

    inputs = (saved, before, after, dys, mask)
    dcarry0, grads = _loop(loop, body, dcarry, inputs, reverse=True, unroll=unroll)
    dcarry0 = _cast(dcarry0, dtype)
    # The kernels' cells give one array per gate: join them outside the loop.
    dxw, dhw = (
        g if isinstance(g, jax.Array) else jnp.concatenate(g, -1)
        for g in (grads[0], grads[-1])
    )
    dw_ih = _tmm(dxw, xs)
    dw_hh = _tmm(dhw, before[0])
    db = jnp.sum(dxw, axis=(0, 1))
    dxs = dxw @ w_ih
    return dcarry0, dxs, dw_ih, dw_hh, db, dhw


def _cell(name: str, activation: str, loop: str) -> Cell:
    """The cell's step and derivative: the kernel layout for loop="pallas"."""
    layouts = LAYOUTS[name]
    return layouts.kernel(activation) if loop == "pallas" else layouts.xla(activation)


def _cpu_forward(name, activation, params, carry, xs, mask, save):
    """The forward pass as one call of the compiled kernels (`_cpu`): the
    input projection and the loop, in float32."""
    hs, cs, saved, h_t, c_t = _cpu.forward(
        name, activation, params, carry, xs, mask, save
    )
    lstm = name == "lstm"
    final = _cast((h_t, c_t) if lstm else (h_t,), xs.dtype)
    ys = hs if mask is None else jnp.where(mask[..., None], hs, 0)
    ys = ys.astype(xs.dtype)
    if not save:
        return final, ys
    return final, ys, saved, ((hs, cs) if lstm else (hs,))


def _cpu_backward(
    name, activation, params, xs, mask, saved, after, carry, dfinal, dys, need_x, need_w
):
    """The backward pass as one call of the compiled kernels: the reverse
    loop and every gradient, in float32, skipping dx or the weights'
    gradients where they are not wanted (zeros then stand for them)."""
    dxs, dw_ih, dw_hh, db, db_hn, dh0, dc0 = _cpu.backward(
        name,
        activation,
        params,
        xs,
        saved,
        after,
        carry,
        dys,
        dfinal,
        mask,
        need_x,
        need_w,
    )
    dcarry0 = _cast((dh0, dc0) if name == "lstm" else (dh0,), carry[0].dtype)
    if not need_x:
        dxs = jnp.zeros(xs.shape, xs.dtype)
    if not need_w:
        dw_ih, dw_hh = jnp.zeros_like(params.w_ih), jnp.zeros_like(params.w_hh)
        db = jnp.zeros((params.w_hh.shape[0],), params.w_hh.dtype)
        db_hn = jnp.zeros((params.w_hh.shape[1],), params.w_hh.dtype)
    return dcarry0, dxs.astype(xs.dtype), dw_ih, dw_hh, db, db_hn


def _run_forward(name, activation, unroll, loop, params, carry, xs, mask, save):
    if loop == "cpu":
        return _cpu_forward(name, activation, params, carry, xs, mask, save)
    cell = _cell(name, activation, loop)
    extra = getattr(params, "b_hn", None)
    w_ih, w_hh, b = params.w_ih, params.w_hh, params.b
    return _forward(cell, w_ih, w_hh, b, extra, carry, xs, mask, unroll, save, loop)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _sequence(name, activation, unroll, loop, params, carry, xs, mask):
    args = (name, activation, unroll, loop, params, carry, xs, mask)
    return _run_forward(*args, save=False)


def _primal(tree):
    """The values of `symbolic_zeros`' CustomVJPPrimal leaves, and whether
    any of them is perturbed (takes part in the differentiation)."""
    primal = lambda a: isinstance(a, CustomVJPPrimal)  # noqa: E731
    leaves = jax.tree.leaves(tree, is_leaf=primal)
    values = jax.tree.map(lambda a: a.value, tree, is_leaf=primal)
    return values, any(a.perturbed for a in leaves)


def _instantiate(tree, like):
    """Cotangents with symbolic zeros (outputs the loss does not use) made
    arrays of zeros shaped like the primal outputs `like`."""
    return jax.tree.map(
        lambda g, a: jnp.zeros(a.shape, a.dtype) if isinstance(g, SymbolicZero) else g,
        tree,
        like,
        is_leaf=lambda g: isinstance(g, SymbolicZero),
    )


def _sequence_fwd(name, activation, unroll, loop, params, carry, xs, mask):
    params, need_w = _primal(params)
    xs, need_x = _primal(xs)
    carry, _ = _primal(carry)
    mask, _ = _primal(mask)
    args = (name, activation, unroll, loop, params, carry, xs, mask)
    final, ys, saved, after = _run_forward(*args, save=True)
    # Kept for the backward pass: the gates, and the carry after every step
    # (the carry before each step is the one after the step before); and, as
    # the residuals' structure (None or ()), whether the gradients of the
    # input and of the weights are wanted, which the kernels then skip.
    needs = tuple(() if n else None for n in (need_x, need_w))
    return (final, ys), (params, xs, mask, saved, after, carry, needs)


def _sequence_bwd(name, activation, unroll, loop, residuals, cotangents):
    params, xs, mask, saved, after, carry, needs = residuals
    need_x, need_w = (n is not None for n in needs)
    final_like = tuple(jax.ShapeDtypeStruct(c.shape, xs.dtype) for c in carry)
    ys_like = jax.ShapeDtypeStruct((*xs.shape[:2], params.w_hh.shape[1]), xs.dtype)
    dfinal, dys = _instantiate(cotangents, (final_like, ys_like))
    if loop == "cpu":
        dcarry0, dxs, dw_ih, dw_hh, db, db_hn = _cpu_backward(
            name,
            activation,
            params,
            xs,
            mask,
            saved,
            after,
            carry,
            dfinal,
            dys,
            need_x,
            need_w,
        )
    else:
        cell = _cell(name, activation, loop)
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
        hidden = params.w_hh.shape[1]
        db_hn = jnp.sum(dhw[..., 2 * hidden :], (0, 1)) if name == "gru" else None
    grads = {"w_ih": dw_ih, "w_hh": dw_hh, "b": None if params.b is None else db}
    if name == "gru":
        grads["b_hn"] = None if params.b_hn is None else db_hn
    grads = {
        k: None if g is None else g.astype(getattr(params, k).dtype)
        for k, g in grads.items()
    }
    return type(params)(**grads), dcarry0, dxs, None


_sequence.defvjp(_sequence_fwd, _sequence_bwd, symbolic_zeros=True)


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
            (`jaxrnn.fast._pallas.scan`) with the cells' kernel layouts, in
            interpret mode on a CPU; "cpu" runs each as one call of the
            compiled CPU kernel (`jaxrnn.fast._cpu`), in float32.

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
    if loop == "pallas":  # the kernel's sizes (see _kernel.pad)
        batch, hidden = xs_t.shape[1], params.w_hh.shape[1]
        params, inner, xs_t, mask_t = _kernel.pad(params, inner, xs_t, mask_t)
    final, ys = _sequence(name, activation, unroll, loop, params, inner, xs_t, mask_t)
    if loop == "pallas":
        final, ys = _kernel.unpad(final, ys, batch, hidden)
    if reverse:
        ys = ys[::-1]
    final = LSTMCarry(*final) if lstm else final[0]
    return final, jnp.swapaxes(ys, 0, 1)
