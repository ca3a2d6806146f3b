"""The parameters of the recurrent layer: `LayerParams` and `init_layer`.

A layer is a stack of `num_layers` layers, each with one or two directions,
of any cell in the registry (`jaxrnn/cells/_registry.py`); `apply_layer`
(in `_apply.py`) runs it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any, Union

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from jaxrnn import _checks
from jaxrnn.cells import _activations, _registry
from jaxrnn.cells._activations import Activation
from jaxrnn.cells._lstm import LSTMCarry

# An LSTMCarry of two [L*D, B, .] arrays for LSTM-like cells, one array otherwise.
State = Union[LSTMCarry, jax.Array]

MERGES = ("concat", "sum", "mean", "product")


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["cells", "initial_state"],
    meta_fields=["activation", "merge", "residual"],
)
@dataclasses.dataclass(frozen=True)
class LayerParams:
    """Parameters of a stacked, optionally bidirectional, recurrent layer.

    A pytree: `cells` and `initial_state` hold the arrays (and receive
    gradients); `activation`, `merge` and `residual` are static metadata.

    Attributes:
        cells: `cells[layer][direction]` holds the params of one cell
            (RNNParams, LSTMParams, GRUParams or a variant), 0 forward and 1
            backward. Layer 0 reads D inputs; layer l > 0 reads the merged
            outputs of layer l - 1.
        activation: g1 of the Elman cell ("tanh", "relu", "sigmoid", or a
            callable); ignored by the other cells.
        initial_state: None (zeros), or a learned initial state without the
            batch axis: [L*D, R] (R is the size of h), or LSTMCarry(h [L*D, R],
            c [L*D, H]) for LSTM-like cells. Used when `apply_layer` gets no
            `initial_state`.
        merge: how the two directions' outputs combine: "concat" (PyTorch's
            only mode), "sum", "mean" or "product" (Keras' merge modes).
        residual: add each layer's input to its output, for every layer
            whose input width equals its output width.
    """

    cells: tuple[tuple[Any, ...], ...]
    activation: Activation = "tanh"
    initial_state: State | None = None
    merge: str = "concat"
    residual: bool = False

    @property
    def cell(self) -> str:
        """The cell's name, as `init_layer` takes it ("lstm", "gru", ...)."""
        return _registry.spec_of(self.cells[0][0]).name

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
        """H, the size of each gate block and of the LSTM cell state."""
        spec = _registry.spec_of(self.cells[0][0])
        return _registry.hidden_size(spec, self.cells[0][0])

    @property
    def output_size(self) -> int:
        """The size of h in one direction: proj_size for a projected LSTM, else H."""
        return _registry.output_size(self.cells[0][0])

    @property
    def proj_size(self) -> int | None:
        """P for a projected LSTM, else None."""
        return self.output_size if _registry.CELLS[self.cell].projects else None

    @property
    def features(self) -> int:
        """The width of each layer's outputs, after merging the directions."""
        if self.merge == "concat":
            return self.num_directions * self.output_size
        return self.output_size

    @property
    def dtype(self) -> jnp.dtype:
        return jnp.dtype(self.cells[0][0].w_ih.dtype)


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
    proj_size: int | None = None,
    merge: str = "concat",
    residual: bool = False,
    learn_initial_state: bool = False,
    dtype: DTypeLike = jnp.float32,
    cell_options: Mapping[str, Any] | None = None,
) -> LayerParams:
    """Initialise a stacked recurrent layer, like `torch.nn.LSTM(...)`.

    Args:
        key: a PRNG key.
        cell: "rnn" (Elman), "lstm", "gru", "indrnn", or a variant:
            "peephole_lstm", "layer_norm_lstm", "layer_norm_gru",
            "cifg_lstm" (coupled input and forget gates), "mgu" (minimal
            gated unit) or "cho_gru" (the reset-before GRU). "lstm" with a
            `proj_size` gives the projected LSTM ("proj_lstm").
        input_size: D.
        hidden_size: H.
        num_layers: L, layers stacked on top of each other.
        bidirectional: add a backward direction to every layer; `merge`
            combines the two directions' outputs.
        activation: g1 for the cells that take one ("rnn", "indrnn"): None
            means the cell's own (tanh for the RNN, as in PyTorch; ReLU for
            the IndRNN), else "tanh", "relu", "sigmoid" or a callable. Not
            allowed for other cells.
        bias: False removes every bias.
        init: "default" or "torch"; see `init_rnn`, `init_lstm`, `init_gru`.
        forget_bias: for the LSTM-like cells only; see `init_lstm`.
        proj_size: P < H for cell="lstm": h is projected to P units, as in
            `torch.nn.LSTM(proj_size=P)`. None (the default) for none.
        merge: for bidirectional layers, how the directions combine:
            "concat" (the default, PyTorch's), "sum", "mean" or "product".
        residual: add each layer's input to its output wherever the widths
            match (every layer above the first; the first when D equals its
            output width). At least one layer must qualify.
        learn_initial_state: give the layer a learned initial state,
            starting at zero, in `params.initial_state`; it receives gradients
            like any other parameter.
        dtype: a floating dtype for every parameter.
        cell_options: further keyword arguments of the cell's initialiser,
            for every layer and direction: {"horizon": T} for the IndRNN's
            recurrent weights in the paper's range (`init_indrnn`). None
            (the default) for none.

    Returns:
        LayerParams with `cells[l][d]` for l < L and d < (2 if bidirectional
        else 1).

    Examples:
        >>> import jax
        >>> p = init_layer(jax.random.key(0), "gru", 3, 5, num_layers=2,
        ...                bidirectional=True)
        >>> p.num_layers, p.num_directions, p.cells[1][0].w_ih.shape
        (2, 2, (15, 10))
    """
    fn = "init_layer"
    named = _registry.CELLS.get(cell) if isinstance(cell, str) else None
    if named is not None and named.projects:
        cell = named.projects
        if proj_size is None:
            _checks.fail(fn, "proj_size", f"is needed for cell={named.name!r}", "None")
    cell = _checks.choice(fn, "cell", cell, _registry.LAYER_CELLS)
    num_layers = _checks.positive_int(fn, "num_layers", num_layers)
    input_size = _checks.positive_int(fn, "input_size", input_size)
    hidden_size = _checks.positive_int(fn, "hidden_size", hidden_size)
    merge = _checks.choice(fn, "merge", merge, MERGES)
    if proj_size is not None:
        if cell not in _registry.PROJECTED:
            _checks.fail(
                fn,
                "proj_size",
                f"applies to {' and '.join(f'cell={n!r}' for n in _registry.PROJECTED)}"
                " only",
                f"proj_size={proj_size!r} with cell={cell!r}",
            )
        cell = _registry.PROJECTED[cell]
    spec = _registry.CELLS[cell]
    if not spec.activation and activation is not None:
        takes = [s.name for s in _registry.CELLS.values() if s.activation]
        _checks.fail(
            fn,
            "activation",
            f"applies to {' and '.join(f'cell={n!r}' for n in takes)} only",
            f"activation={activation!r} with cell={cell!r}",
        )
    if not spec.forget_bias and forget_bias is not None:
        _checks.fail(
            fn,
            "forget_bias",
            "applies to the LSTM cells only",
            f"forget_bias={forget_bias!r} with cell={cell!r}",
        )
    if merge != "concat" and not bidirectional:
        _checks.fail(
            fn,
            "merge",
            "applies to bidirectional layers only",
            f"merge={merge!r} with bidirectional=False",
        )
    if activation is None:
        activation = spec.activation or "tanh"
    _activations.resolve(fn, "activation", activation)
    dtype = _checks.float_dtype(fn, dtype)
    kwargs = dict(init=init, bias=bias, dtype=dtype)
    if spec.forget_bias:
        kwargs["forget_bias"] = forget_bias
    kwargs.update(_registry.init_options(fn, spec, cell_options))
    sizes = (hidden_size,) if proj_size is None else (hidden_size, proj_size)
    output_size = sizes[-1]
    num_directions = 2 if bidirectional else 1
    features = output_size * (num_directions if merge == "concat" else 1)
    if residual and features != input_size and num_layers == 1:
        _checks.fail(
            fn,
            "residual",
            f"needs a layer whose input width equals its output width ({features})",
            f"input_size={input_size} and num_layers=1",
            "Residual connections skip over layers above the first, or over "
            "the first when input_size equals its output width.",
        )
    keys = jax.random.split(key, num_layers * num_directions)
    cells = []
    for layer in range(num_layers):
        size = input_size if layer == 0 else features
        cells.append(
            tuple(
                spec.init(keys[layer * num_directions + d], size, *sizes, **kwargs)
                for d in range(num_directions)
            )
        )
    initial_state = None
    if learn_initial_state:
        dtype = cells[0][0].w_ih.dtype
        count = num_layers * num_directions
        h = jnp.zeros((count, output_size), dtype)
        initial_state = h
        if spec.lstm_carry:
            initial_state = LSTMCarry(h, jnp.zeros((count, hidden_size), dtype))
    return LayerParams(tuple(cells), activation, initial_state, merge, bool(residual))


