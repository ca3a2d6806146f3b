"""The recurrent layer: `torch.nn.LSTM`'s feature set as two pure functions.

`_params` holds `LayerParams` and `init_layer`; `_apply` holds `apply_layer`,
resolved options and a short loop over layers and directions; `_regularise`
holds dropout, recurrent dropout and zoneout; `_stream` holds `init_state` and
`stream_layer`, which carry a unidirectional layer's state across chunks;
`_impls` holds the table of impls (`IMPLS`, `choose`), whose rows run each
direction: `_reference`, the scan, or a faster path. The layer's functions
are re-exported at the top of `jaxrnn`.
"""

from jaxrnn.layer._apply import apply_layer as apply_layer
from jaxrnn.layer._impls import IMPLS as IMPLS
from jaxrnn.layer._impls import REFERENCE_ONLY as REFERENCE_ONLY
from jaxrnn.layer._impls import SEQUENTIAL_ONLY as SEQUENTIAL_ONLY
from jaxrnn.layer._impls import choose as choose
from jaxrnn.layer._impls import unsupported as unsupported
from jaxrnn.layer._params import LayerParams as LayerParams
from jaxrnn.layer._params import init_layer as init_layer
from jaxrnn.layer._stream import init_state as init_state
from jaxrnn.layer._stream import stream_layer as stream_layer

__all__ = [
    "IMPLS",
    "REFERENCE_ONLY",
    "SEQUENTIAL_ONLY",
    "LayerParams",
    "apply_layer",
    "choose",
    "init_layer",
    "init_state",
    "stream_layer",
    "unsupported",
]
