"""jaxrnn: recurrent networks as pure JAX functions.

The reference cells (`rnn_step`, `lstm_step`, `gru_step`) are `lax.scan`
bodies; `unroll` runs them over a sequence; `init_layer` / `apply_layer` give
the stacked, bidirectional, variable-length layer of `torch.nn.LSTM`.
Training lives in `jaxrnn.train`, tasks in `jaxrnn.tasks`, and exact
converters to and from PyTorch, Flax, Keras and Equinox in `jaxrnn.interop`.
"""

from jaxrnn import interop as interop
from jaxrnn import tasks as tasks
from jaxrnn import train as train
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
from jaxrnn._layer import LayerParams as LayerParams
from jaxrnn._layer import apply_layer as apply_layer
from jaxrnn._layer import init_layer as init_layer
from jaxrnn._lstm import LSTMCarry as LSTMCarry
from jaxrnn._lstm import LSTMParams as LSTMParams
from jaxrnn._lstm import init_lstm as init_lstm
from jaxrnn._lstm import init_lstm_carry as init_lstm_carry
from jaxrnn._lstm import lstm_step as lstm_step
from jaxrnn._unroll import lengths_to_mask as lengths_to_mask
from jaxrnn._unroll import unroll as unroll
from jaxrnn._unroll import unroll_loop as unroll_loop

__version__ = "0.1.0"

__all__ = [
    "GRUParams",
    "LSTMCarry",
    "LSTMParams",
    "LayerParams",
    "RNNParams",
    "ReadoutParams",
    "apply_layer",
    "gru_step",
    "init_gru",
    "init_gru_carry",
    "init_layer",
    "init_lstm",
    "init_lstm_carry",
    "init_readout",
    "init_rnn",
    "init_rnn_carry",
    "interop",
    "lengths_to_mask",
    "lstm_step",
    "readout",
    "rnn_step",
    "tasks",
    "train",
    "unroll",
    "unroll_loop",
]
