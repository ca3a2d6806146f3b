"""The timing helpers of `jaxrnn.bench`, with results saved beside this file."""

from __future__ import annotations

import pathlib

from jaxrnn.bench._timing import environment, time_jitted, time_python
from jaxrnn.bench._timing import save as _save

RESULTS = pathlib.Path(__file__).parent / "results"

__all__ = ["environment", "save", "time_jitted", "time_python"]


def save(lines: list[dict], env: dict, filename: str) -> pathlib.Path:
    """Append JSON lines to benchmarks/results/<machine>/<filename>."""
    return _save(lines, env, filename, RESULTS)
