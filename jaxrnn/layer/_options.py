"""`apply_layer`'s arguments, checked once and resolved into `Options`.

Every check raises at trace time in the format of `jaxrnn._checks`; the
loop over layers and directions then reads only resolved values.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrnn import _checks, _unroll
from jaxrnn.cells._registry import CellSpec
from jaxrnn.layer import _regularise
from jaxrnn.layer._params import State, initial_carry, structure


class Options(NamedTuple):
    """apply_layer's arguments, checked and resolved."""

    spec: CellSpec
    xs: jax.Array
    mask: jax.Array | None
    reset: jax.Array | None
    reset_backward: jax.Array | None
    state: State
    rate: float
    recurrent_rate: float
    zone_rates: Any
    zoning: bool
    training: bool
    key: jax.Array | None
    unroll: int | bool
    checkpoint: str | int | None
    step: Any
    activation: Any
    matmul_dtype: Any


def _check_cells(fn: str, params: Any, step: Any, state: State) -> None:
    """Each layer's and direction's params, checked by the reference step
    itself, called abstractly on one example (`jax.eval_shape`: at trace
    time, at no cost per step): every impl refuses a wrong shape or dtype
    with the reference's message, before any of them runs."""
    # One example's carry: the state's leaves are [L*D, B, .].
    carry = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[2:], a.dtype), state)
    width = params.input_size
    for layer, cells in enumerate(params.cells):
        for direction, cell in enumerate(cells):
            x = jax.ShapeDtypeStruct((width,), params.dtype)
            try:
                jax.eval_shape(step, cell, carry, x)
            except (TypeError, ValueError) as error:
                where = f"{fn}: params.cells[{layer}][{direction}]: "
                raise type(error)(where + str(error)) from None
        width = params.features


def _batch_first(fn: str, arg: str, value: Any, batch_time: tuple[int, int]) -> Any:
    """A time-major mask or reset [T, B], checked and turned to [B, T]."""
    if value is None:
        return None
    value = _checks.bool_mask(fn, value, arg)
    batch_size, seq_len = batch_time
    _checks.shape(
        fn,
        arg,
        value,
        (seq_len, batch_size),
        "[T, B]",
        "With time_major=True, masks are time-major like xs.",
    )
    return value.T


def resolve(fn: str, params: Any, xs: Any, **kw: Any) -> Options:
    """Check every argument of apply_layer and resolve its defaults."""
    spec = structure(fn, params)
    time_major = _checks.flag(fn, "time_major", kw["time_major"])
    layout = "[T, B, D]" if time_major else "[B, T, D]"
    xs = _checks.float_array(
        fn,
        "xs",
        xs,
        ndim=3,
        hint="It takes a time-major [T, B, D] (time_major=True)."
        if time_major
        else "It takes a batch-first [B, T, D]; add a batch axis with xs[None] "
        "for one sequence, or pass time_major=True for [T, B, D].",
    )
    if xs.shape[-1] != params.input_size:
        _checks.fail(
            fn,
            "xs",
            f"must be {layout} with D = {params.input_size} (the layer's input_size)",
            f"shape {tuple(xs.shape)}",
        )
    _checks.same_dtype(fn, "xs", xs, params.dtype, "params")
    mask, reset = kw["mask"], kw["reset"]
    if time_major:
        xs = jnp.swapaxes(xs, 0, 1)
        mask = _batch_first(fn, "mask", mask, xs.shape[:2])
        reset = _batch_first(fn, "reset", reset, xs.shape[:2])
        hint = "With time_major=True, lengths is still [B]."
    else:
        hint = (
            "apply_layer reads xs batch-first, [B, T, D]; for time-major "
            "[T, B, D] data pass time_major=True."
        )
    batch_size, seq_len = xs.shape[:2]
    batch = (batch_size,)
    mask = _unroll.resolve_mask(
        fn, seq_len, mask, kw["lengths"], batch=batch, hint=hint
    )
    reset = _unroll.resolve_reset(fn, seq_len, reset, batch=batch, hint=hint)
    # Padding never reaches a cell, on any path: NaN there gives zero gradients.
    xs = _unroll.zero_masked(xs, mask)
    checkpoint = _unroll.resolve_checkpoint(fn, kw["checkpoint"], seq_len)
    if not kw["return_sequences"] and (kw["include_initial"] or params.residual):
        _checks.fail(
            fn,
            "return_sequences",
            "must be True with include_initial=True or a residual layer",
            "False",
            "Both act on the outputs of every step.",
        )
    state = initial_carry(fn, params, spec, kw["initial_state"], batch_size)
    rate = _regularise.rate(fn, "dropout", kw["dropout"])
    recurrent_rate = _regularise.rate(fn, "recurrent_dropout", kw["recurrent_dropout"])
    zone_rates = _regularise.zoneout_rates(fn, kw["zoneout"], spec)
    zoning = any(r > 0 for r in jax.tree.leaves(zone_rates))
    training = bool(kw["training"])
    if not training:
        rate = recurrent_rate = 0.0
    if (rate or recurrent_rate or (training and zoning)) and kw["key"] is None:
        _checks.fail(
            fn,
            "key",
            "is needed when training with dropout, recurrent_dropout or zoneout",
            "None",
            "Pass a PRNG key for training, or training=False for evaluation.",
        )
    if rate > 0 and params.num_layers == 1:
        warnings.warn(
            f"{fn}: dropout={rate} has no effect with num_layers=1: it "
            "acts between layers, as in PyTorch.",
            stacklevel=3,
        )
    step = spec.step
    if spec.activation:
        step = functools.partial(step, activation=params.activation)
    if kw["matmul_dtype"] is not None:
        _checks.float_dtype(fn, kw["matmul_dtype"])
        step = functools.partial(step, matmul_dtype=kw["matmul_dtype"])
    _check_cells(fn, params, step, state)
    # The backward direction starts a segment at the last step before a reset.
    reset_backward = None
    if reset is not None:
        reset_backward = jnp.concatenate(
            [reset[:, 1:], jnp.zeros((batch_size, min(seq_len, 1)), bool)], axis=1
        )
    return Options(
        spec,
        xs,
        mask,
        reset,
        reset_backward,
        state,
        rate,
        recurrent_rate,
        zone_rates,
        zoning,
        training,
        kw["key"],
        kw["unroll"],
        checkpoint,
        step,
        params.activation,
        kw["matmul_dtype"],
    )
