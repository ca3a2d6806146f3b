"""Training: masked losses, BPTT train steps with clipping, truncated BPTT."""

from jaxrnn.train._best import KeepBest as KeepBest
from jaxrnn.train._best import keep_best as keep_best
from jaxrnn.train._bptt import BPTTGrads as BPTTGrads
from jaxrnn.train._bptt import make_tbptt_step as make_tbptt_step
from jaxrnn.train._bptt import rnn_bptt as rnn_bptt
from jaxrnn.train._losses import cross_entropy_loss as cross_entropy_loss
from jaxrnn.train._losses import mse_loss as mse_loss
from jaxrnn.train._parallel import make_data_parallel as make_data_parallel
from jaxrnn.train._step import global_norm as global_norm
from jaxrnn.train._step import make_optimizer as make_optimizer
from jaxrnn.train._step import make_train_step as make_train_step
from jaxrnn.train._step import skipped_steps as skipped_steps

__all__ = [
    "BPTTGrads",
    "KeepBest",
    "cross_entropy_loss",
    "global_norm",
    "keep_best",
    "make_data_parallel",
    "make_optimizer",
    "make_tbptt_step",
    "make_train_step",
    "mse_loss",
    "rnn_bptt",
    "skipped_steps",
]
