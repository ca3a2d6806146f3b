"""The registry of cells: each name's params type, step, initialiser and carry.

The layer API and the converters look cells up here, so a new cell is one
entry. Sizes are read from the weights: w_ih is [G*H, D] and w_hh is
[G*H, R], where R, the size of h, is H for every cell but the projected LSTM
(R = P).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from jaxrnn.cells._cifg_lstm import CIFGLSTMParams, cifg_lstm_step, init_cifg_lstm
from jaxrnn.cells._elman import RNNParams, init_rnn, rnn_step
from jaxrnn.cells._gru import GRUParams, gru_step, init_gru
from jaxrnn.cells._layer_norm_gru import (
    LayerNormGRUParams,
    init_layer_norm_gru,
    layer_norm_gru_step,
)
from jaxrnn.cells._layer_norm_lstm import (
    LayerNormLSTMParams,
    init_layer_norm_lstm,
    layer_norm_lstm_step,
)
from jaxrnn.cells._lstm import LSTMParams, init_lstm, lstm_step
from jaxrnn.cells._mgu import MGUParams, init_mgu, mgu_step
from jaxrnn.cells._peephole_lstm import (
    PeepholeLSTMParams,
    init_peephole_lstm,
    peephole_lstm_step,
)
from jaxrnn.cells._proj_lstm import ProjLSTMParams, init_proj_lstm, proj_lstm_step


class CellSpec(NamedTuple):
    """One cell kind.

    Attributes:
        name: the name `init_layer` takes.
        params: its params NamedTuple.
        step: its step function.
        init: its initialiser.
        gates: G, the number of [H]-row blocks in w_ih and w_hh.
        lstm_carry: whether the carry is LSTMCarry(h, c) (else an array h).
        forget_bias: whether the initialiser takes `forget_bias`.
    """

    name: str
    params: type
    step: Callable
    init: Callable
    gates: int
    lstm_carry: bool
    forget_bias: bool


def _spec(name, params, step, init, *, gates, lstm_carry, forget_bias=False):
    return CellSpec(name, params, step, init, gates, lstm_carry, forget_bias)


# One entry per cell; the layer API and the converters look cells up here.
_LSTM_LIKE = dict(lstm_carry=True, forget_bias=True)
CELLS = {
    spec.name: spec
    for spec in (
        _spec("rnn", RNNParams, rnn_step, init_rnn, gates=1, lstm_carry=False),
        _spec("lstm", LSTMParams, lstm_step, init_lstm, gates=4, **_LSTM_LIKE),
        _spec("gru", GRUParams, gru_step, init_gru, gates=3, lstm_carry=False),
        _spec(
            "peephole_lstm",
            PeepholeLSTMParams,
            peephole_lstm_step,
            init_peephole_lstm,
            gates=4,
            **_LSTM_LIKE,
        ),
        _spec(
            "layer_norm_lstm",
            LayerNormLSTMParams,
            layer_norm_lstm_step,
            init_layer_norm_lstm,
            gates=4,
            **_LSTM_LIKE,
        ),
        _spec(
            "layer_norm_gru",
            LayerNormGRUParams,
            layer_norm_gru_step,
            init_layer_norm_gru,
            gates=3,
            lstm_carry=False,
        ),
        _spec(
            "proj_lstm",
            ProjLSTMParams,
            proj_lstm_step,
            init_proj_lstm,
            gates=4,
            **_LSTM_LIKE,
        ),
        _spec(
            "cifg_lstm",
            CIFGLSTMParams,
            cifg_lstm_step,
            init_cifg_lstm,
            gates=3,
            **_LSTM_LIKE,
        ),
        _spec("mgu", MGUParams, mgu_step, init_mgu, gates=2, lstm_carry=False),
    )
}
_BY_TYPE = {spec.params: spec for spec in CELLS.values()}


def spec_of(params: Any) -> CellSpec | None:
    """The CellSpec of a cell's params, or None for anything else."""
    return _BY_TYPE.get(type(params))


def hidden_size(spec: CellSpec, params: Any) -> int:
    """H: the size of each gate block (and of the LSTM cell state)."""
    return params.w_ih.shape[0] // spec.gates


def output_size(params: Any) -> int:
    """The size of h, the output: P for the projected LSTM, else H."""
    return params.w_hh.shape[1]
