"""The fast path's driver: one `jax.custom_vjp` around two passes.

`run` is one direction of one layer over a whole batch, time-major inside:
the forward pass and the backward pass are those of `_fused` (the loops as
`lax.scan` or Pallas kernels) or of `_cpu` (the compiled CPU kernels), and
this module joins them into one differentiable function:

- `_sequence` is the `jax.custom_vjp`; with symbolic zeros it learns which
  of its inputs are differentiated, so that the backward pass skips dx
  when the input is data and the weight gradients when the weights are
  frozen (the kernels then do no such work; XLA drops the fused path's);
- each pass runs through `_shard`, so that under data parallelism each
  device runs it on its own rows and the weight gradients are summed
  across the devices.

The values and gradients are those of the reference (the step under
`lax.scan`); `tests/fast/test_fused.py` and `tests/fast/test_cpu.py` check
them, for every cell, mask and direction, against it. The path has no
forward-mode derivative (a custom VJP has none): use impl="scan" for
`jax.jvp` or `jax.jacfwd`.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax.custom_derivatives import CustomVJPPrimal, SymbolicZero

from jaxrnn.cells import _registry
from jaxrnn.cells._lstm import LSTMCarry
from jaxrnn.fast import _cpu, _fused, _kernel, _shard

_EMPTY = (0,)
# The loops of the compiled CPU kernels and their products' policy
# (csrc/gemm_bf16.h's Mm): float32; and matmul_dtype=bfloat16 by float32
# products of rounded operands, or by bfloat16 products.
CPU_LOOPS = {"cpu": 0, "cpu_round": 1, "cpu_native": 2}


def _forward_tree(name, activation, unroll, loop, save, devices, args):
    params, carry, xs, mask = args
    if loop in CPU_LOOPS:
        return _cpu.forward_pass(
            name, activation, params, carry, xs, mask, save, devices, CPU_LOOPS[loop]
        )
    return _fused.forward_pass(
        name, activation, unroll, loop, params, carry, xs, mask, save
    )


def _forward_leaves(name, activation, unroll, loop, save, tree, devices, *leaves):
    args = jax.tree.unflatten(tree, leaves)
    out = _forward_tree(name, activation, unroll, loop, save, devices, args)
    return tuple(jax.tree.leaves(out))


def _backward_tree(name, activation, unroll, loop, needs, devices, args):
    if loop in CPU_LOOPS:
        out = _cpu.backward_pass(
            name, activation, args, *needs, devices, CPU_LOOPS[loop]
        )
    else:
        out = _fused.backward_pass(name, activation, unroll, loop, args)
    dcarry0, *rest = out
    return tuple(dcarry0), tuple(jnp.zeros(_EMPTY) if g is None else g for g in rest)


def _backward_leaves(name, activation, unroll, loop, needs, tree, devices, *leaves):
    args = jax.tree.unflatten(tree, leaves)
    out = _backward_tree(name, activation, unroll, loop, needs, devices, args)
    return tuple(jax.tree.leaves(out))


def _dims(*parts):
    """The batch axis of every leaf: parts are (tree, axis) pairs."""
    return tuple(d for tree, d in parts for _ in jax.tree.leaves(tree))


def _through_shard(pass_leaves, pass_tree, static, args, ins, first, pure):
    """Run a pass through `_shard`: its leaves in, its tree back out. The
    first `first` output leaves (the carry's) have batch axis 0, the rest
    axis 1 in a forward pass; `first` None marks a backward pass, whose
    weight and bias gradients (after dx) are sums over the batch."""
    leaves, tree = jax.tree.flatten(args)
    shape = jax.eval_shape(lambda a: pass_tree(*static, 1, a), args)
    out_leaves, out_tree = jax.tree.flatten(shape)
    if first is None:  # backward: dcarry0..., dxs, dw_ih, dw_hh, db, db_hn
        carry = len(jax.tree.leaves(shape[0]))
        outs = (0,) * carry + (1,) + (None,) * (len(out_leaves) - carry - 1)
    else:
        outs = (0,) * first + (1,) * (len(out_leaves) - first)
    result = _shard.run(pass_leaves, (*static, tree), ins, outs, pure, *leaves)
    return jax.tree.unflatten(out_tree, result)


def _run_forward(name, activation, unroll, loop, params, carry, xs, mask, save):
    args = (params, carry, xs, mask)
    ins = _dims((params, None), (carry, 0), (xs, 1), (mask, 1))
    static = (name, activation, unroll, loop, save)
    return _through_shard(
        _forward_leaves,
        _forward_tree,
        static,
        args,
        ins,
        len(carry),
        loop not in CPU_LOOPS,
    )


# The batch axis of each field of a `_fused.Backward`.
_BACKWARD_AXES = _fused.Backward(None, 1, 1, 1, 1, 0, 0, 1)


def _run_backward(name, activation, unroll, loop, needs, args):
    ins = _dims(*zip(args, _BACKWARD_AXES))
    static = (name, activation, unroll, loop, needs)
    dcarry0, rest = _through_shard(
        _backward_leaves, _backward_tree, static, args, ins, None, loop not in CPU_LOOPS
    )
    return (dcarry0, *rest)


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
    needs = tuple(n is not None for n in needs)
    final_like = tuple(jax.ShapeDtypeStruct(c.shape, xs.dtype) for c in carry)
    ys_like = jax.ShapeDtypeStruct((*xs.shape[:2], params.w_hh.shape[-1]), xs.dtype)
    dfinal, dys = _instantiate(cotangents, (final_like, ys_like))
    args = _fused.Backward(params, xs, mask, saved, after, carry, dfinal, dys)
    dcarry0, dxs, dw_ih, dw_hh, db, db_hn = _run_backward(
        name, activation, unroll, loop, needs, args
    )
    grads = {"w_ih": dw_ih, "w_hh": dw_hh, "b": db, "b_hn": db_hn}
    grads = {
        k: None
        if getattr(params, k) is None
        else grads[k].astype(getattr(params, k).dtype)
        for k in params._fields
    }
    return type(params)(**grads), dcarry0, dxs.astype(xs.dtype), None


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
        name: the cell's name (one whose `CellSpec.fast` names its forms).
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
            compiled CPU kernel (`jaxrnn.fast._cpu`), in float32;
            "cpu_round" and "cpu_native" likewise, with the matmuls'
            operands rounded to bfloat16 (matmul_dtype=bfloat16), by float32
            or by bfloat16 products.

    Returns:
        (final carry, ys [B, T, H]) in the reference's layout.
    """
    lstm = _registry.CELLS[name].lstm_carry
    inner = (carry.h, carry.c) if lstm else (carry,)
    xs_t = jnp.swapaxes(xs, 0, 1)
    mask_t = None if mask is None else jnp.swapaxes(mask, 0, 1)
    if reverse:
        xs_t = xs_t[::-1]
        mask_t = None if mask_t is None else mask_t[::-1]
    if loop == "pallas":  # the kernel's sizes (see _kernel.pad)
        batch, hidden = xs_t.shape[1], params.w_hh.shape[-1]
        params, inner, xs_t, mask_t = _kernel.pad(params, inner, xs_t, mask_t)
    final, ys = _sequence(name, activation, unroll, loop, params, inner, xs_t, mask_t)
    if loop == "pallas":
        final, ys = _kernel.unpad(final, ys, batch, hidden)
    if reverse:
        ys = ys[::-1]
    final = LSTMCarry(*final) if lstm else final[0]
    return final, jnp.swapaxes(ys, 0, 1)