def structure(fn: str, params: Any) -> _registry.CellSpec:
    """Check that params is a well-formed LayerParams; return its CellSpec."""
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
    spec = _registry.spec_of(params.cells[0][0])
    if spec is None:
        _checks.fail(
            fn,
            "params.cells",
            "must hold the params of a jaxrnn cell (RNNParams, LSTMParams, ...)",
            f"a {type(params.cells[0][0]).__name__}",
            kind=TypeError,
        )
    kind = spec.params
    directions = len(params.cells[0])
    if directions not in (1, 2):
        _checks.fail(
            fn, "params.cells", "must have 1 or 2 directions per layer", f"{directions}"
        )
    _checks.choice(fn, "params.merge", params.merge, MERGES)
    for layer, cells in enumerate(params.cells):
        if len(cells) != directions or any(type(c) is not kind for c in cells):
            _checks.fail(
                fn,
                f"params.cells[{layer}]",
                f"must hold {directions} {kind.__name__}",
                repr([type(c).__name__ for c in cells]),
                kind=TypeError,
            )
        expected = params.input_size if layer == 0 else params.features
        for d, c in enumerate(cells):
            if tuple(c.w_ih.shape[1:]) != (expected,):
                _checks.fail(
                    fn,
                    f"params.cells[{layer}][{d}].w_ih",
                    f"must read {expected} inputs",
                    f"shape {tuple(c.w_ih.shape)}",
                )
    return spec


