"""Flax (linen and nnx) <-> jaxrnn: LSTMCell, OptimizedLSTMCell, GRUCell, SimpleCell.

Flax keeps one Dense per gate with the kernel as [in, out] (the transpose of
ours), puts the LSTM bias on the hidden side, and orders the LSTM carry
(c, h) where jaxrnn has LSTMCarry(h, c). The layouts, per cell:

    linen LSTMCell, OptimizedLSTMCell
        ii, if, ig, io: kernel [D, H];  hi, hf, hg, ho: kernel [H, H], bias [H]
    linen GRUCell
        ir, iz, in: kernel [D, H], bias [H];  hr, hz: kernel [H, H];
        hn: kernel [H, H], bias [H] (= b_hn)
    linen SimpleCell
        i: kernel [D, H], bias [H];  h: kernel [H, H]
    nnx LSTMCell
        as linen (the attribute for `if` is `if_`)
    nnx OptimizedLSTMCell
        dense_i: kernel [D, 4H];  dense_h: kernel [H, 4H], bias [4H]
    nnx GRUCell
        dense_i: kernel [D, 3H], bias [3H];  dense_h: kernel [H, 3H]
    nnx SimpleCell
        dense_i: kernel [D, H], bias [H];  dense_h: kernel [H, H]

nnx's GRUCell has no b_hn: its candidate is tanh(x_n + r * (W_hn h)). It
converts to jaxrnn exactly, with b_hn = 0; jaxrnn params convert to it only
when b_hn is zero (otherwise a ValueError: use the linen GRUCell, which has
it). A SimpleCell with residual=True computes g(W x + b + U h + h), which is
exactly an Elman cell with w_hh = U^T + I.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn.cells import _activations
from jaxrnn.cells._elman import RNNParams
from jaxrnn.cells._gru import GRUParams
from jaxrnn.cells._lstm import LSTMCarry, LSTMParams
from jaxrnn.interop import _common
from jaxrnn.layer._params import LayerParams

_GATES_LSTM = ("i", "f", "g", "o")
_GATES_GRU = ("r", "z", "n")


def _flax(fn: str):
    _common.require("flax", "flax", fn)
    from flax import linen, nnx

    return linen, nnx


def _value(x: Any) -> jax.Array:
    """The array inside an nnx Variable (or an array itself)."""
    return jnp.asarray(x[...])


def _nnx_gate(cell: Any, side: str, gate: str) -> Any:
    """The nnx LSTMCell's Linear for one gate; input-side f is `if_` (a keyword)."""
    return getattr(cell, "if_" if (side, gate) == ("i", "f") else side + gate)


def _check_gates(fn: str, cell: Any) -> None:
    if (
        getattr(cell, "gate_fn", jax.nn.sigmoid) is not jax.nn.sigmoid
        or getattr(cell, "activation_fn", jnp.tanh) is not jnp.tanh
    ):
        _checks.fail(
            fn,
            "cell",
            "must use gate_fn=sigmoid and activation_fn=tanh "
            "(the LSTM and GRU equations jaxrnn computes)",
            f"gate_fn={cell.gate_fn}, activation_fn={cell.activation_fn}",
        )


def _activation_of(cell: Any) -> Any:
    """A name for the SimpleCell's activation where it has one, else the callable."""
    g = cell.activation_fn
    for name, known in _activations.ELEMENTWISE.items():
        if g is known:
            return name
    return g


def _stack_t(kernels: list) -> jax.Array:
    """Per-gate flax kernels [in, H] -> one jaxrnn matrix [G*H, in]."""
    return jnp.concatenate([k.T for k in kernels], axis=0)


def _linen_params(variables: Any) -> dict:
    if not isinstance(variables, dict):
        _checks.fail(
            "from_flax",
            "variables",
            "must be a dict of linen variables",
            _checks.describe(variables),
            kind=TypeError,
        )
    return variables.get("params", variables)


