"""PyTorch <-> jaxrnn: torch.nn.RNN, LSTM and GRU modules, and their layers.

One cell's weights convert in `_torch_params`; this module converts whole
modules, stacked and bidirectional, with their state-dict layout.
The bias sum (b = b_ih + b_hh, with the GRU's b_hn apart) is explained in
`_torch_params`, which both directions use for each cell.
"""

from __future__ import annotations

import copy
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import _checks
from jaxrnn.cells import _activations
from jaxrnn.cells._lstm import LSTMCarry
from jaxrnn.cells._proj_lstm import ProjLSTMParams
from jaxrnn.interop import _common
from jaxrnn.interop._torch_params import (
    _to_torch_dict,
    gru_params_from_torch,
    lstm_params_from_torch,
    rnn_params_from_torch,
)
from jaxrnn.layer._apply import apply_layer
from jaxrnn.layer._params import LayerParams

_LSTMS = ("lstm", "proj_lstm")
_MODES = {
    "RNN_TANH": ("rnn", "tanh"),
    "RNN_RELU": ("rnn", "relu"),
    "LSTM": ("lstm", None),
    "GRU": ("gru", None),
}


def _apply_torch_layout(
    params: LayerParams,
    xs: Any,
    initial_state: Any = None,
    *,
    batch_first: bool,
    dropout: float,
    lengths: Any = None,
    key: jax.Array | None = None,
):
    fn = "apply"
    xs = _checks.float_array(fn, "xs", xs)
    if xs.ndim not in (2, 3):
        _checks.fail(
            fn,
            "xs",
            "must be [T, D] (unbatched), or [B, T, D] with batch_first, else [T, B, D]",
            f"shape {tuple(xs.shape)}",
        )
    unbatched = xs.ndim == 2
    if unbatched:
        xs = xs[None]
    elif not batch_first:
        xs = jnp.swapaxes(xs, 0, 1)
    state = initial_state
    if state is not None:
        if params.cell in _LSTMS:
            if not (isinstance(state, (tuple, list)) and len(state) == 2):
                _checks.fail(
                    fn,
                    "initial_state",
                    "must be a pair (h_0, c_0) for an LSTM",
                    _checks.describe(state),
                    kind=TypeError,
                )
            state = LSTMCarry(
                *(_checks.as_array(fn, "initial_state", s) for s in state)
            )
        else:
            state = _checks.as_array(fn, "initial_state", state)
        if unbatched:
            state = jax.tree.map(lambda s: s[:, None] if s.ndim == 2 else s, state)
    if unbatched and lengths is not None:
        lengths = jnp.reshape(_checks.as_array(fn, "lengths", lengths), (1,))
    ys, final = apply_layer(
        params,
        xs,
        lengths=lengths,
        initial_state=state,
        dropout=dropout if key is not None else 0.0,
        key=key,
    )
    if unbatched:
        ys, final = ys[0], jax.tree.map(lambda s: s[:, 0], final)
    elif not batch_first:
        ys = jnp.swapaxes(ys, 0, 1)
    if params.cell in _LSTMS:
        final = (final.h, final.c)
    return ys, final


def from_torch(module: Any) -> tuple[LayerParams, Callable]:
    """Convert a torch.nn.RNN, LSTM or GRU into params and a pure apply function.

    Args:
        module: a torch.nn.RNN (tanh or relu), LSTM or GRU, with any
            num_layers, bidirectional, bias, batch_first and dropout, and
            for the LSTM any proj_size (giving ProjLSTMParams cells).

    Returns:
        (params, apply). params is a LayerParams. `apply(params, xs,
        initial_state=None, *, lengths=None, key=None) -> (outputs,
        final_state)` has the meaning and layout of `module(xs, hx)` in eval
        mode: xs is [B, T, D] if module.batch_first else [T, B, D], or [T, D]
        unbatched; final_state is h_n [num_layers * num_directions, B, H], or
        (h_n, c_n) for the LSTM; initial_state takes the same layout (h_0 or
        (h_0, c_0)). `lengths` [B] plays the role of a PackedSequence (padded
        outputs are zero, h_n is taken at each sequence's last step). With a
        PRNG `key`, dropout between layers is applied as in training mode.
        apply is pure: wrap it in jax.jit.

    Raises:
        ImportError: PyTorch is not installed.
        TypeError: module is not one of the three.

    Examples:
        >>> import torch, jax, numpy as np
        >>> m = torch.nn.GRU(3, 5, num_layers=2, bidirectional=True, batch_first=True)
        >>> params, apply = from_torch(m)
        >>> x = np.random.default_rng(0).normal(size=(4, 7, 3)).astype("float32")
        >>> ys, h_n = jax.jit(apply)(params, x)
        >>> expected_ys, expected_h_n = m(torch.from_numpy(x))
        >>> bool(np.allclose(ys, expected_ys.detach().numpy(), atol=1e-5))
        True
    """
    fn = "from_torch"
    torch = _common.require("torch", "torch", fn)
    if not isinstance(module, torch.nn.RNNBase) or module.mode not in _MODES:
        _checks.fail(
            fn,
            "module",
            "must be a torch.nn.RNN, LSTM or GRU",
            _checks.describe(module),
            kind=TypeError,
        )
    cell, activation = _MODES[module.mode]
    convert = {
        "rnn": rnn_params_from_torch,
        "lstm": lstm_params_from_torch,
        "gru": gru_params_from_torch,
    }[cell]
    layers = []
    for layer in range(module.num_layers):
        directions = []
        for suffix in ("", "_reverse")[: 2 if module.bidirectional else 1]:

            def get(name, suffix=suffix):
                full = f"{name}_l{layer}{suffix}"
                return getattr(module, full) if hasattr(module, full) else None

            weights = [get(name) for name in ("weight_ih", "weight_hh")]
            weights += [get("bias_ih"), get("bias_hh")]
            if get("weight_hr") is not None:
                weights.append(get("weight_hr"))
            directions.append(convert(*weights))
        layers.append(tuple(directions))
    params = LayerParams(tuple(layers), activation or "tanh")
    apply = functools.partial(
        _apply_torch_layout,
        batch_first=bool(module.batch_first),
        dropout=float(module.dropout),
    )
    return params, apply


