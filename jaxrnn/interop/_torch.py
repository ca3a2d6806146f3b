"""PyTorch <-> jaxrnn: torch.nn.RNN, LSTM and GRU, and their weights.

PyTorch keeps two biases per cell, b_ih and b_hh, that always enter as a
sum; jaxrnn keeps the sum, b = b_ih + b_hh. The GRU is the exception: the
reset gate multiplies the hidden side of the candidate, so its n block keeps
b_in in b and b_hn apart:

    b    = [b_ir + b_hr, b_iz + b_hz, b_in]
    b_hn = b_hn

Weight matrices and gate orders (i, f, g, o; r, z, n) are the same on both
sides, so every conversion is a copy and a sum.
"""

from __future__ import annotations

import copy
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import _activations, _checks
from jaxrnn._elman import RNNParams
from jaxrnn._gru import GRUParams
from jaxrnn._layer import apply_layer
from jaxrnn._layer_params import LayerParams
from jaxrnn._lstm import LSTMCarry, LSTMParams
from jaxrnn._proj_lstm import ProjLSTMParams
from jaxrnn.interop import _common

_LSTMS = ("lstm", "proj_lstm")
_MODES = {
    "RNN_TANH": ("rnn", "tanh"),
    "RNN_RELU": ("rnn", "relu"),
    "LSTM": ("lstm", None),
    "GRU": ("gru", None),
}


# ------------------------------------------------------------- one cell's weights


def _biases(fn: str, bias_ih: Any, bias_hh: Any):
    if (bias_ih is None) != (bias_hh is None):
        _checks.fail(
            fn, "bias_ih and bias_hh", "must both be given or both be None", "only one"
        )
    return _common.to_array(bias_ih), _common.to_array(bias_hh)


def _summed(cls: type, fn: str, weight_ih, weight_hh, bias_ih, bias_hh):
    """cls(w_ih, w_hh, b_ih + b_hh): the Elman and LSTM conversion."""
    b_ih, b_hh = _biases(fn, bias_ih, bias_hh)
    b = None if b_ih is None else b_ih + b_hh
    return cls(_common.to_array(weight_ih), _common.to_array(weight_hh), b)


def rnn_params_from_torch(
    weight_ih: Any, weight_hh: Any, bias_ih: Any = None, bias_hh: Any = None
) -> RNNParams:
    """RNNParams from torch.nn.RNN weights: the matrices, and b = b_ih + b_hh.

    Args:
        weight_ih: [H, D]; weight_hh: [H, H]; bias_ih, bias_hh: [H] or None.
            Tensors or arrays.
    """
    return _summed(
        RNNParams, "rnn_params_from_torch", weight_ih, weight_hh, bias_ih, bias_hh
    )


def lstm_params_from_torch(
    weight_ih: Any,
    weight_hh: Any,
    bias_ih: Any = None,
    bias_hh: Any = None,
    weight_hr: Any = None,
) -> LSTMParams | ProjLSTMParams:
    """LSTMParams from torch.nn.LSTM weights: the matrices, and b = b_ih + b_hh.

    Args:
        weight_ih: [4H, D]; weight_hh: [4H, H] ([4H, P] with a projection);
            bias_ih, bias_hh: [4H] or None.
        weight_hr: the projection [P, H] of an LSTM with proj_size = P, or
            None. When given, the result is ProjLSTMParams.
    """
    fn = "lstm_params_from_torch"
    params = _summed(LSTMParams, fn, weight_ih, weight_hh, bias_ih, bias_hh)
    if weight_hr is None:
        return params
    return ProjLSTMParams(*params, _common.to_array(weight_hr))


