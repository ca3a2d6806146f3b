"""The timing helpers of `jaxrnn.bench`, with results saved beside this file."""

from __future__ import annotations

import pathlib
import statistics
import time

import jax

from jaxrnn.bench._timing import environment, time_jitted, time_python
from jaxrnn.bench._timing import save as _save

RESULTS = pathlib.Path(__file__).parent / "results"

__all__ = ["environment", "median_ms", "save", "time_jitted", "time_python"]


def save(lines: list[dict], env: dict, filename: str) -> pathlib.Path:
    """Append JSON lines to benchmarks/results/<machine>/<filename>."""
    return _save(lines, env, filename, RESULTS)


def median_ms(fn, *args, repeats: int) -> float:
    """The median of `repeats` calls of a jitted `fn`, in ms, after a compile
    and warm call; one call where the warm call took over 2 s."""
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    if time.perf_counter() - start > 2:
        repeats = 1
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)