def _state_arrays(
    fn: str, name: str, params: LayerParams, spec: _registry.CellSpec, state: Any, batch
) -> State:
    """Check a state [L*D, *batch, size] per array, LSTMCarry for LSTM-like cells."""
    count = params.num_layers * params.num_directions
    legend = "[num_layers * num_directions, B, {}]" if batch else "[L*D, {}]"
    if spec.lstm_carry:
        if not isinstance(state, LSTMCarry):
            _checks.fail(
                fn,
                name,
                f"must be LSTMCarry(h, c) for cell={params.cell!r}",
                _checks.describe(state),
                kind=TypeError,
            )
        arrays = {
            f"{name}.h": (state.h, params.output_size),
            f"{name}.c": (state.c, params.hidden_size),
        }
    else:
        arrays = {name: (state, params.output_size)}
    checked = []
    for arg, (value, size) in arrays.items():
        value = _checks.float_array(fn, arg, value)
        _checks.shape(
            fn,
            arg,
            value,
            (count, *batch, size),
            legend.format("P" if size != params.hidden_size else "H"),
            "This is PyTorch's h_0 layout." if batch else "",
        )
        _checks.same_dtype(fn, arg, value, params.dtype, "params")
        checked.append(value)
    return LSTMCarry(*checked) if spec.lstm_carry else checked[0]


def initial_carry(
    fn: str, params: LayerParams, spec: _registry.CellSpec, state: Any, batch_size: int
) -> State:
    """The initial state [L*D, B, .]: given, else learned, else zeros."""
    if state is not None:
        return _state_arrays(fn, "initial_state", params, spec, state, (batch_size,))
    if params.initial_state is not None:
        learned = _state_arrays(
            fn, "params.initial_state", params, spec, params.initial_state, ()
        )
        return jax.tree.map(
            lambda a: jnp.broadcast_to(
                a[:, None], (a.shape[0], batch_size, a.shape[1])
            ),
            learned,
        )
    count = params.num_layers * params.num_directions
    h = jnp.zeros((count, batch_size, params.output_size), params.dtype)
    if not spec.lstm_carry:
        return h
    return LSTMCarry(
        h, jnp.zeros((count, batch_size, params.hidden_size), params.dtype)
    )
