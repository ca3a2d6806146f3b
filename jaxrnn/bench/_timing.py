"""Timing helpers: compile time apart, warm-up discarded, min and median of repeats."""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform
import re
import statistics
import sys
import time
from typing import Any, Callable

import jax
import jaxlib


def _machine_name(device) -> str:
    """A folder name for results: the CPU model and core count, or the accelerator."""
    if device.platform != "cpu":
        return f"{device.platform}-{device.device_kind}"
    model = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                line.split(":", 1)[1].strip()
                for line in f
                if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    return f"cpu-{os.cpu_count()}core-{model}"


def environment() -> dict:
    """Where and with what a measurement was taken."""
    device = jax.devices()[0]
    info = {
        "date": datetime.date.today().isoformat(),
        "platform": device.platform,
        "device": getattr(device, "device_kind", str(device)),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    if hasattr(os, "getloadavg"):
        # The 1-minute load when the run began: above the core count, other
        # processes were competing and the figures are suspect.
        info["load_1min"] = round(os.getloadavg()[0], 2)
    info["machine"] = _machine_name(device)
    info["jaxlib"] = jaxlib.__version__
    return info


def time_jitted(fn: Callable, *args: Any, repeats: int = 10) -> dict:
    """Compile `fn` (a jax.jit function) for `args`, then time `repeats` calls."""
    start = time.perf_counter()
    compiled = fn.lower(*args).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(*args))  # warm-up, discarded
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return {
        "compile_s": compile_s,
        "min_ms": 1e3 * min(times),
        "median_ms": 1e3 * statistics.median(times),
        "repeats": repeats,
    }


def time_python(fn: Callable[[], Any], repeats: int = 10) -> dict:
    """Time a plain Python callable (used for PyTorch), first call discarded."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {
        "compile_s": 0.0,
        "min_ms": 1e3 * min(times),
        "median_ms": 1e3 * statistics.median(times),
        "repeats": repeats,
    }


def results_dir(env: dict, root: str | os.PathLike | None = None) -> pathlib.Path:
    """<root>/<machine>, root defaulting to ./benchmarks/results."""
    machine = re.sub(r"[^A-Za-z0-9_.-]+", "-", env["machine"]).strip("-")
    root = pathlib.Path("benchmarks/results") if root is None else pathlib.Path(root)
    return root / machine


def save(
    lines: list[dict],
    env: dict,
    filename: str,
    root: str | os.PathLike | None = None,
) -> pathlib.Path:
    """Append JSON lines to <root>/<machine>/<filename>; return the path.

    Every line is formatted before the file is opened, and all are appended
    in one write, so a failure while formatting adds nothing.
    """
    out = results_dir(env, root) / filename
    out.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(line) + "\n" for line in lines)
    with out.open("a") as f:
        f.write(text)
    print(f"appended {len(lines)} lines to {out}", file=sys.stderr)
    return out