def gru_params_from_torch(
    weight_ih: Any, weight_hh: Any, bias_ih: Any = None, bias_hh: Any = None
) -> GRUParams:
    """GRUParams from torch.nn.GRU weights.

    b = [b_ir + b_hr, b_iz + b_hz, b_in] and b_hn = the n block of b_hh.

    Args:
        weight_ih: [3H, D]; weight_hh: [3H, H]; bias_ih, bias_hh: [3H] or None.
    """
    b_ih, b_hh = _biases("gru_params_from_torch", bias_ih, bias_hh)
    w_ih, w_hh = _common.to_array(weight_ih), _common.to_array(weight_hh)
    if b_ih is None:
        return GRUParams(w_ih, w_hh, None, None)
    hidden = w_hh.shape[1]
    b = jnp.concatenate([b_ih[: 2 * hidden] + b_hh[: 2 * hidden], b_ih[2 * hidden :]])
    return GRUParams(w_ih, w_hh, b, b_hh[2 * hidden :])


def _split(total: np.ndarray, like_ih: np.ndarray | None, like_hh: np.ndarray | None):
    """b_ih, b_hh that sum to `total`, keeping `like`'s split where it still does."""
    if like_ih is None:
        return total, np.zeros_like(total)
    unchanged = (like_ih + like_hh) == total
    return like_ih, np.where(unchanged, like_hh, total - like_ih)


def _to_torch_dict(params: Any, like: dict | None) -> dict[str, np.ndarray | None]:
    """{weight_ih, weight_hh, bias_ih, bias_hh} as NumPy arrays for one cell."""
    w_ih, w_hh = _common.numpy(params.w_ih), _common.numpy(params.w_hh)
    out = {"weight_ih": w_ih, "weight_hh": w_hh, "bias_ih": None, "bias_hh": None}
    if isinstance(params, ProjLSTMParams):
        out["weight_hr"] = _common.numpy(params.w_hr)
    if params.b is None:
        return out
    like = like or {}
    like_ih, like_hh = like.get("bias_ih"), like.get("bias_hh")
    b = _common.numpy(params.b)
    if isinstance(params, GRUParams):
        hidden = w_hh.shape[1]
        rz_ih, rz_hh = _split(
            b[: 2 * hidden],
            None if like_ih is None else like_ih[: 2 * hidden],
            None if like_hh is None else like_hh[: 2 * hidden],
        )
        out["bias_ih"] = np.concatenate([rz_ih, b[2 * hidden :]])
        out["bias_hh"] = np.concatenate([rz_hh, _common.numpy(params.b_hn)])
    else:
        out["bias_ih"], out["bias_hh"] = _split(b, like_ih, like_hh)
    return out


def _one_cell_to_torch(fn: str, params: Any, cls: type) -> dict:
    if not isinstance(params, cls):
        _checks.fail(
            fn,
            "params",
            f"must be {cls.__name__}",
            _checks.describe(params),
            kind=TypeError,
        )
    return _to_torch_dict(params, None)


def rnn_params_to_torch(params: RNNParams) -> dict[str, np.ndarray | None]:
    """torch.nn.RNN's weight_ih, weight_hh, bias_ih (= b) and bias_hh (= 0)."""
    return _one_cell_to_torch("rnn_params_to_torch", params, RNNParams)


def lstm_params_to_torch(
    params: LSTMParams | ProjLSTMParams,
) -> dict[str, np.ndarray | None]:
    """torch.nn.LSTM's weight_ih, weight_hh, bias_ih (= b) and bias_hh (= 0).

    ProjLSTMParams also give weight_hr, the projection of proj_size > 0.
    """
    fn = "lstm_params_to_torch"
    if isinstance(params, ProjLSTMParams):
        return _to_torch_dict(params, None)
    return _one_cell_to_torch(fn, params, LSTMParams)


def gru_params_to_torch(params: GRUParams) -> dict[str, np.ndarray | None]:
    """torch.nn.GRU's weights: bias_ih = b, bias_hh = [0, 0, b_hn]."""
    return _one_cell_to_torch("gru_params_to_torch", params, GRUParams)


# ------------------------------------------------------------------ whole modules


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

    Example:
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
        batch_first, dropout: passed to the new module's constructor.
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
