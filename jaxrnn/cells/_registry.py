"""The registry of cells: the one description of each cell.

The layer, the impls, the fast paths, the runs and the tests read a cell's
facts here, so a new cell is one module and one entry. Sizes are read from
the weights: w_ih is [G*H, D] and w_hh is [G*H, R], where R, the size of h,
is H for every cell but the projected LSTM (R = P). The minimal cells, whose
gates read x_t alone, have no w_hh.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, Callable, NamedTuple

from jaxrnn import _checks
from jaxrnn.cells import _min_gru, _min_lstm
from jaxrnn.cells._cho_gru import ChoGRUParams, cho_gru_step, init_cho_gru
from jaxrnn.cells._cifg_lstm import CIFGLSTMParams, cifg_lstm_step, init_cifg_lstm
from jaxrnn.cells._elman import RNNParams, init_rnn, rnn_step
from jaxrnn.cells._gru import GRUParams, gru_step, init_gru
from jaxrnn.cells._indrnn import IndRNNParams, indrnn_step, init_indrnn
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
from jaxrnn.cells._min_gru import MinGRUParams, init_min_gru, min_gru_step
from jaxrnn.cells._min_lstm import MinLSTMParams, init_min_lstm, min_lstm_step
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
        activation: for a cell whose step takes g1 (`activation=`), its
            default g1 ("tanh" for the Elman RNN, as in PyTorch); None for
            the cells that fix their activations.
        activations: the named activations the cell is tested with.
        fast: the module of `jaxrnn.fast` that holds the cell's fast forms
            (its two layouts and hand-derived gradient), or None: the fused,
            Pallas and CPU impls run only cells that have one.
        update_block: for a GRU-like cell, the block of b that holds the
            update gate z's bias (what a run's `update_bias` sets), else None.
        kernel: the cell's id in the compiled CPU kernels (`enum Cell` in
            `jaxrnn/fast/csrc/cells.h`, which a test pins to this), or None.
        projects: for a cell that is another with its h projected, that
            other's name: `init_layer(projects, proj_size=P)` gives this
            cell, and `init_layer` takes no name of its own for it. None
            for the rest.
        linear: for a cell whose gates read x_t alone, so that its recurrence
            is h_t = a_t * h_{t-1} + b_t, the function that gives (a, b) of
            every step at once, `fn(params, xs [..., D], *, activation, log,
            matmul_dtype)`, with log=True giving (log a, log b) (the
            "linear" impls run it); None for the rest.
    """

    name: str
    params: type
    step: Callable
    init: Callable
    gates: int
    lstm_carry: bool
    forget_bias: bool = False
    activation: str | None = None
    fast: str | None = None
    kernel: int | None = None
    update_block: int | None = None
    projects: str | None = None
    activations: tuple[str, ...] = ()
    linear: Callable | None = None


def _spec(name, params, step, init, *, gates, lstm_carry, **facts):
    return CellSpec(name, params, step, init, gates, lstm_carry, **facts)


# One entry per cell; the layer API and the converters look cells up here.
_LSTM_LIKE = dict(lstm_carry=True, forget_bias=True)
_G1 = ("tanh", "sigmoid", "relu")
_MIN = dict(
    lstm_carry=False, activation="identity", activations=("identity", "positive")
)
CELLS = {
    spec.name: spec
    for spec in (
        _spec(
            "rnn",
            RNNParams,
            rnn_step,
            init_rnn,
            gates=1,
            lstm_carry=False,
            activation="tanh",
            activations=_G1,
            fast="_elman",
            kernel=0,
        ),
        _spec(
            "lstm",
            LSTMParams,
            lstm_step,
            init_lstm,
            gates=4,
            fast="_lstm",
            kernel=1,
            **_LSTM_LIKE,
        ),
        _spec(
            "gru",
            GRUParams,
            gru_step,
            init_gru,
            gates=3,
            lstm_carry=False,
            fast="_gru",
            kernel=2,
            update_block=1,
        ),
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
            update_block=1,
        ),
        _spec(
            "proj_lstm",
            ProjLSTMParams,
            proj_lstm_step,
            init_proj_lstm,
            gates=4,
            projects="lstm",
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
        _spec(
            "indrnn",
            IndRNNParams,
            indrnn_step,
            init_indrnn,
            gates=1,
            lstm_carry=False,
            activation="relu",
            activations=_G1,
            fast="_indrnn",
            kernel=3,
        ),
        _spec(
            "cho_gru",
            ChoGRUParams,
            cho_gru_step,
            init_cho_gru,
            gates=3,
            lstm_carry=False,
            fast="_cho_gru",
            update_block=1,
        ),
        _spec(
            "min_gru",
            MinGRUParams,
            min_gru_step,
            init_min_gru,
            gates=_min_gru.GATES,
            linear=_min_gru.coefficients,
            **_MIN,
        ),
        _spec(
            "min_lstm",
            MinLSTMParams,
            min_lstm_step,
            init_min_lstm,
            gates=_min_lstm.GATES,
            linear=_min_lstm.coefficients,
            **_MIN,
        ),
    )
}
_BY_TYPE = {spec.params: spec for spec in CELLS.values()}
# The names `init_layer` takes, and the cell each gives with proj_size.
LAYER_CELLS = tuple(name for name, spec in CELLS.items() if spec.projects is None)
PROJECTED = {spec.projects: name for name, spec in CELLS.items() if spec.projects}


def spec_of(params: Any) -> CellSpec | None:
    """The CellSpec of a cell's params, or None for anything else."""
    return _BY_TYPE.get(type(params))


def hidden_size(spec: CellSpec, params: Any) -> int:
    """H: the size of each gate block (and of the LSTM cell state)."""
    return params.w_ih.shape[0] // spec.gates


def output_size(params: Any) -> int:
    """The size of h, the output: P for the projected LSTM, else H (w_hh is
    [G*H, R], or [H] for a cell with one recurrent weight a unit; a cell
    without w_hh has H = w_ih's rows / G)."""
    w_hh = getattr(params, "w_hh", None)
    if w_hh is None:
        return hidden_size(spec_of(params), params)
    return w_hh.shape[-1]


# What init_layer passes to every cell's initialiser by its own arguments.
_SHARED = {"key", "input_size", "hidden_size", "proj_size", "init", "bias", "dtype"}


def init_keywords(spec: CellSpec) -> set[str]:
    """The keywords `spec.init` takes beyond init_layer's own arguments
    (the IndRNN's horizon)."""
    return set(inspect.signature(spec.init).parameters) - _SHARED - {"forget_bias"}


def init_options(fn: str, spec: CellSpec, options: Any) -> dict[str, Any]:
    """`init_layer`'s `cell_options`, checked against the keywords that
    `spec.init` takes beyond init_layer's own arguments."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        _checks.fail(
            fn,
            "cell_options",
            "must be a dict or None",
            _checks.describe(options),
            kind=TypeError,
        )
    takes = init_keywords(spec)
    unknown = sorted(set(options) - takes)
    if unknown:
        _checks.fail(
            fn,
            "cell_options",
            f"must hold keywords of {spec.init.__name__} beyond init_layer's own "
            f"({', '.join(sorted(takes)) or 'it has none'})",
            f"{unknown} with cell={spec.name!r}",
        )
    return dict(options)
