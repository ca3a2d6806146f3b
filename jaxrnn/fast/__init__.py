"""Everything that gives the reference's answers faster.

`_vjp` holds the time-major `jax.custom_vjp` driver; `_fused` its two passes
with `lax.scan` or Pallas loops; `_cpu` the same passes as compiled C++
kernels; `_shard` every pass under data parallelism; `_elman`, `_lstm` and
`_gru` each cell's fast layouts (XLA and kernel) beside their hand-derived
gradients; `_cell` what a fast cell is; `_kernel` the kernel layout's sizes
and padding; `_pallas` the time loop as one Pallas kernel, imported only
when impl="pallas" runs. Which impl runs a layer is the table of
`jaxrnn.layer.IMPLS` (`jaxrnn/layer/_impls.py`). Every fast path is tested
against the reference step under `lax.scan`, gradients included.

`jaxrnn.fast.choose`, `unsupported`, `IMPLS` and `REFERENCE_ONLY` are the
table's names from before it moved, kept for one release with a
DeprecationWarning: use `jaxrnn.layer`'s.
"""

import importlib as _importlib
import warnings as _warnings

_MOVED = ("IMPLS", "REFERENCE_ONLY", "choose", "unsupported")


def __getattr__(name):
    if name in _MOVED:
        _warnings.warn(
            f"jaxrnn.fast.{name} is deprecated: use jaxrnn.layer.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(_importlib.import_module("jaxrnn.layer._impls"), name)
    raise AttributeError(f"module 'jaxrnn.fast' has no attribute {name!r}")


__all__ = []
