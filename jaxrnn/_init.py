"""Initialisers and parameter checks shared by the three cells.

Two schemes, chosen with `init=`:

* "default": w_ih is Glorot-uniform per gate block (fan_in D, fan_out H),
  w_hh is orthogonal per gate block ([H, H] each), biases are zero. This is
  the Keras and Flax choice for the weights; orthogonal recurrent blocks keep
  the singular values of each block at 1, which helps long sequences.
* "torch": PyTorch's `reset_parameters`: every weight is U(-k, k) with
  k = 1/sqrt(H). PyTorch has two biases, b_ih and b_hh, each U(-k, k); our
  single `b` is their sum, so it is drawn as the sum of two uniforms and has
  exactly PyTorch's (triangular) distribution.

Orthogonal matrices are computed in float32 (float64 when asked for) and then
cast, so bfloat16 parameters start from a well-conditioned matrix.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp

from jaxrnn import _checks

INITS = ("default", "torch")


def sizes(fn: str, input_size: Any, hidden_size: Any, init: Any, dtype: Any):
    """Validate the arguments every `init_<cell>` takes."""
    return (
        _checks.positive_int(fn, "input_size", input_size),
        _checks.positive_int(fn, "hidden_size", hidden_size),
        _checks.choice(fn, "init", init, INITS),
        _checks.float_dtype(fn, dtype),
    )


def uniform(
    key: jax.Array, shape: tuple[int, ...], limit: float, dtype: jnp.dtype
) -> jax.Array:
    work = _checks.work_dtype(dtype)
    return jax.random.uniform(key, shape, work, -limit, limit).astype(dtype)


def weights(
    key: jax.Array,
    gates: int,
    input_size: int,
    hidden_size: int,
    init: str,
    dtype: jnp.dtype,
) -> tuple[jax.Array, jax.Array]:
    """w_ih [G*H, D] and w_hh [G*H, H] under the chosen scheme."""
    key_ih, key_hh = jax.random.split(key)
    if init == "torch":
        k = 1.0 / math.sqrt(hidden_size)
        return (
            uniform(key_ih, (gates * hidden_size, input_size), k, dtype),
            uniform(key_hh, (gates * hidden_size, hidden_size), k, dtype),
        )
    glorot = math.sqrt(6.0 / (input_size + hidden_size))
    w_ih = uniform(key_ih, (gates * hidden_size, input_size), glorot, dtype)
    orthogonal = jax.nn.initializers.orthogonal()
    work = _checks.work_dtype(dtype)
    blocks = [
        orthogonal(k, (hidden_size, hidden_size), work)
        for k in jax.random.split(key_hh, gates)
    ]
    return w_ih, jnp.concatenate(blocks, axis=0).astype(dtype)


def bias(
    key: jax.Array,
    size: int,
    hidden_size: int,
    init: str,
    dtype: jnp.dtype,
    *,
    summed: bool = True,
) -> jax.Array:
    """`size` zeros, or PyTorch's U(-k, k) (`summed`: b_ih + b_hh, two draws)."""
    if init == "default":
        return jnp.zeros((size,), dtype)
    k = 1.0 / math.sqrt(hidden_size)
    key_ih, key_hh = jax.random.split(key)
    work = _checks.work_dtype(dtype)
    b = jax.random.uniform(key_ih, (size,), work, -k, k)
    if summed:
        b = b + jax.random.uniform(key_hh, (size,), work, -k, k)
    return b.astype(dtype)


def params(fn: str, params: Any, cls: type, gates: int) -> tuple[int, int, jnp.dtype]:
    """Check a cell's params: its type, shapes and one common dtype.

    Returns (D, H, dtype).
    """
    if not isinstance(params, cls):
        _checks.fail(
            fn,
            "params",
            f"must be {cls.__name__}",
            _checks.describe(params),
            f"Create them with init_{fn.split('_')[0]}.",
            kind=TypeError,
        )
    w_ih = _checks.float_array(fn, "params.w_ih", params.w_ih, ndim=2)
    w_hh = _checks.float_array(fn, "params.w_hh", params.w_hh, ndim=2)
    hidden = w_hh.shape[1]
    legend = f"[{gates}H, H]" if gates > 1 else "[H, H]"
    _checks.shape(fn, "params.w_hh", w_hh, (gates * hidden, hidden), legend)
    _checks.shape(
        fn,
        "params.w_ih",
        w_ih,
        (gates * hidden, w_ih.shape[1]),
        f"[{gates}H, D]" if gates > 1 else "[H, D]",
    )
    _checks.same_dtype(fn, "params.w_ih", w_ih, w_hh.dtype, "params.w_hh")
    for name in ("b", "b_hn"):
        value = getattr(params, name, None)
        if value is None:
            continue
        value = _checks.float_array(fn, f"params.{name}", value, ndim=1)
        size = hidden if name == "b_hn" else gates * hidden
        _checks.shape(
            fn,
            f"params.{name}",
            value,
            (size,),
            "[H]" if size == hidden else f"[{gates}H]",
        )
        _checks.same_dtype(fn, f"params.{name}", value, w_hh.dtype, "params.w_hh")
    return w_ih.shape[1], hidden, jnp.dtype(w_hh.dtype)


def step_input(fn: str, x: Any, input_size: int, dtype: jnp.dtype) -> jax.Array:
    """The input of one step: x [D] in the params' dtype."""
    x = _checks.float_array(fn, "x", x)
    if x.ndim != 1:
        _checks.fail(
            fn,
            "x",
            "must be one example [D]",
            f"shape {tuple(x.shape)}",
            "The step works on one time step of one sequence: use unroll "
            "for a sequence [T, D], and jax.vmap (or apply_layer) for a batch.",
        )
    _checks.shape(
        fn, "x", x, (input_size,), "[D]", f"D is params.w_ih.shape[1] = {input_size}."
    )
    _checks.same_dtype(fn, "x", x, dtype, "params")
    return x


def carry_array(
    fn: str, arg: str, h: Any, hidden_size: int, dtype: jnp.dtype
) -> jax.Array:
    """One carry array [H] in the params' dtype."""
    h = _checks.float_array(fn, arg, h)
    _checks.shape(
        fn,
        arg,
        h,
        (hidden_size,),
        "[H]",
        "The carry is for one example; use jax.vmap for a batch." if h.ndim > 1 else "",
    )
    _checks.same_dtype(fn, arg, h, dtype, "params")
    return h


def forget_offset(fn: str, forget_bias: Any, init: str, has_bias: bool) -> float:
    """The LSTM forget-gate offset: None means 1.0 ("default") or 0.0 ("torch")."""
    if forget_bias is None:
        return 1.0 if (init == "default" and has_bias) else 0.0
    if isinstance(forget_bias, bool) or not isinstance(forget_bias, numbers.Real):
        _checks.fail(
            fn,
            "forget_bias",
            "must be a number or None",
            repr(forget_bias),
            kind=TypeError,
        )
    if not has_bias and forget_bias != 0:
        _checks.fail(fn, "forget_bias", "needs bias=True", repr(forget_bias))
    return float(forget_bias)