def _activation_name(fn: str, activation: Any) -> str:
    for name, g in _activations.ELEMENTWISE.items():
        if activation == name or activation is g:
            if name in ("tanh", "relu"):
                return name
    _checks.fail(
        fn,
        "params.activation",
        "must be 'tanh' or 'relu' for torch.nn.RNN",
        repr(activation),
    )


def to_torch(
    params: Any, *, batch_first: bool = False, dropout: float = 0.0, like: Any = None
) -> Any:
    """Build the torch.nn.RNN, LSTM or GRU that computes what `params` compute.

    Args:
        params: LayerParams (any layers and directions) of the Elman, LSTM
            (with or without projection) or GRU cell, or one cell's params.
            The layer options PyTorch lacks (a learned initial state,
            residual connections, merges other than "concat") and the other
            cell variants are refused with an error.
        batch_first: passed to the new module's constructor.
        dropout: passed to the new module's constructor.
        like: optional module of the same architecture to start from (a deep
            copy is returned; its batch_first and dropout are kept). PyTorch's
            bias split b_ih / b_hh is not recoverable from the sum b, so
            without `like` the sum goes to bias_ih and bias_hh is zero (the GRU's
            n block: bias_ih = b_in, bias_hh = b_hn). With `like`, each bias
            entry keeps like's b_ih, and like's b_hh wherever b_ih + b_hh still
            equals b: `to_torch(from_torch(m)[0], like=m)` reproduces every
            tensor of m exactly.

    Returns:
        A torch module (in the params' dtype), in training mode like any new
        module: call .eval() for inference.
    """
    fn = "to_torch"
    torch = _common.require("torch", "torch", fn)
    if not isinstance(params, LayerParams):
        if not isinstance(params, ProjLSTMParams):
            _common.cell_name(fn, params)
        params = _common.single_layer(params)
    if params.cell not in ("rnn", "gru", *_LSTMS):
        _checks.fail(
            fn,
            "params",
            "must hold RNNParams, LSTMParams, ProjLSTMParams or GRUParams",
            f"{params.cell} cells",
            "PyTorch has no counterpart of this cell variant.",
            kind=TypeError,
        )
    _common.plain_layer(fn, params)
    if params.merge != "concat":
        _checks.fail(
            fn,
            "params.merge",
            "must be 'concat' (PyTorch's only way to merge directions)",
            repr(params.merge),
        )
    cells = [c for layer in params.cells for c in layer]
    has_bias = _common.check_bias_all_or_none(fn, cells)
    dtype = {
        "float32": torch.float32,
        "float64": torch.float64,
        "bfloat16": torch.bfloat16,
        "float16": torch.float16,
    }[params.dtype.name]
    cls = {
        "rnn": torch.nn.RNN,
        "lstm": torch.nn.LSTM,
        "proj_lstm": torch.nn.LSTM,
        "gru": torch.nn.GRU,
    }[params.cell]
    kwargs = dict(
        input_size=params.input_size,
        hidden_size=params.hidden_size,
        num_layers=params.num_layers,
        bias=has_bias,
        bidirectional=params.num_directions == 2,
    )
    if params.cell == "rnn":
        kwargs["nonlinearity"] = _activation_name(fn, params.activation)
    if params.cell == "proj_lstm":
        kwargs["proj_size"] = params.proj_size
    if like is None:
        module = cls(batch_first=batch_first, dropout=dropout, **kwargs).to(dtype)
    else:
        if not isinstance(like, cls) or any(
            getattr(like, k) != v for k, v in kwargs.items()
        ):
            _checks.fail(
                fn,
                "like",
                f"must be a torch.nn.{cls.__name__} with {kwargs}",
                repr(like),
            )
        module = copy.deepcopy(like).to(dtype)
    with torch.no_grad():
        for layer, directions in enumerate(params.cells):
            for d, cell_params in enumerate(directions):
                suffix = f"_l{layer}" + ("_reverse" if d else "")
                old = None
                if like is not None and has_bias:
                    old = {
                        name: _common.numpy(
                            _common.to_array(getattr(module, name + suffix))
                        )
                        for name in ("bias_ih", "bias_hh")
                    }
                for name, value in _to_torch_dict(cell_params, old).items():
                    if value is not None:
                        getattr(module, name + suffix).copy_(_tensor(torch, value))
    return module


def _tensor(torch: Any, value: np.ndarray) -> Any:
    """A torch tensor from a NumPy array, bfloat16 included (through float32)."""
    if value.dtype == jnp.bfloat16:
        return torch.from_numpy(np.asarray(value, np.float32)).to(torch.bfloat16)
    return torch.from_numpy(np.array(value))  # a writable copy
