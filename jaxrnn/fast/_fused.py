"""The fused path's two passes: a whole batch per call, time-major.

The reference layer maps `unroll` over the batch and lets `jax.grad`
differentiate the scan. That is BPTT, and it is correct, but the backward pass
it produces does the weight-gradient matmuls inside the reverse loop, one
[G*H, B] x [B, H] product per step, and keeps every intermediate of every
step. Here the forward pass and the backward pass are written out for a
time-major block [T, B, D] (the layout of cuDNN's RNN), as the two halves of
one `jax.custom_vjp` (`_vjp`):

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
pass keeps the gate activations and the carries, not XLA's residuals. The
loops are `lax.scan` (loop="scan") or Pallas kernels (loop="pallas"); the
compiled CPU kernels (`_cpu`) run the same two passes in C++.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrnn import _unroll
from jaxrnn.cells import _registry
from jaxrnn.cells._registry import CellSpec
from jaxrnn.fast import _kernel
from jaxrnn.fast._cell import Cell

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
    # XLA:CPU, measured: an elementwise fusion that reads two slices of one
    # scan input runs several times slower than one that reads separate
    # arrays (4.7 ms against 0.7 ms for the GRU's gate arithmetic at B=32,
    # T=100, H=128), so the projection enters the loop one array per gate
    # block, and the cells save their gates one array each.
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
        held = _unroll.hold(m, new, carry)
        if save:  # the outputs are the held h, masked after the loop
            return held, _cast((saved, held), dtype)
        return held, _unroll.zero_masked(new[0], m).astype(dtype)

    final, out = _loop(loop, body, carry, (xw, mask), unroll=unroll)
    final = _cast(final, dtype)
    if not save:
        return final, out
    saved, after = out
    ys = _unroll.zero_masked(after[0], mask)
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
        dprev = _unroll.hold(m, dprev, dcarry)
        dxw, dhw = _unroll.zero_masked((dxw, dhw), m)
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
    if cell.w_hh_grad is None:
        dw_hh = _tmm(dhw, before[0])
    else:
        dw_hh = cell.w_hh_grad(dhw, before[0].astype(dhw.dtype), saved)
    db = jnp.sum(dxw, axis=(0, 1))
    dxs = dxw @ w_ih
    return dcarry0, dxs, dw_ih, dw_hh, db, dhw


def layouts(spec: CellSpec) -> Any:
    """The module of a cell's fast forms, `xla(activation)` and
    `kernel(activation)`: the one `CellSpec.fast` names."""
    return importlib.import_module(f"jaxrnn.fast.{spec.fast}")


def activations(spec: CellSpec) -> tuple[str, ...]:
    """The activations a cell's fast forms have (for cells that take one)."""
    return getattr(layouts(spec), "FAST_ACTIVATIONS", ())


def _cell(name: str, activation: str, loop: str) -> Cell:
    """The cell's step and derivative: the kernel layout for loop="pallas"."""
    forms = layouts(_registry.CELLS[name])
    return forms.kernel(activation) if loop == "pallas" else forms.xla(activation)


def forward_pass(name, activation, unroll, loop, params, carry, xs, mask, save):
    """The forward pass: (final carry, ys), and with `save` also (saved,
    the carry after every step), as the backward pass wants them."""
    cell = _cell(name, activation, loop)
    extra = getattr(params, "b_hn", None)
    w_ih, w_hh, b = params.w_ih, params.w_hh, params.b
    return _forward(cell, w_ih, w_hh, b, extra, carry, xs, mask, unroll, save, loop)


class Backward(NamedTuple):
    """What a backward pass reads (this module's, or the CPU kernels'): the
    forward pass's inputs, what it saved (`forward_pass` with `save`), and
    the cotangents of its outputs."""

    params: Any
    xs: jax.Array
    mask: jax.Array | None
    saved: Any
    after: Any
    carry: Any
    dfinal: Any
    dys: jax.Array


def backward_pass(name, activation, unroll, loop, args: Backward):
    """The backward pass: (dcarry0, dxs, dw_ih, dw_hh, db, db_hn); db_hn is
    the GRU's (else None)."""
    cell = _cell(name, activation, loop)
    params = args.params
    extra = getattr(params, "b_hn", None)
    dcarry0, dxs, dw_ih, dw_hh, db, dhw = _backward(
        cell, params.w_ih, params.w_hh, extra, *args[1:], unroll, loop
    )
    hidden = params.w_hh.shape[-1]
    db_hn = jnp.sum(dhw[..., 2 * hidden :], (0, 1)) if hasattr(params, "b_hn") else None
    return dcarry0, dxs, dw_ih, dw_hh, db, db_hn
