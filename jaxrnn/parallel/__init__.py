"""Parallel-in-time evaluation: the unrolled network solved as one system.

`parallel_unroll` gives `unroll`'s answer by Newton's method on all T steps
at once (DEER, quasi-DEER, and a damped Newton), each iteration a linear
recurrence solved by `jax.lax.associative_scan`, with gradients by implicit
differentiation and a fallback to the sequential scan.
"""

from jaxrnn.parallel._api import METHODS as METHODS
from jaxrnn.parallel._api import parallel_unroll as parallel_unroll
from jaxrnn.parallel._solve import Info as Info

__all__ = ["METHODS", "Info", "parallel_unroll"]
