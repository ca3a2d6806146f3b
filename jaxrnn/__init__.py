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

from jaxrnn import cells as _cells
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
from jaxrnn.cells import *  # noqa: F403  (each name in jaxrnn.cells.__all__)
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
    "LayerParams",
    "apply_layer",
    "bench",  # noqa: F405 (lazy, __getattr__)
    "diagnostics",
    "fast",
    "init_layer",
    "init_state",
    "interop",
    "io",
    "lengths_to_mask",
    "parallel",
    "parallel_unroll",
    "runs",  # noqa: F405 (lazy, __getattr__)
    "stream_layer",
    "tasks",
    "train",
    "unroll",
    "unroll_loop",
]
# The cells' names, as jaxrnn.cells lists them: a new cell is exported there.
__all__ += _cells.__all__
