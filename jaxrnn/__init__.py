"""jaxrnn: recurrent networks as pure JAX functions.

The reference cells (`rnn_step`, `lstm_step`, `gru_step`, and the variants
`peephole_lstm_step`, `layer_norm_lstm_step`, `layer_norm_gru_step`,
`proj_lstm_step`, `cifg_lstm_step`, `mgu_step`) are `lax.scan` bodies;
`unroll` runs them over a sequence; `init_layer` / `apply_layer` give the
stacked, bidirectional, variable-length layer of `torch.nn.LSTM`, with
learned initial states, resets, recurrent dropout and zoneout on top.
Training lives in `jaxrnn.train`, tasks in `jaxrnn.tasks`, gradient and
gate diagnostics in `jaxrnn.diagnostics`, and exact
converters to and from PyTorch, Flax, Keras and Equinox in `jaxrnn.interop`.
"""

from jaxrnn import diagnostics as diagnostics
from jaxrnn import interop as interop
from jaxrnn import io as io
from jaxrnn import tasks as tasks
from jaxrnn import train as train
from jaxrnn._cifg_lstm import CIFGLSTMParams as CIFGLSTMParams
from jaxrnn._cifg_lstm import cifg_lstm_step as cifg_lstm_step
from jaxrnn._cifg_lstm import init_cifg_lstm as init_cifg_lstm
from jaxrnn._elman import ReadoutParams as ReadoutParams
from jaxrnn._elman import RNNParams as RNNParams
from jaxrnn._elman import init_readout as init_readout
from jaxrnn._elman import init_rnn as init_rnn
from jaxrnn._elman import init_rnn_carry as init_rnn_carry
from jaxrnn._elman import readout as readout
from jaxrnn._elman import rnn_step as rnn_step
from jaxrnn._gru import GRUParams as GRUParams
from jaxrnn._gru import gru_step as gru_step
from jaxrnn._gru import init_gru as init_gru
from jaxrnn._gru import init_gru_carry as init_gru_carry
from jaxrnn._layer import apply_layer as apply_layer
from jaxrnn._layer_norm_gru import LayerNormGRUParams as LayerNormGRUParams
from jaxrnn._layer_norm_gru import init_layer_norm_gru as init_layer_norm_gru
from jaxrnn._layer_norm_gru import layer_norm_gru_step as layer_norm_gru_step
from jaxrnn._layer_norm_lstm import LayerNormLSTMParams as LayerNormLSTMParams
from jaxrnn._layer_norm_lstm import init_layer_norm_lstm as init_layer_norm_lstm
from jaxrnn._layer_norm_lstm import layer_norm_lstm_step as layer_norm_lstm_step
from jaxrnn._layer_params import LayerParams as LayerParams
from jaxrnn._layer_params import init_layer as init_layer
from jaxrnn._lstm import LSTMCarry as LSTMCarry
from jaxrnn._lstm import LSTMParams as LSTMParams
from jaxrnn._lstm import init_lstm as init_lstm
from jaxrnn._lstm import init_lstm_carry as init_lstm_carry
from jaxrnn._lstm import lstm_step as lstm_step
from jaxrnn._mgu import MGUParams as MGUParams
from jaxrnn._mgu import init_mgu as init_mgu
from jaxrnn._mgu import mgu_step as mgu_step
from jaxrnn._peephole_lstm import PeepholeLSTMParams as PeepholeLSTMParams
from jaxrnn._peephole_lstm import init_peephole_lstm as init_peephole_lstm
from jaxrnn._peephole_lstm import peephole_lstm_step as peephole_lstm_step
from jaxrnn._proj_lstm import ProjLSTMParams as ProjLSTMParams
from jaxrnn._proj_lstm import init_proj_lstm as init_proj_lstm
from jaxrnn._proj_lstm import init_proj_lstm_carry as init_proj_lstm_carry
from jaxrnn._proj_lstm import proj_lstm_step as proj_lstm_step
from jaxrnn._unroll import lengths_to_mask as lengths_to_mask
from jaxrnn._unroll import unroll as unroll
from jaxrnn._unroll import unroll_loop as unroll_loop

__version__ = "0.1.0"

__all__ = [
    "CIFGLSTMParams",
    "GRUParams",
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
    "cifg_lstm_step",
    "diagnostics",
    "gru_step",
    "init_cifg_lstm",
    "init_gru",
    "init_gru_carry",
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
    "interop",
    "io",
    "layer_norm_gru_step",
    "layer_norm_lstm_step",
    "lengths_to_mask",
    "lstm_step",
    "mgu_step",
    "peephole_lstm_step",
    "proj_lstm_step",
    "readout",
    "rnn_step",
    "tasks",
    "train",
    "unroll",
    "unroll_loop",
]
