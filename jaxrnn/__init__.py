"""jaxrnn: recurrent networks as pure JAX functions.

The reference cells (`rnn_step`, `lstm_step`, `gru_step`, and the variants
`peephole_lstm_step`, `layer_norm_lstm_step`, `layer_norm_gru_step`,
`proj_lstm_step`, `cifg_lstm_step`, `mgu_step`, `indrnn_step`, `cho_gru_step`; in
`jaxrnn/cells/`) are
`lax.scan` bodies; `unroll` runs them over a sequence; `init_layer` /
`apply_layer` (in `jaxrnn/layer/`) give the stacked, bidirectional,
variable-length layer of `torch.nn.LSTM`, with learned initial states,
resets, recurrent dropout and zoneout on top, and run each layer through the
impl that the table of `jaxrnn.layer` picks; `init_state` / `stream_layer` carry
its state across chunks for streaming. Training lives in `jaxrnn.train`,
tasks in `jaxrnn.tasks`, gradient, gate and Lyapunov diagnostics in
`jaxrnn.diagnostics`, `parallel_unroll` (every step solved at once by
Newton's method) in `jaxrnn.parallel`, exact converters to and from
PyTorch, Flax, Keras and Equinox in `jaxrnn.interop`, training runs with
checkpoints in `jaxrnn.runs` and the benchmark harness in `jaxrnn.bench`
(these two load on first use: they build on everything else).
"""

import importlib as _importlib

from jaxrnn import diagnostics as diagnostics
from jaxrnn import fast as fast
from jaxrnn import interop as interop
from jaxrnn import io as io
from jaxrnn import parallel as parallel
from jaxrnn import tasks as tasks
from jaxrnn import train as train
from jaxrnn._unroll import lengths_to_mask as lengths_to_mask
from jaxrnn._unroll import unroll as unroll
from jaxrnn._unroll import unroll_loop as unroll_loop
from jaxrnn._version import __version__ as __version__
from jaxrnn.cells import ChoGRUParams as ChoGRUParams
from jaxrnn.cells import CIFGLSTMParams as CIFGLSTMParams
from jaxrnn.cells import GRUParams as GRUParams
from jaxrnn.cells import IndRNNParams as IndRNNParams
from jaxrnn.cells import LayerNormGRUParams as LayerNormGRUParams
from jaxrnn.cells import LayerNormLSTMParams as LayerNormLSTMParams
from jaxrnn.cells import LSTMCarry as LSTMCarry
from jaxrnn.cells import LSTMParams as LSTMParams
from jaxrnn.cells import MGUParams as MGUParams
from jaxrnn.cells import PeepholeLSTMParams as PeepholeLSTMParams
from jaxrnn.cells import ProjLSTMParams as ProjLSTMParams
from jaxrnn.cells import ReadoutParams as ReadoutParams
from jaxrnn.cells import RNNParams as RNNParams
from jaxrnn.cells import cho_gru_step as cho_gru_step
from jaxrnn.cells import cifg_lstm_step as cifg_lstm_step
from jaxrnn.cells import gru_step as gru_step
from jaxrnn.cells import indrnn_step as indrnn_step
from jaxrnn.cells import init_cho_gru as init_cho_gru
from jaxrnn.cells import init_cifg_lstm as init_cifg_lstm
from jaxrnn.cells import init_gru as init_gru
from jaxrnn.cells import init_gru_carry as init_gru_carry
from jaxrnn.cells import init_indrnn as init_indrnn
from jaxrnn.cells import init_layer_norm_gru as init_layer_norm_gru
from jaxrnn.cells import init_layer_norm_lstm as init_layer_norm_lstm
from jaxrnn.cells import init_lstm as init_lstm
from jaxrnn.cells import init_lstm_carry as init_lstm_carry
from jaxrnn.cells import init_mgu as init_mgu
from jaxrnn.cells import init_peephole_lstm as init_peephole_lstm
from jaxrnn.cells import init_proj_lstm as init_proj_lstm
from jaxrnn.cells import init_proj_lstm_carry as init_proj_lstm_carry
from jaxrnn.cells import init_readout as init_readout
from jaxrnn.cells import init_rnn as init_rnn
from jaxrnn.cells import init_rnn_carry as init_rnn_carry
from jaxrnn.cells import layer_norm_gru_step as layer_norm_gru_step
from jaxrnn.cells import layer_norm_lstm_step as layer_norm_lstm_step
from jaxrnn.cells import lstm_step as lstm_step
from jaxrnn.cells import mgu_step as mgu_step
from jaxrnn.cells import peephole_lstm_step as peephole_lstm_step
from jaxrnn.cells import proj_lstm_step as proj_lstm_step
from jaxrnn.cells import readout as readout
from jaxrnn.cells import rnn_step as rnn_step
from jaxrnn.layer import LayerParams as LayerParams
from jaxrnn.layer import apply_layer as apply_layer
from jaxrnn.layer import init_layer as init_layer
from jaxrnn.layer import init_state as init_state
from jaxrnn.layer import stream_layer as stream_layer
from jaxrnn.parallel import parallel_unroll as parallel_unroll

_LAZY = ("bench", "runs")


def __getattr__(name):
    if name in _LAZY:
        return _importlib.import_module(f"jaxrnn.{name}")
    raise AttributeError(f"module 'jaxrnn' has no attribute {name!r}")


__all__ = [
    "CIFGLSTMParams",
    "ChoGRUParams",
    "GRUParams",
    "IndRNNParams",
    "LSTMCarry",
    "LSTMParams",
    "LayerNormGRUParams",
    "LayerNormLSTMParams",
    "LayerParams",
    "MGUParams",
    "PeepholeLSTMParams",
    "ProjLSTMParams",
    "RNNParams",
    "ReadoutParams",
    "apply_layer",
    "bench",
    "cho_gru_step",
    "cifg_lstm_step",
    "diagnostics",
    "fast",
    "gru_step",
    "indrnn_step",
    "init_cho_gru",
    "init_cifg_lstm",
    "init_gru",
    "init_gru_carry",
    "init_indrnn",
    "init_layer",
    "init_layer_norm_gru",
    "init_layer_norm_lstm",
    "init_lstm",
    "init_lstm_carry",
    "init_mgu",
    "init_peephole_lstm",
    "init_proj_lstm",
    "init_proj_lstm_carry",
    "init_readout",
    "init_rnn",
    "init_rnn_carry",
    "init_state",
    "interop",
    "io",
    "layer_norm_gru_step",
    "layer_norm_lstm_step",
    "lengths_to_mask",
    "lstm_step",
    "mgu_step",
    "parallel",
    "parallel_unroll",
    "peephole_lstm_step",
    "proj_lstm_step",
    "readout",
    "rnn_step",
    "runs",
    "stream_layer",
    "tasks",
    "train",
    "unroll",
    "unroll_loop",
]
