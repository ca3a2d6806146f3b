"""A pure functional layer with the feature set of torch.nn.RNN / LSTM / GRU.

`init_layer` makes the parameters of a stack of `num_layers` layers, each with
one or two directions; `apply_layer` runs it on a batch-first [B, T, D] input
with optional per-sequence lengths, an initial state and dropout between
layers. It is built from the reference steps and `unroll` by `jax.vmap` over
the batch: there is no second implementation of the cells.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import warnings
from typing import Any, Union

import jax
import jax.numpy as jnp

from jaxrnn import _activations, _checks, _unroll
from jaxrnn._activations import Activation
from jaxrnn._elman import RNNParams, init_rnn, rnn_step
from jaxrnn._gru import GRUParams, gru_step, init_gru
from jaxrnn._lstm import LSTMCarry, LSTMParams, init_lstm, lstm_step

CellParams = Union[RNNParams, LSTMParams, GRUParams]
# An LSTMCarry of two [L*D, B, H] arrays for the LSTM, one such array otherwise.
State = Union[LSTMCarry, jax.Array]

_CELLS = {"rnn": RNNParams, "lstm": LSTMParams, "gru": GRUParams}


@functools.partial(
    jax.tree_util.register_dataclass, data_fields=["cells"], meta_fields=["activation"]
)
@dataclasses.dataclass(frozen=True)
class LayerParams:
    """Parameters of a stacked, optionally bidirectional, recurrent layer.

    A pytree: `cells` holds the arrays; `activation` is static metadata.

    Attributes:
        cells: `cells[layer][direction]` is the RNNParams, LSTMParams or
            GRUParams of that layer and direction (0 forward, 1 backward).
            Layer 0 reads D inputs; layer l > 0 reads num_directions * H.
        activation: g1 of the Elman cell ("tanh", "relu", "sigmoid", or a
            callable); ignored by the LSTM and GRU.
    """

    cells: tuple[tuple[CellParams, ...], ...]
    activation: Activation = "tanh"

    @property
    def cell(self) -> str:
        """The cell's name: "rnn", "lstm" or "gru"."""
        kind = type(self.cells[0][0])
        return next(name for name, cls in _CELLS.items() if cls is kind)

    @property
    def num_layers(self) -> int:
        return len(self.cells)

    @property
    def num_directions(self) -> int:
        return len(self.cells[0])

    @property
    def input_size(self) -> int:
        return self.cells[0][0].w_ih.shape[1]

    @property
    def hidden_size(self) -> int:
        return self.cells[0][0].w_hh.shape[1]

    @property
    def dtype(self) -> jnp.dtype:
        return jnp.dtype(self.cells[0][0].w_hh.dtype)


def init_layer(
    key: jax.Array,
    cell: str,
    input_size: int,
    hidden_size: int,
    *,
    num_layers: int = 1,
    bidirectional: bool = False,
    activation: Activation | None = None,
    bias: bool = True,
    init: str = "default",
    forget_bias: float | None = None,
    dtype=jnp.float32,
) -> LayerParams:
    """Initialise a stacked recurrent layer, like `torch.nn.LSTM(...)`.

    Args:
        key: a PRNG key.
        cell: "rnn" (Elman), "lstm" or "gru".
        input_size: D.
        hidden_size: H.
        num_layers: L, layers stacked on top of each other.
        bidirectional: add a backward direction to every layer; the outputs
            of the two directions are concatenated.
        activation: g1 for cell="rnn" ("tanh" when None, as in PyTorch;
            "relu", "sigmoid" or a callable). Not allowed for LSTM and GRU.
        bias: False removes every bias.
        init: "default" or "torch"; see `init_rnn`, `init_lstm`, `init_gru`.
        forget_bias: for cell="lstm" only; see `init_lstm`.
        dtype: a floating dtype for every parameter.

    Returns:
        LayerParams with `cells[l][d]` for l < L and d < (2 if bidirectional
        else 1).

    Example:
        >>> import jax
        >>> p = init_layer(jax.random.key(0), "gru", 3, 5, num_layers=2,
        ...                bidirectional=True)
        >>> p.num_layers, p.num_directions, p.cells[1][0].w_ih.shape
        (2, 2, (15, 10))
    """
    fn = "init_layer"
    cell = _checks.choice(fn, "cell", cell, tuple(_CELLS))
    num_layers = _checks.positive_int(fn, "num_layers", num_layers)
    input_size = _checks.positive_int(fn, "input_size", input_size)
    hidden_size = _checks.positive_int(fn, "hidden_size", hidden_size)
    if cell != "rnn" and activation is not None:
        _checks.fail(
            fn,
            "activation",
            "applies to cell='rnn' only",
            f"activation={activation!r} with cell={cell!r}",
        )
    if cell != "lstm" and forget_bias is not None:
        _checks.fail(
            fn,
            "forget_bias",
            "applies to cell='lstm' only",
            f"forget_bias={forget_bias!r} with cell={cell!r}",
        )
    activation = "tanh" if activation is None else activation
    _activations.resolve(fn, "activation", activation)
    kwargs = dict(init=init, bias=bias, dtype=dtype)
    if cell == "lstm":
        kwargs["forget_bias"] = forget_bias
    init_cell = {"rnn": init_rnn, "lstm": init_lstm, "gru": init_gru}[cell]
    num_directions = 2 if bidirectional else 1
    keys = jax.random.split(key, num_layers * num_directions)
    cells = []
    for layer in range(num_layers):
        size = input_size if layer == 0 else num_directions * hidden_size
        cells.append(
            tuple(
                init_cell(keys[layer * num_directions + d], size, hidden_size, **kwargs)
                for d in range(num_directions)
            )
        )
    return LayerParams(tuple(cells), activation)


