"""Equinox <-> jaxrnn: eqx.nn.LSTMCell and eqx.nn.GRUCell.

Equinox uses PyTorch's layout with summed biases, as jaxrnn does:
LSTMCell(weight_ih [4H, D], weight_hh [4H, H], bias [4H]) and
GRUCell(weight_ih [3H, D], weight_hh [3H, H], bias [3H], bias_n [H]), where
bias_n is jaxrnn's b_hn. Its LSTM state is the pair (h, c). Equinox has no
Elman cell.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn.cells._gru import GRUParams
from jaxrnn.cells._lstm import LSTMParams
from jaxrnn.interop import _common
from jaxrnn.layer._params import LayerParams


def from_equinox(cell: Any) -> LayerParams:
    """Convert an eqx.nn.LSTMCell or eqx.nn.GRUCell to a one-cell LayerParams.

    Examples:
        >>> import equinox as eqx, jax
        >>> p = from_equinox(eqx.nn.GRUCell(3, 5, key=jax.random.key(0)))
        >>> p.cell, p.cells[0][0].b_hn.shape
        ('gru', (5,))
    """
    fn = "from_equinox"
    eqx = _common.require("equinox", "equinox", fn)
    if isinstance(cell, eqx.nn.LSTMCell):
        return _common.single_layer(
            LSTMParams(
                jnp.asarray(cell.weight_ih),
                jnp.asarray(cell.weight_hh),
                None if cell.bias is None else jnp.asarray(cell.bias),
            )
        )
    if isinstance(cell, eqx.nn.GRUCell):
        no_bias = cell.bias is None
        return _common.single_layer(
            GRUParams(
                jnp.asarray(cell.weight_ih),
                jnp.asarray(cell.weight_hh),
                None if no_bias else jnp.asarray(cell.bias),
                None if no_bias else jnp.asarray(cell.bias_n),
            )
        )
    _checks.fail(
        fn,
        "cell",
        "must be an eqx.nn.LSTMCell or eqx.nn.GRUCell",
        _checks.describe(cell),
        kind=TypeError,
    )


def to_equinox(params: Any) -> Any:
    """The eqx.nn.LSTMCell or eqx.nn.GRUCell that computes what `params` compute.

    Args:
        params: LSTMParams or GRUParams, or a one-cell LayerParams. No biases
            (bias=False) gives use_bias=False.

    Raises:
        TypeError: Elman params (Equinox has no Elman cell).
    """
    fn = "to_equinox"
    eqx = _common.require("equinox", "equinox", fn)
    cell_params, _ = _common.one_cell(fn, params)
    kind = _common.cell_name(fn, cell_params)
    if kind == "rnn":
        _checks.fail(
            fn,
            "params",
            "must be LSTMParams or GRUParams (Equinox has no Elman cell)",
            "RNNParams",
            kind=TypeError,
        )
    hidden, size = cell_params.w_hh.shape[1], cell_params.w_ih.shape[1]
    use_bias = cell_params.b is not None
    cls = eqx.nn.LSTMCell if kind == "lstm" else eqx.nn.GRUCell
    cell = cls(
        size,
        hidden,
        use_bias=use_bias,
        dtype=cell_params.w_hh.dtype,
        key=jax.random.key(0),
    )
    names = (
        ["weight_ih", "weight_hh"]
        + (["bias"] if use_bias else [])
        + (["bias_n"] if use_bias and kind == "gru" else [])
    )
    values = (
        [cell_params.w_ih, cell_params.w_hh]
        + ([cell_params.b] if use_bias else [])
        + ([cell_params.b_hn] if use_bias and kind == "gru" else [])
    )
    return eqx.tree_at(lambda c: [getattr(c, n) for n in names], cell, values)
