"""The lecture's equations: every cell as a pure step, with its params and
initialisers.

One cell per file: `_elman` (the Elman RNN and its readout), `_lstm`, `_gru`,
and the variants `_peephole_lstm`, `_layer_norm_lstm`, `_layer_norm_gru`,
`_proj_lstm`, `_cifg_lstm`, `_mgu`, `_indrnn` (IndRNN), `_cho_gru` (the
reset-before GRU), and `_min_gru` and `_min_lstm`, whose gates read x_t
alone (their shared step is `_min`). Beside them: `_activations`, the one
table of g and g'; `_initializers`; `_validate`, the checks every step
makes; `_ops`, the matmul policy and layer normalisation; `_registry`, the
cells by name.
Everything here is re-exported at the top of `jaxrnn`.
"""

from jaxrnn.cells._cho_gru import ChoGRUParams as ChoGRUParams
from jaxrnn.cells._cho_gru import cho_gru_step as cho_gru_step
from jaxrnn.cells._cho_gru import init_cho_gru as init_cho_gru
from jaxrnn.cells._cifg_lstm import CIFGLSTMParams as CIFGLSTMParams
from jaxrnn.cells._cifg_lstm import cifg_lstm_step as cifg_lstm_step
from jaxrnn.cells._cifg_lstm import init_cifg_lstm as init_cifg_lstm
from jaxrnn.cells._elman import ReadoutParams as ReadoutParams
from jaxrnn.cells._elman import RNNParams as RNNParams
from jaxrnn.cells._elman import init_readout as init_readout
from jaxrnn.cells._elman import init_rnn as init_rnn
from jaxrnn.cells._elman import init_rnn_carry as init_rnn_carry
from jaxrnn.cells._elman import readout as readout
from jaxrnn.cells._elman import rnn_step as rnn_step
from jaxrnn.cells._gru import GRUParams as GRUParams
from jaxrnn.cells._gru import gru_step as gru_step
from jaxrnn.cells._gru import init_gru as init_gru
from jaxrnn.cells._gru import init_gru_carry as init_gru_carry
from jaxrnn.cells._indrnn import IndRNNParams as IndRNNParams
from jaxrnn.cells._indrnn import indrnn_step as indrnn_step
from jaxrnn.cells._indrnn import init_indrnn as init_indrnn
from jaxrnn.cells._layer_norm_gru import LayerNormGRUParams as LayerNormGRUParams
from jaxrnn.cells._layer_norm_gru import init_layer_norm_gru as init_layer_norm_gru
from jaxrnn.cells._layer_norm_gru import layer_norm_gru_step as layer_norm_gru_step
from jaxrnn.cells._layer_norm_lstm import LayerNormLSTMParams as LayerNormLSTMParams
from jaxrnn.cells._layer_norm_lstm import init_layer_norm_lstm as init_layer_norm_lstm
from jaxrnn.cells._layer_norm_lstm import layer_norm_lstm_step as layer_norm_lstm_step
from jaxrnn.cells._lstm import LSTMCarry as LSTMCarry
from jaxrnn.cells._lstm import LSTMParams as LSTMParams
from jaxrnn.cells._lstm import init_lstm as init_lstm
from jaxrnn.cells._lstm import init_lstm_carry as init_lstm_carry
from jaxrnn.cells._lstm import lstm_step as lstm_step
from jaxrnn.cells._mgu import MGUParams as MGUParams
from jaxrnn.cells._mgu import init_mgu as init_mgu
from jaxrnn.cells._mgu import mgu_step as mgu_step
from jaxrnn.cells._min_gru import MinGRUParams as MinGRUParams
from jaxrnn.cells._min_gru import init_min_gru as init_min_gru
from jaxrnn.cells._min_gru import min_gru_step as min_gru_step
from jaxrnn.cells._min_lstm import MinLSTMParams as MinLSTMParams
from jaxrnn.cells._min_lstm import init_min_lstm as init_min_lstm
from jaxrnn.cells._min_lstm import min_lstm_step as min_lstm_step
from jaxrnn.cells._peephole_lstm import PeepholeLSTMParams as PeepholeLSTMParams
from jaxrnn.cells._peephole_lstm import init_peephole_lstm as init_peephole_lstm
from jaxrnn.cells._peephole_lstm import peephole_lstm_step as peephole_lstm_step
from jaxrnn.cells._proj_lstm import ProjLSTMParams as ProjLSTMParams
from jaxrnn.cells._proj_lstm import init_proj_lstm as init_proj_lstm
from jaxrnn.cells._proj_lstm import init_proj_lstm_carry as init_proj_lstm_carry
from jaxrnn.cells._proj_lstm import proj_lstm_step as proj_lstm_step

__all__ = [
    "CIFGLSTMParams",
    "ChoGRUParams",
    "GRUParams",
    "IndRNNParams",
    "LSTMCarry",
    "LSTMParams",
    "LayerNormGRUParams",
    "LayerNormLSTMParams",
    "MGUParams",
    "MinGRUParams",
    "MinLSTMParams",
    "PeepholeLSTMParams",
    "ProjLSTMParams",
    "RNNParams",
    "ReadoutParams",
    "cho_gru_step",
    "cifg_lstm_step",
    "gru_step",
    "indrnn_step",
    "init_cho_gru",
    "init_cifg_lstm",
    "init_gru",
    "init_gru_carry",
    "init_indrnn",
    "init_layer_norm_gru",
    "init_layer_norm_lstm",
    "init_lstm",
    "init_lstm_carry",
    "init_mgu",
    "init_min_gru",
    "init_min_lstm",
    "init_peephole_lstm",
    "init_proj_lstm",
    "init_proj_lstm_carry",
    "init_readout",
    "init_rnn",
    "init_rnn_carry",
    "layer_norm_gru_step",
    "layer_norm_lstm_step",
    "lstm_step",
    "mgu_step",
    "min_gru_step",
    "min_lstm_step",
    "peephole_lstm_step",
    "proj_lstm_step",
    "readout",
    "rnn_step",
]
