"""Everything that gives the reference's answers faster.

`_dispatch` holds the `impl=` rule ("auto", "scan", "fused", "pallas") and
its messages; `_vjp` the time-major `jax.custom_vjp` driver; `_elman`,
`_lstm` and `_gru` each cell's fast layouts (XLA and kernel) beside their
hand-derived gradients; `_cell` what a fast cell is; `_kernel` the kernel
layout's sizes and padding; `_pallas` the time loop as one Pallas kernel,
imported only when impl="pallas" runs. Every fast path is tested against
the reference step under `lax.scan`, gradients included.
"""

from jaxrnn.fast._dispatch import IMPLS as IMPLS
from jaxrnn.fast._dispatch import REFERENCE_ONLY as REFERENCE_ONLY
from jaxrnn.fast._dispatch import choose as choose
from jaxrnn.fast._dispatch import unsupported as unsupported

__all__ = ["IMPLS", "REFERENCE_ONLY", "choose", "unsupported"]
