"""The recurrent layer: `torch.nn.LSTM`'s feature set as two pure functions.

`_params` holds `LayerParams` and `init_layer`; `_apply` holds `apply_layer`,
resolved options and a short loop over layers and directions; `_regularise`
holds dropout, recurrent dropout and zoneout; `_stream` holds `init_state` and
`stream_layer`, which carry a unidirectional layer's state across chunks. Each
direction runs through the runner that `jaxrnn.fast`'s dispatch rule picks:
the reference scan, or a fast path. Everything here is re-exported at the top
of `jaxrnn`.
"""

from jaxrnn.layer._apply import apply_layer as apply_layer
from jaxrnn.layer._params import LayerParams as LayerParams
from jaxrnn.layer._params import init_layer as init_layer
from jaxrnn.layer._stream import init_state as init_state
from jaxrnn.layer._stream import stream_layer as stream_layer

__all__ = ["LayerParams", "apply_layer", "init_layer", "init_state", "stream_layer"]