def _structure(fn: str, params: Any) -> None:
    """Check that params is a well-formed LayerParams."""
    if not isinstance(params, LayerParams):
        _checks.fail(
            fn,
            "params",
            "must be LayerParams (from init_layer)",
            _checks.describe(params),
            kind=TypeError,
        )
    if not params.cells or not all(params.cells):
        _checks.fail(
            fn,
            "params.cells",
            "must hold at least one layer and direction",
            repr(params.cells),
        )
    kind = type(params.cells[0][0])
    if kind not in _CELLS.values():
        _checks.fail(
            fn,
            "params.cells",
            "must hold RNNParams, LSTMParams or GRUParams",
            f"a {kind.__name__}",
            kind=TypeError,
        )
    directions = len(params.cells[0])
    if directions not in (1, 2):
        _checks.fail(
            fn, "params.cells", "must have 1 or 2 directions per layer", f"{directions}"
        )
    for layer, cells in enumerate(params.cells):
        if len(cells) != directions or any(type(c) is not kind for c in cells):
            _checks.fail(
                fn,
                f"params.cells[{layer}]",
                f"must hold {directions} {kind.__name__}",
                repr([type(c).__name__ for c in cells]),
                kind=TypeError,
            )
        expected = params.input_size if layer == 0 else directions * params.hidden_size
        for d, c in enumerate(cells):
            if tuple(c.w_ih.shape[1:]) != (expected,):
                _checks.fail(
                    fn,
                    f"params.cells[{layer}][{d}].w_ih",
                    f"must read {expected} inputs",
                    f"shape {tuple(c.w_ih.shape)}",
                )


def _state(fn: str, params: LayerParams, state: Any, batch_size: int) -> State:
    """Check an initial state, or make the zero one: [L*D, B, H] per array."""
    shape = (params.num_layers * params.num_directions, batch_size, params.hidden_size)
    if state is None:
        zeros = jnp.zeros(shape, params.dtype)
        return LSTMCarry(zeros, zeros) if params.cell == "lstm" else zeros
    if params.cell == "lstm":
        if not isinstance(state, LSTMCarry):
            _checks.fail(
                fn,
                "initial_state",
                "must be LSTMCarry(h, c) for an LSTM",
                _checks.describe(state),
                kind=TypeError,
            )
        arrays = {"initial_state.h": state.h, "initial_state.c": state.c}
    else:
        arrays = {"initial_state": state}
    checked = []
    for name, value in arrays.items():
        value = _checks.float_array(fn, name, value)
        _checks.shape(
            fn,
            name,
            value,
            shape,
            "[num_layers * num_directions, B, H]",
            "This is PyTorch's h_0 layout.",
        )
        _checks.same_dtype(fn, name, value, params.dtype, "params")
        checked.append(value)
    return LSTMCarry(*checked) if params.cell == "lstm" else checked[0]


def _dropout_rate(fn: str, dropout: Any, key: Any, num_layers: int) -> float:
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real):
        _checks.fail(
            fn, "dropout", "must be a number in [0, 1)", repr(dropout), kind=TypeError
        )
    if not 0 <= dropout < 1:
        _checks.fail(fn, "dropout", "must be in [0, 1)", repr(dropout))
    if dropout > 0 and key is None:
        _checks.fail(
            fn,
            "key",
            "is needed when dropout > 0",
            "None",
            "Pass a PRNG key for training, or dropout=0.0 for evaluation.",
        )
    if dropout > 0 and num_layers == 1:
        warnings.warn(
            f"{fn}: dropout={dropout} has no effect with num_layers=1: it "
            "acts between layers, as in PyTorch.",
            stacklevel=3,
        )
    return float(dropout)


