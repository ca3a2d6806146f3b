"""Initialisers shared by the cells.

Two schemes, chosen with `init=`:

* "default": w_ih is Glorot-uniform per gate block (fan_in D, fan_out H),
  w_hh is orthogonal per gate block ([H, H] each), biases are zero. This is
  the Keras and Flax choice for the weights; orthogonal recurrent blocks keep
  the singular values of each block at 1, which helps long sequences.
* "torch": PyTorch's `reset_parameters`: every weight is U(-k, k) with
  k = 1/sqrt(H). PyTorch has two biases, b_ih and b_hh, each U(-k, k); our
  single `b` is their sum, so it is drawn as the sum of two uniforms and has
  exactly PyTorch's (triangular) distribution.

The LSTM-like cells add a forget-gate offset to b (`forget_offset`).
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


def input_weights(
    key: jax.Array,
    gates: int,
    input_size: int,
    hidden_size: int,
    init: str,
    dtype: jnp.dtype,
) -> jax.Array:
    """w_ih [G*H, D]: Glorot-uniform ("default") or U(-k, k), k = 1/sqrt(H)."""
    if init == "torch":
        limit = 1.0 / math.sqrt(hidden_size)
    else:
        limit = math.sqrt(6.0 / (input_size + hidden_size))
    return uniform(key, (gates * hidden_size, input_size), limit, dtype)


def weights(
    key: jax.Array,
    gates: int,
    input_size: int,
    hidden_size: int,
    init: str,
    dtype: jnp.dtype,
    *,
    recurrent_size: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """w_ih [G*H, D] and w_hh [G*H, R] under the chosen scheme.

    R, the size of the recurrent input, is H unless the cell projects its
    hidden state (R = P); the orthogonal blocks are then [H, P] with
    orthonormal columns or rows.
    """
    recurrent_size = hidden_size if recurrent_size is None else recurrent_size
    key_ih, key_hh = jax.random.split(key)
    w_ih = input_weights(key_ih, gates, input_size, hidden_size, init, dtype)
    if init == "torch":
        k = 1.0 / math.sqrt(hidden_size)
        return w_ih, uniform(key_hh, (gates * hidden_size, recurrent_size), k, dtype)
    orthogonal = jax.nn.initializers.orthogonal()
    work = _checks.work_dtype(dtype)
    blocks = [
        orthogonal(k, (hidden_size, recurrent_size), work)
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


def gated(
    fn: str,
    key: jax.Array,
    gates: int,
    input_size: Any,
    hidden_size: Any,
    init: Any,
    has_bias: bool,
    dtype: Any,
    *,
    forget: tuple[int, Any] | None = None,
    recurrent_size: int | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """(w_ih [G*H, D], w_hh [G*H, R], b [G*H] or None) of a gated cell,
    from its initialiser's arguments, checked in `fn`'s name.

    `forget` is (the index of the forget-gate block, the initialiser's
    `forget_bias`) for a cell with a forget gate: that block of b gets the
    offset (see `forget_offset`).
    """
    input_size, hidden_size, init, dtype = sizes(
        fn, input_size, hidden_size, init, dtype
    )
    offset = 0.0
    if forget is not None:
        forget_block, forget_bias = forget
        offset = forget_offset(fn, forget_bias, init, has_bias)
    key_w, key_b = jax.random.split(key)
    w_ih, w_hh = weights(
        key_w,
        gates,
        input_size,
        hidden_size,
        init,
        dtype,
        recurrent_size=recurrent_size,
    )
    if not has_bias:
        return w_ih, w_hh, None
    b = bias(key_b, gates * hidden_size, hidden_size, init, dtype)
    if offset:
        rows = slice(forget_block * hidden_size, (forget_block + 1) * hidden_size)
        b = b.at[rows].add(jnp.asarray(offset, dtype))
    return w_ih, w_hh, b


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