def from_flax(cell: Any, variables: Any = None) -> LayerParams:
    """Convert a Flax RNN cell (linen with its variables, or nnx) to LayerParams.

    Args:
        cell: a linen or nnx LSTMCell, OptimizedLSTMCell, GRUCell or
            SimpleCell. LSTM and GRU cells must use the default gate_fn
            (sigmoid) and activation_fn (tanh).
        variables: for a linen cell, its variables ({"params": ...}, or the
            params dict itself); None for an nnx cell, which holds its own.

    Returns:
        A one-layer, one-direction LayerParams: run it with `apply_layer`, or
        take `.cells[0][0]` for `unroll`. Remember Flax's LSTM carry is (c, h):
        see `carry_from_flax`.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from flax import linen as nn
        >>> cell = nn.OptimizedLSTMCell(5)
        >>> x = jnp.ones((2, 3))
        >>> variables = cell.init(jax.random.key(0), cell.initialize_carry(
        ...     jax.random.key(1), x.shape), x)
        >>> p = from_flax(cell, variables)
        >>> p.cell, p.cells[0][0].w_ih.shape
        ('lstm', (20, 3))
    """
    fn = "from_flax"
    linen, nnx = _flax(fn)
    name = type(cell).__name__
    if isinstance(cell, linen.Module):
        if variables is None:
            _checks.fail(
                fn,
                "variables",
                "are needed for a linen cell",
                "None",
                "Pass the dict that cell.init returned.",
            )
        p = _linen_params(variables)
        if name in ("LSTMCell", "OptimizedLSTMCell"):
            _check_gates(fn, cell)
            return _common.single_layer(
                LSTMParams(
                    _stack_t([p[f"i{g}"]["kernel"] for g in _GATES_LSTM]),
                    _stack_t([p[f"h{g}"]["kernel"] for g in _GATES_LSTM]),
                    jnp.concatenate([p[f"h{g}"]["bias"] for g in _GATES_LSTM]),
                )
            )
        if name == "GRUCell":
            _check_gates(fn, cell)
            return _common.single_layer(
                GRUParams(
                    _stack_t([p[f"i{g}"]["kernel"] for g in _GATES_GRU]),
                    _stack_t([p[f"h{g}"]["kernel"] for g in _GATES_GRU]),
                    jnp.concatenate([p[f"i{g}"]["bias"] for g in _GATES_GRU]),
                    jnp.asarray(p["hn"]["bias"]),
                )
            )
        if name == "SimpleCell":
            return _simple(cell, p["i"]["kernel"], p["i"].get("bias"), p["h"]["kernel"])
    elif isinstance(cell, nnx.Module):
        if name == "LSTMCell":
            _check_gates(fn, cell)
            return _common.single_layer(
                LSTMParams(
                    _stack_t(
                        [_value(_nnx_gate(cell, "i", g).kernel) for g in _GATES_LSTM]
                    ),
                    _stack_t(
                        [_value(_nnx_gate(cell, "h", g).kernel) for g in _GATES_LSTM]
                    ),
                    jnp.concatenate(
                        [_value(_nnx_gate(cell, "h", g).bias) for g in _GATES_LSTM]
                    ),
                )
            )
        if name == "OptimizedLSTMCell":
            _check_gates(fn, cell)
            return _common.single_layer(
                LSTMParams(
                    _value(cell.dense_i.kernel).T,
                    _value(cell.dense_h.kernel).T,
                    _value(cell.dense_h.bias),
                )
            )
        if name == "GRUCell":
            _check_gates(fn, cell)
            bias = _value(cell.dense_i.bias)
            return _common.single_layer(
                GRUParams(
                    _value(cell.dense_i.kernel).T,
                    _value(cell.dense_h.kernel).T,
                    bias,
                    jnp.zeros((cell.hidden_features,), bias.dtype),
                )
            )
        if name == "SimpleCell":
            bias = getattr(cell.dense_i, "bias", None)
            return _simple(
                cell,
                _value(cell.dense_i.kernel),
                None if bias is None else _value(bias),
                _value(cell.dense_h.kernel),
            )
    _checks.fail(
        fn,
        "cell",
        "must be a linen or nnx LSTMCell, OptimizedLSTMCell, GRUCell or SimpleCell",
        _checks.describe(cell),
        kind=TypeError,
    )


