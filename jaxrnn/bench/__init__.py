"""The benchmark harness: jaxrnn beside Flax, Equinox, PyTorch and cuDNN.

    python -m benchmarks --grid cpu --save       # from a clone of the repo
    jaxrnn bench --grid smoke                    # from any install

The problem grids are data (`GRIDS`); the implementations are a registry
(`IMPLS`), all built from the same weights and checked against the jaxrnn
reference before they are timed. See benchmarks/README.md for the results.
"""

from jaxrnn.bench._cli import add_arguments as add_arguments
from jaxrnn.bench._cli import execute as execute
from jaxrnn.bench._cli import main as main
from jaxrnn.bench._grid import GRIDS as GRIDS
from jaxrnn.bench._grid import Problem as Problem
from jaxrnn.bench._impls import IMPLS as IMPLS
from jaxrnn.bench._run import run as run
from jaxrnn.bench._timing import environment as environment

__all__ = [
    "GRIDS",
    "IMPLS",
    "Problem",
    "add_arguments",
    "environment",
    "execute",
    "main",
    "run",
]
