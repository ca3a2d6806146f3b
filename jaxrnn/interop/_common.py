"""Helpers shared by the converters: lazy imports, array conversion, cell lookup."""

from __future__ import annotations

import importlib
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxrnn import _checks
from jaxrnn.cells import _registry
from jaxrnn.cells._elman import RNNParams
from jaxrnn.cells._gru import GRUParams
from jaxrnn.cells._lstm import LSTMParams
from jaxrnn.layer._params import LayerParams

CELL_TYPES = {"rnn": RNNParams, "lstm": LSTMParams, "gru": GRUParams}


def require(module: str, extra: str, fn: str):
    """Import an optional framework, or raise ImportError naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{fn} needs {module.split('.')[0]}, which could not be imported "
            f"({error}). Install it with: pip install 'jaxrnn[{extra}]'"
        ) from error


def to_array(x: Any, dtype: Any = None):
    """A NumPy or JAX array from a torch tensor, keras variable or array-like.

    bfloat16 survives: torch's bfloat16 (which NumPy cannot hold) goes through
    float32, exactly, and comes back as jnp.bfloat16.
    """
    if x is None:
        return None
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            return jnp.asarray(x.float().numpy()).astype(jnp.bfloat16)
        x = x.numpy()
    elif hasattr(x, "value") and type(x).__module__.startswith("keras"):
        x = x.value
    x = jnp.asarray(x)
    return x if dtype is None else x.astype(dtype)


def numpy(x: Any) -> np.ndarray | None:
    """A NumPy array (bfloat16 as ml_dtypes.bfloat16), or None."""
    return None if x is None else np.asarray(x)


def cell_name(fn: str, params: Any, more: dict | None = None) -> str:
    """ "rnn", "lstm" or "gru" for cell params (or a name of `more`, the
    further cells a converter has), or a TypeError."""
    types = {**CELL_TYPES, **(more or {})}
    for name, cls in types.items():
        if isinstance(params, cls):
            return name
    variant = _registry.spec_of(params)
    names = ", ".join(cls.__name__ for cls in types.values())
    _checks.fail(
        fn,
        "params",
        f"must be {names} or LayerParams of those",
        _checks.describe(params),
        f"The {variant.name} cell has no counterpart in that library."
        if variant is not None
        else "",
        kind=TypeError,
    )


def plain_layer(fn: str, params: LayerParams) -> None:
    """Refuse the layer options that the other libraries do not have."""
    if params.initial_state is not None:
        _checks.fail(
            fn,
            "params.initial_state",
            "must be None (a learned initial state has no counterpart there)",
            "a learned state",
            "Pass it as the initial state when you call the converted model.",
        )
    if params.residual:
        _checks.fail(fn, "params.residual", "must be False", "True")


def one_cell(fn: str, params: Any, more: dict | None = None) -> tuple[Any, Any]:
    """(cell params, activation) from cell params or a one-cell LayerParams
    (of the cells of CELL_TYPES, and those of `more`)."""
    if isinstance(params, LayerParams):
        if params.num_layers != 1 or params.num_directions != 1:
            _checks.fail(
                fn,
                "params",
                "must hold one layer and one direction (a single cell)",
                f"{params.num_layers} layers and {params.num_directions} directions",
                "Convert params.cells[layer][direction] one at a time.",
            )
        plain_layer(fn, params)
        cell_name(fn, params.cells[0][0], more)
        return params.cells[0][0], params.activation
    cell_name(fn, params, more)
    return params, "tanh"


def single_layer(params: Any, activation: Any = "tanh") -> LayerParams:
    """Wrap one cell's params as a one-layer, one-direction LayerParams."""
    return LayerParams(((params,),), activation)


def check_bias_all_or_none(fn: str, cells: list) -> bool:
    """Whether the cells have biases; mixing biased and unbiased cells is refused."""
    has = {c.b is not None for c in cells}
    if len(has) != 1:
        _checks.fail(
            fn,
            "params",
            "must have biases in every cell or in none",
            "a mix",
            "PyTorch and Keras set `bias` for a whole layer.",
        )
    return has.pop()