def _simple(cell: Any, kernel_i: Any, bias: Any, kernel_h: Any) -> LayerParams:
    w_hh = jnp.asarray(kernel_h).T
    if cell.residual:  # g(Wx + b + Uh + h) = g(Wx + b + (U + I) h)
        w_hh = w_hh + jnp.eye(w_hh.shape[0], dtype=w_hh.dtype)
    b = None if bias is None else jnp.asarray(bias)
    return _common.single_layer(
        RNNParams(jnp.asarray(kernel_i).T, w_hh, b), _activation_of(cell)
    )


def _blocks(w: jax.Array, gates: int) -> list:
    """jaxrnn [G*H, in] -> per-gate flax kernels [in, H]."""
    return [block.T for block in jnp.split(w, gates, axis=0)]


def _bias_or_zeros(b: Any, size: int, dtype: Any) -> jax.Array:
    return jnp.zeros((size,), dtype) if b is None else b


def to_flax_linen(params: Any, *, optimized: bool = False) -> tuple[Any, dict]:
    """A linen cell and its variables that compute what one jaxrnn cell computes.

    Args:
        params: LSTMParams, GRUParams or RNNParams, or a one-cell LayerParams
            (which also carries the Elman activation).
        optimized: for the LSTM, build an OptimizedLSTMCell (same variables).

    Returns:
        (cell, variables) with variables = {"params": {...}}. Missing biases
        (bias=False) become zeros, which is exact. The Elman cell becomes a
        SimpleCell(residual=False) with the same activation.
    """
    fn = "to_flax_linen"
    linen, _ = _flax(fn)
    cell_params, activation = _common.one_cell(fn, params)
    name = _common.cell_name(fn, cell_params)
    dtype = cell_params.w_hh.dtype
    hidden = cell_params.w_hh.shape[1]
    if name == "lstm":
        b = _bias_or_zeros(cell_params.b, 4 * hidden, dtype)
        ki, kh, bs = (
            _blocks(cell_params.w_ih, 4),
            _blocks(cell_params.w_hh, 4),
            jnp.split(b, 4),
        )
        p = {f"i{g}": {"kernel": ki[k]} for k, g in enumerate(_GATES_LSTM)}
        p.update(
            {
                f"h{g}": {"kernel": kh[k], "bias": bs[k]}
                for k, g in enumerate(_GATES_LSTM)
            }
        )
        cls = linen.OptimizedLSTMCell if optimized else linen.LSTMCell
        return cls(hidden, param_dtype=dtype, dtype=dtype), {"params": p}
    if name == "gru":
        b = _bias_or_zeros(cell_params.b, 3 * hidden, dtype)
        b_hn = _bias_or_zeros(cell_params.b_hn, hidden, dtype)
        ki, kh, bs = (
            _blocks(cell_params.w_ih, 3),
            _blocks(cell_params.w_hh, 3),
            jnp.split(b, 3),
        )
        p = {
            f"i{g}": {"kernel": ki[k], "bias": bs[k]} for k, g in enumerate(_GATES_GRU)
        }
        p.update(
            {
                "hr": {"kernel": kh[0]},
                "hz": {"kernel": kh[1]},
                "hn": {"kernel": kh[2], "bias": b_hn},
            }
        )
        return linen.GRUCell(hidden, param_dtype=dtype, dtype=dtype), {"params": p}
    g1 = _activations.resolve(fn, "activation", activation)
    p = {
        "i": {
            "kernel": cell_params.w_ih.T,
            "bias": _bias_or_zeros(cell_params.b, hidden, dtype),
        },
        "h": {"kernel": cell_params.w_hh.T},
    }
    return linen.SimpleCell(hidden, activation_fn=g1, param_dtype=dtype, dtype=dtype), {
        "params": p
    }


def _set(variable: Any, value: jax.Array) -> None:
    variable[...] = jnp.asarray(value, variable[...].dtype)