def apply_layer(
    params: LayerParams,
    xs: Any,
    *,
    lengths: Any = None,
    mask: Any = None,
    initial_state: State | None = None,
    dropout: float = 0.0,
    key: jax.Array | None = None,
    unroll: int | bool = 1,
) -> tuple[jax.Array, State]:
    """Run a stacked recurrent layer over a batch, like `torch.nn.LSTM.forward`.

    Every layer and direction is `unroll` of the reference step, mapped over
    the batch with `jax.vmap`:

        inputs = xs
        for layer in range(L):
            outs = [vmap(unroll(step, cells[layer][d], h0[layer*D + d], inputs,
                                mask=mask, reverse=(d == 1)))
                    for d in directions]
            inputs = concatenate(outs, axis=-1)     # [B, T, D*H]
            if layer < L - 1: inputs = dropout(inputs)
        return inputs, stack(final carries)

    Args:
        params: from `init_layer`.
        xs: batch-first inputs [B, T, D], in the params' dtype.
        lengths: optional integer [B], the valid length of each sequence
            (padding at the end). The final state is the one at the last valid
            step, padded outputs are zero, and the backward direction starts
            at each sequence's last valid step, as with PyTorch's packed
            sequences.
        mask: optional bool [B, T], instead of lengths: where False the carry
            is held and the output is zero.
        initial_state: optional state in PyTorch's layout: [L*D, B, H] with the
            layers in order and, within a layer, forward then backward; an
            LSTMCarry(h, c) of two such arrays for the LSTM. Zeros when None.
        dropout: the rate of dropout on the outputs of every layer but the
            last (PyTorch's `dropout`). 0.0, the default, is evaluation mode.
        key: the PRNG key for dropout; needed when dropout > 0.
        unroll: scan's unroll factor.

    Returns:
        (ys, final_state): outputs of the last layer [B, T, D*H], forward then
        backward features; and the final state of every layer and direction,
        in the layout of initial_state.

    Raises:
        ValueError, TypeError: at trace time, naming the argument, for an xs
            that is not [B, T, D], lengths not [B], a mask not [B, T], an
            initial state of the wrong shape or dtype, or bad dropout.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> p = init_layer(jax.random.key(0), "lstm", 3, 5, num_layers=2,
        ...                bidirectional=True)
        >>> ys, state = apply_layer(p, jnp.ones((4, 7, 3)),
        ...                         lengths=jnp.array([7, 5, 1, 0]))
        >>> ys.shape, state.h.shape
        ((4, 7, 10), (4, 4, 5))
    """
    fn = "apply_layer"
    _structure(fn, params)
    xs = _checks.float_array(
        fn,
        "xs",
        xs,
        ndim=3,
        hint="It takes a batch-first [B, T, D]; add a batch axis with xs[None] "
        "for one sequence.",
    )
    batch_size, seq_len, input_size = xs.shape
    if input_size != params.input_size:
        _checks.fail(
            fn,
            "xs",
            f"must be [B, T, D] with D = {params.input_size} (the layer's input_size)",
            f"shape {tuple(xs.shape)}",
        )
    _checks.same_dtype(fn, "xs", xs, params.dtype, "params")
    mask = _unroll.resolve_mask(fn, seq_len, mask, lengths, batch=(batch_size,))
    state = _state(fn, params, initial_state, batch_size)
    rate = _dropout_rate(fn, dropout, key, params.num_layers)

    step = {"rnn": rnn_step, "lstm": lstm_step, "gru": gru_step}[params.cell]
    if params.cell == "rnn":
        step = functools.partial(step, activation=params.activation)
    mask_axis = None if mask is None else 0
    inputs, finals = xs, []
    for layer, cells in enumerate(params.cells):
        outputs = []
        for direction, cell_params in enumerate(cells):
            index = layer * params.num_directions + direction
            carry0 = jax.tree.map(lambda a: a[index], state)

            def run(x, carry, m, cell_params=cell_params, direction=direction):
                return _unroll.unroll(
                    step,
                    cell_params,
                    carry,
                    x,
                    mask=m,
                    reverse=direction == 1,
                    unroll=unroll,
                )

            final, ys = jax.vmap(run, in_axes=(0, 0, mask_axis))(inputs, carry0, mask)
            finals.append(final)
            outputs.append(ys)
        inputs = outputs[0] if len(outputs) == 1 else jnp.concatenate(outputs, -1)
        if rate > 0 and layer < params.num_layers - 1:
            key, subkey = jax.random.split(key)
            keep = jax.random.bernoulli(subkey, 1 - rate, inputs.shape)
            inputs = jnp.where(keep, inputs / (1 - rate), jnp.zeros_like(inputs))
    final_state = jax.tree.map(lambda *carries: jnp.stack(carries), *finals)
    return inputs, final_state
