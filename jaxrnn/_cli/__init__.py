"""The `jaxrnn` command line: info, train, eval, generate, compare and bench.

Every flag of `train` and `compare` is a field of `jaxrnn.runs.RunConfig`, and
a flag left out takes the task's default (`jaxrnn train --help` lists them).
Bad input exits with status 2 and one message, a run stopped by non-finite
losses with status 3; a traceback is a bug.
"""

from jaxrnn._cli._main import main as main
from jaxrnn._cli._parser import build_parser as build_parser

__all__ = ["build_parser", "main"]