def to_flax_nnx(params: Any, *, optimized: bool = False, rngs: Any = None) -> Any:
    """An nnx cell that computes what one jaxrnn cell computes.

    Args:
        params: LSTMParams, GRUParams or RNNParams, or a one-cell LayerParams.
        optimized: for the LSTM, build an nnx.OptimizedLSTMCell.
        rngs: nnx.Rngs for the constructor (its initial values are then
            overwritten); nnx.Rngs(0) when None.

    Returns:
        The nnx cell. Missing biases become zeros.

    Raises:
        ValueError: a GRU whose b_hn is not zero: nnx.GRUCell has no such
            parameter, so no nnx GRUCell computes the same function.
    """
    fn = "to_flax_nnx"
    _, nnx = _flax(fn)
    cell_params, activation = _common.one_cell(fn, params)
    name = _common.cell_name(fn, cell_params)
    dtype = cell_params.w_hh.dtype
    hidden, size = cell_params.w_hh.shape[1], cell_params.w_ih.shape[1]
    rngs = nnx.Rngs(0) if rngs is None else rngs
    if name == "lstm":
        b = _bias_or_zeros(cell_params.b, 4 * hidden, dtype)
        if optimized:
            cell = nnx.OptimizedLSTMCell(
                size, hidden, rngs=rngs, param_dtype=dtype, dtype=dtype
            )
            _set(cell.dense_i.kernel, cell_params.w_ih.T)
            _set(cell.dense_h.kernel, cell_params.w_hh.T)
            _set(cell.dense_h.bias, b)
            return cell
        cell = nnx.LSTMCell(size, hidden, rngs=rngs, param_dtype=dtype, dtype=dtype)
        ki, kh, bs = (
            _blocks(cell_params.w_ih, 4),
            _blocks(cell_params.w_hh, 4),
            jnp.split(b, 4),
        )
        for k, g in enumerate(_GATES_LSTM):
            _set(_nnx_gate(cell, "i", g).kernel, ki[k])
            _set(_nnx_gate(cell, "h", g).kernel, kh[k])
            _set(_nnx_gate(cell, "h", g).bias, bs[k])
        return cell
    if name == "gru":
        if cell_params.b_hn is not None and bool(jnp.any(cell_params.b_hn != 0)):
            _checks.fail(
                fn,
                "params.b_hn",
                "must be zero: nnx.GRUCell has no b_hn "
                "(its candidate is tanh(x_n + r * W_hn h))",
                f"max |b_hn| = {float(jnp.abs(cell_params.b_hn).max()):.3g}",
                "Use to_flax_linen (linen's GRUCell has b_hn), or train with "
                "b_hn fixed at zero.",
            )
        cell = nnx.GRUCell(size, hidden, rngs=rngs, param_dtype=dtype, dtype=dtype)
        _set(cell.dense_i.kernel, cell_params.w_ih.T)
        _set(cell.dense_i.bias, _bias_or_zeros(cell_params.b, 3 * hidden, dtype))
        _set(cell.dense_h.kernel, cell_params.w_hh.T)
        return cell
    g1 = _activations.resolve(fn, "activation", activation)
    cell = nnx.SimpleCell(
        size, hidden, rngs=rngs, param_dtype=dtype, dtype=dtype, activation_fn=g1
    )
    _set(cell.dense_i.kernel, cell_params.w_ih.T)
    _set(cell.dense_i.bias, _bias_or_zeros(cell_params.b, hidden, dtype))
    _set(cell.dense_h.kernel, cell_params.w_hh.T)
    return cell


def carry_from_flax(carry: Any) -> Any:
    """Flax's LSTM carry (c, h) -> LSTMCarry(h, c); other carries pass through."""
    if isinstance(carry, (tuple, list)) and len(carry) == 2:
        c, h = carry
        return LSTMCarry(h, c)
    return carry


def carry_to_flax(carry: Any) -> Any:
    """LSTMCarry(h, c) -> Flax's (c, h); other carries pass through."""
    if isinstance(carry, LSTMCarry):
        return (carry.c, carry.h)
    return carry
