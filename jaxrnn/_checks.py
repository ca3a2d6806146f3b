"""Validators that raise clear errors at trace time.

Shapes and dtypes are static under `jax.jit`, so every check here runs in plain
Python while the function is traced, and a bad argument fails before XLA sees
it. Messages follow one format:

    <function>: <argument> <expected>, got <actual>. <hint>
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def describe(x: Any) -> str:
    """What a value is, for messages: an array's shape and dtype, else its type."""
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return f"an array of shape {tuple(x.shape)} and dtype {jnp.dtype(x.dtype).name}"
    return f"a {type(x).__name__}"


def fail(
    fn: str, arg: str, expected: str, got: str, hint: str = "", *, kind=ValueError
):
    """Raise `kind` with the house message format."""
    message = f"{fn}: {arg} {expected}, got {got}."
    if hint:
        message += f" {hint}"
    raise kind(message)


def as_array(fn: str, arg: str, x: Any) -> jax.Array:
    """Convert an array-like to a JAX array, with a clear error if impossible."""
    if isinstance(x, (jax.Array, np.ndarray, np.generic)):
        return jnp.asarray(x)
    if isinstance(x, (numbers.Number, list, tuple)):
        try:
            return jnp.asarray(x)
        except (TypeError, ValueError) as error:
            fail(
                fn,
                arg,
                "must be an array",
                f"{type(x).__name__} ({error})",
                kind=TypeError,
            )
    fail(fn, arg, "must be an array", f"a {type(x).__name__}", kind=TypeError)


def int_array(fn: str, arg: str, x: Any, what: str = "must have an integer dtype"):
    """x as an array with an integer dtype, or a TypeError naming `arg`."""
    x = as_array(fn, arg, x)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        fail(fn, arg, what, f"dtype {x.dtype.name}", kind=TypeError)
    return x


def float_array(
    fn: str, arg: str, x: Any, *, ndim: int | None = None, hint: str = ""
) -> jax.Array:
    """An array with a real floating dtype and, optionally, a given rank."""
    x = as_array(fn, arg, x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        fail(
            fn,
            arg,
            "must have a real floating dtype (float16, bfloat16, float32 or float64)",
            f"dtype {x.dtype.name}",
            "Cast it first, for example x.astype(jnp.float32).",
            kind=TypeError,
        )
    if ndim is not None and x.ndim != ndim:
        fail(fn, arg, f"must be {ndim}-D", describe(x), hint)
    return x


def same_dtype(fn: str, arg: str, x: jax.Array, dtype: Any, owner: str) -> None:
    """Require `x.dtype == dtype`; `owner` names where `dtype` comes from."""
    if jnp.dtype(x.dtype) != jnp.dtype(dtype):
        fail(
            fn,
            arg,
            f"must have the dtype of {owner} ({jnp.dtype(dtype).name})",
            f"dtype {jnp.dtype(x.dtype).name}",
            f"Cast it with .astype(jnp.{jnp.dtype(dtype).name}).",
            kind=TypeError,
        )


def shape(
    fn: str,
    arg: str,
    x: jax.Array,
    expected: tuple[int, ...],
    legend: str,
    hint: str = "",
) -> None:
    """Require `x.shape == expected`; `legend` spells it in axis letters."""
    if tuple(x.shape) != tuple(expected):
        fail(
            fn,
            arg,
            f"must have shape {legend} = {tuple(expected)}",
            f"shape {tuple(x.shape)}",
            hint,
        )


def instance(fn: str, arg: str, value: Any, kind: type, what: str, hint: str = ""):
    """Require isinstance(value, kind); `what` names the kind in the message."""
    if not isinstance(value, kind):
        fail(fn, arg, f"must be {what}", describe(value), hint, kind=TypeError)
    return value


def positive_int(fn: str, arg: str, value: Any) -> int:
    """A Python int >= 1 (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        fail(fn, arg, "must be a positive int", repr(value), kind=TypeError)
    if value < 1:
        fail(fn, arg, "must be a positive int", repr(value))
    return int(value)


def positive_float(fn: str, arg: str, value: Any) -> float:
    """A finite Python number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fail(fn, arg, "must be a positive number", repr(value), kind=TypeError)
    if not (np.isfinite(value) and value > 0):
        fail(fn, arg, "must be a positive finite number", repr(value))
    return float(value)


def float_dtype(fn: str, dtype: Any) -> jnp.dtype:
    """A real floating dtype, for the `dtype=` argument of the initialisers."""
    try:
        resolved = jnp.dtype(dtype)
    except TypeError:
        fail(fn, "dtype", "must be a floating dtype", repr(dtype), kind=TypeError)
    if not jnp.issubdtype(resolved, jnp.floating):
        fail(fn, "dtype", "must be a floating dtype", resolved.name, kind=TypeError)
    if jax.dtypes.canonicalize_dtype(resolved) != resolved:
        fail(
            fn,
            "dtype",
            f"must be one that JAX can make: {resolved.name} needs JAX's 64-bit "
            "mode, which is off (JAX would silently make float32)",
            resolved.name,
            "Enable it at startup with jax.config.update('jax_enable_x64', True) "
            "or JAX_ENABLE_X64=1, or use dtype=jnp.float32.",
        )
    return resolved


def choice(fn: str, arg: str, value: Any, options: tuple[str, ...]) -> str:
    """One of a fixed set of names."""
    if value not in options:
        fail(fn, arg, f"must be one of {', '.join(map(repr, options))}", repr(value))
    return value


def work_dtype(dtype: Any) -> jnp.dtype:
    """The precision to accumulate in: float64 for float64, else float32."""
    return jnp.dtype(jnp.float64 if jnp.dtype(dtype) == jnp.float64 else jnp.float32)


def bool_mask(fn: str, mask: Any, arg: str = "mask") -> jax.Array:
    """A mask array (`arg` names it in errors), which must be boolean."""
    mask = as_array(fn, arg, mask)
    if mask.dtype != jnp.bool_:
        fail(
            fn,
            arg,
            "must have dtype bool",
            f"dtype {mask.dtype.name}",
            f"Use {arg}.astype(bool).",
            kind=TypeError,
        )
    return mask


def flag(fn: str, arg: str, value: Any) -> bool:
    """A static on/off option, which must be a Python bool (not an array)."""
    if not isinstance(value, (bool, np.bool_)):
        fail(fn, arg, "must be True or False", describe(value), kind=TypeError)
    return bool(value)
