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
    if init == "torch":
        k = 1.0 / math.sqrt(hidden_size)
        return (
            uniform(key_ih, (gates * hidden_size, input_size), k, dtype),
            uniform(key_hh, (gates * hidden_size, recurrent_size), k, dtype),
        )
    glorot = math.sqrt(6.0 / (input_size + hidden_size))
    w_ih = uniform(key_ih, (gates * hidden_size, input_size), glorot, dtype)
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


def params(
    fn: str,
    params: Any,
    cls: type,
    gates: int,
    *,
    hidden_size: int | None = None,
    vectors: dict[str, int] | None = None,
) -> tuple[int, int, jnp.dtype]:
    """Check a cell's params: its type, shapes and one common dtype.

    w_ih must be [G*H, D] and w_hh [G*H, R], with R = H unless `hidden_size`
    is given (a projected cell, where R is the projection size P). b is
    [G*H] and b_hn [H], each optional. `vectors` names further 1-D fields
    and their sizes in units of H (peephole weights, layer-norm gains); a
    field whose name starts with "b" may be None, like the biases.

    Returns (D, H, dtype).
    """
    if not isinstance(params, cls):
        base = fn[: -len("_step")] if fn.endswith("_step") else fn.split("_")[0]
        _checks.fail(
            fn,
            "params",
            f"must be {cls.__name__}",
            _checks.describe(params),
            f"Create them with init_{base}.",
            kind=TypeError,
        )
    w_ih = _checks.float_array(fn, "params.w_ih", params.w_ih, ndim=2)
    w_hh = _checks.float_array(fn, "params.w_hh", params.w_hh, ndim=2)
    recurrent = w_hh.shape[1]
    hidden = recurrent if hidden_size is None else hidden_size
    rows = f"{gates}H" if gates > 1 else "H"
    columns = "H" if hidden_size is None else "P"
    _checks.shape(
        fn, "params.w_hh", w_hh, (gates * hidden, recurrent), f"[{rows}, {columns}]"
    )
    _checks.shape(
        fn, "params.w_ih", w_ih, (gates * hidden, w_ih.shape[1]), f"[{rows}, D]"
    )
    _checks.same_dtype(fn, "params.w_ih", w_ih, w_hh.dtype, "params.w_hh")
    vectors = vectors or {}
    sizes = {"b": gates * hidden, "b_hn": hidden}
    sizes.update({name: blocks * hidden for name, blocks in vectors.items()})
    for name, size in sizes.items():
        value = getattr(params, name, None)
        if value is None and (name.startswith("b") or name not in vectors):
            continue
        value = _checks.float_array(fn, f"params.{name}", value, ndim=1)
        legend = "[H]" if size == hidden else f"[{size // hidden}H]"
        _checks.shape(fn, f"params.{name}", value, (size,), legend)
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


def gated(
    fn: str,
    key: jax.Array,
    gates: int,
    input_size: Any,
    hidden_size: Any,
    *,
    init: Any,
    has_bias: bool,
    dtype: Any,
    forget_block: int | None = None,
    forget_bias: Any = None,
    recurrent_size: int | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """(w_ih [G*H, D], w_hh [G*H, R], b [G*H] or None) of a gated cell.

    `forget_block` is the index of the forget-gate block, which gets the
    `forget_bias` offset (see `forget_offset`). The arguments are checked
    in `fn`'s name.
    """
    input_size, hidden_size, init, dtype = sizes(
        fn, input_size, hidden_size, init, dtype
    )
    offset = 0.0
    if forget_block is not None:
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


def both_biases(fn: str, params: Any) -> None:
    """A GRU's b and b_hn are both arrays or both None."""
    if (params.b is None) != (params.b_hn is None):
        _checks.fail(
            fn,
            "params.b and params.b_hn",
            "must both be arrays or both be None",
            f"b={'None' if params.b is None else 'an array'} "
            f"and b_hn={'None' if params.b_hn is None else 'an array'}",
        )


def lstm_carry(
    fn: str, carry: Any, h_size: int, c_size: int, dtype: jnp.dtype
) -> tuple[jax.Array, jax.Array]:
    """(h [h_size], c [c_size]) from an LSTMCarry, checked."""
    from jaxrnn._lstm import LSTMCarry

    if not isinstance(carry, LSTMCarry):
        _checks.fail(
            fn,
            "carry",
            "must be LSTMCarry(h, c)",
            _checks.describe(carry),
            "Wrap a pair with LSTMCarry(h, c), or use init_lstm_carry.",
            kind=TypeError,
        )
    return (
        carry_array(fn, "carry.h", carry.h, h_size, dtype),
        carry_array(fn, "carry.c", carry.c, c_size, dtype),
    )


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


def recurrent_input(fn: str, h: jax.Array, mask: Any) -> jax.Array:
    """h as it enters w_hh: h, or h * recurrent_mask (variational dropout).

    The mask, when given, must be [R] (the size of h) in h's dtype.
    """
    if mask is None:
        return h
    mask = _checks.float_array(fn, "recurrent_mask", mask)
    _checks.shape(
        fn,
        "recurrent_mask",
        mask,
        h.shape,
        "[H]",
        "It multiplies h_{t-1} of one example; use jax.vmap for a batch.",
    )
    _checks.same_dtype(fn, "recurrent_mask", mask, h.dtype, "params")
    return h * mask


def layer_norm(z: jax.Array, groups: int, eps: float) -> jax.Array:
    """Normalise each of `groups` equal blocks of z [G*H] to mean 0, variance 1.

    The statistics are computed in float32 (float64 for float64 inputs), so
    half-precision cells do not lose the variance to rounding.
    """
    blocks = z.reshape(groups, -1).astype(_checks.work_dtype(z.dtype))
    mean = blocks.mean(axis=-1, keepdims=True)
    variance = jnp.square(blocks - mean).mean(axis=-1, keepdims=True)
    normalised = (blocks - mean) * jax.lax.rsqrt(variance + eps)
    return normalised.reshape(z.shape).astype(z.dtype)


def matmul(fn: str, matmul_dtype: Any):
    """The matmul of a step: `w @ v`, or, under the mixed-precision policy, the
    inputs cast to `matmul_dtype` (bfloat16, say) with the product accumulated
    and returned in the params' dtype."""
    if matmul_dtype is None:
        return jnp.matmul
    dtype = _checks.float_dtype(fn, matmul_dtype)

    def dot(w: jax.Array, v: jax.Array) -> jax.Array:
        return jnp.matmul(
            w.astype(dtype), v.astype(dtype), preferred_element_type=w.dtype
        )

    return dot
