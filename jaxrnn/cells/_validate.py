"""The checks every step makes of its params, input and carry.

Shapes and dtypes are static under `jax.jit`, so these run in plain Python
while a step is traced, and a bad argument fails before XLA sees it, in the
format of `jaxrnn._checks`. The LSTM's carry check is `_lstm.check_carry`,
beside `LSTMCarry`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxrnn import _checks


def params(
    fn: str,
    params: Any,
    cls: type,
    gates: int,
    *,
    hidden_size: int | None = None,
    vectors: dict[str, int] | None = None,
    diagonal: bool = False,
    recurrent: bool = True,
) -> tuple[int, int, jnp.dtype]:
    """Check a cell's params: its type, shapes and one common dtype.

    w_ih must be [G*H, D] and w_hh [G*H, R], with R = H unless `hidden_size`
    is given (a projected cell, where R is the projection size P). b is
    [G*H] and b_hn [H], each optional. `vectors` names further 1-D fields
    and their sizes in units of H (peephole weights, layer-norm gains); a
    field whose name starts with "b" may be None, like the biases. A
    `diagonal` cell's w_hh is the vector [H] of one recurrent weight a unit;
    a cell that is not `recurrent` (whose gates read x_t alone) has none.

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
    if recurrent:
        w_hh = _checks.float_array(
            fn, "params.w_hh", params.w_hh, ndim=1 if diagonal else 2
        )
        hidden = w_hh.shape[-1] if hidden_size is None else hidden_size
    else:
        w_hh = w_ih
        hidden = _rows(fn, w_ih, gates)
    recurrent_size = w_hh.shape[-1]
    rows = f"{gates}H" if gates > 1 else "H"
    columns = "H" if hidden_size is None else "P"
    if recurrent and not diagonal:
        _checks.shape(
            fn,
            "params.w_hh",
            w_hh,
            (gates * hidden, recurrent_size),
            f"[{rows}, {columns}]",
        )
    _checks.shape(
        fn, "params.w_ih", w_ih, (gates * hidden, w_ih.shape[1]), f"[{rows}, D]"
    )
    # The dtype every other field must share: w_hh's, or w_ih's without one.
    first = "params.w_hh" if recurrent else "params.w_ih"
    _checks.same_dtype(fn, "params.w_ih", w_ih, w_hh.dtype, first)
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
        _checks.same_dtype(fn, f"params.{name}", value, w_hh.dtype, first)
    return w_ih.shape[1], hidden, jnp.dtype(w_hh.dtype)


def _rows(fn: str, w_ih: jax.Array, gates: int) -> int:
    """H from w_ih [G*H, D], whose rows must be G equal blocks."""
    rows = w_ih.shape[0]
    if rows == 0 or rows % gates:
        _checks.fail(
            fn,
            "params.w_ih",
            f"must be [{gates}H, D] with H >= 1",
            f"shape {tuple(w_ih.shape)}",
        )
    return rows // gates


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
