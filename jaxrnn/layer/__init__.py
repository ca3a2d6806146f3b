"""The recurrent layer: `torch.nn.LSTM`'s feature set as two pure functions.

`_params` holds `LayerParams` and `init_layer`; `_apply` holds `apply_layer`,
resolved options and a short loop over layers and directions; `_regularise`
holds dropout, recurrent dropout and zoneout. Each direction runs through the
runner that `jaxrnn.fast`'s dispatch rule picks: the reference scan, or a fast
path. Everything here is re-exported at the top of `jaxrnn`.
"""

from jaxrnn.layer._apply import apply_layer as apply_layer
from jaxrnn.layer._params import LayerParams as LayerParams
from jaxrnn.layer._params import init_layer as init_layer

__all__ = ["LayerParams", "apply_layer", "init_layer"]
