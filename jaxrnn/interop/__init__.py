"""Exact converters between jaxrnn and PyTorch, Flax (linen, nnx), Keras 3 and
Equinox, `from_mingru` for the minimal cells' peers (mingru-pytorch,
mingru-keras), and `to_nnx_module`, which makes a jaxrnn layer a trainable Flax NNX
module.

Each framework is imported only when its converter is called; a missing one
raises ImportError naming the extra to install (`pip install 'jaxrnn[torch]'`,
`[flax]`, `[keras]`, `[equinox]`, or `[interop]` for all four).
"""

from jaxrnn.interop._equinox import from_equinox as from_equinox
from jaxrnn.interop._equinox import to_equinox as to_equinox
from jaxrnn.interop._flax import carry_from_flax as carry_from_flax
from jaxrnn.interop._flax import carry_to_flax as carry_to_flax
from jaxrnn.interop._flax import from_flax as from_flax
from jaxrnn.interop._flax import to_flax_linen as to_flax_linen
from jaxrnn.interop._flax import to_flax_nnx as to_flax_nnx
from jaxrnn.interop._keras import from_keras as from_keras
from jaxrnn.interop._keras import to_keras as to_keras
from jaxrnn.interop._mingru import from_mingru as from_mingru
from jaxrnn.interop._nnx import to_nnx_module as to_nnx_module
from jaxrnn.interop._torch import from_torch as from_torch
from jaxrnn.interop._torch import to_torch as to_torch
from jaxrnn.interop._torch_params import gru_params_from_torch as gru_params_from_torch
from jaxrnn.interop._torch_params import gru_params_to_torch as gru_params_to_torch
from jaxrnn.interop._torch_params import (
    lstm_params_from_torch as lstm_params_from_torch,
)
from jaxrnn.interop._torch_params import lstm_params_to_torch as lstm_params_to_torch
from jaxrnn.interop._torch_params import rnn_params_from_torch as rnn_params_from_torch
from jaxrnn.interop._torch_params import rnn_params_to_torch as rnn_params_to_torch

__all__ = [
    "carry_from_flax",
    "carry_to_flax",
    "from_equinox",
    "from_flax",
    "from_keras",
    "from_mingru",
    "from_torch",
    "gru_params_from_torch",
    "gru_params_to_torch",
    "lstm_params_from_torch",
    "lstm_params_to_torch",
    "rnn_params_from_torch",
    "rnn_params_to_torch",
    "to_equinox",
    "to_flax_linen",
    "to_flax_nnx",
    "to_keras",
    "to_nnx_module",
    "to_torch",
]
