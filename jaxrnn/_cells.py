"""The registry of cells: each name's params type, step, initialiser and carry.

The layer API and the converters look cells up here, so a new cell is one
entry. Sizes are read from the weights: w_ih is [G*H, D] and w_hh is
[G*H, R], where R, the size of h, is H for every cell but the projected LSTM
(R = P).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from jaxrnn._cifg_lstm import CIFGLSTMParams, cifg_lstm_step, init_cifg_lstm
from jaxrnn._elman import RNNParams, init_rnn, rnn_step
from jaxrnn._gru import GRUParams, gru_step, init_gru
from jaxrnn._layer_norm_gru import (
    LayerNormGRUParams,
    init_layer_norm_gru,
    layer_norm_gru_step,
)
from jaxrnn._layer_norm_lstm import (
    LayerNormLSTMParams,
    init_layer_norm_lstm,
    layer_norm_lstm_step,
)
from jaxrnn._lstm import LSTMParams, init_lstm, lstm_step
from jaxrnn._mgu import MGUParams, init_mgu, mgu_step
from jaxrnn._peephole_lstm import (
    PeepholeLSTMParams,
    init_peephole_lstm,
    peephole_lstm_step,
)
from jaxrnn._proj_lstm import ProjLSTMParams, init_proj_lstm, proj_lstm_step


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


CELLS = {
    spec.name: spec
    for spec in (
        CellSpec("rnn", RNNParams, rnn_step, init_rnn, 1, False, False),
        CellSpec("lstm", LSTMParams, lstm_step, init_lstm, 4, True, True),
        CellSpec("gru", GRUParams, gru_step, init_gru, 3, False, False),
        CellSpec(
            "peephole_lstm",
            PeepholeLSTMParams,
            peephole_lstm_step,
            init_peephole_lstm,
            4,
            True,
            True,
        ),
        CellSpec(
            "layer_norm_lstm",
            LayerNormLSTMParams,
            layer_norm_lstm_step,
            init_layer_norm_lstm,
            4,
            True,
            True,
        ),
        CellSpec(
            "layer_norm_gru",
            LayerNormGRUParams,
            layer_norm_gru_step,
            init_layer_norm_gru,
            3,
            False,
            False,
        ),
        CellSpec(
            "proj_lstm", ProjLSTMParams, proj_lstm_step, init_proj_lstm, 4, True, True
        ),
        CellSpec(
            "cifg_lstm", CIFGLSTMParams, cifg_lstm_step, init_cifg_lstm, 3, True, True
        ),
        CellSpec("mgu", MGUParams, mgu_step, init_mgu, 2, False, False),
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
