"""Run a grid: check every implementation against the reference, then time
them side by side."""

from __future__ import annotations

import dataclasses
import datetime
import statistics
import sys
import time
import uuid
from typing import Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import layer as _layer
from jaxrnn.bench._grid import Problem
from jaxrnn.bench._impls import IMPLS, MEASURES, Impl
from jaxrnn.bench._timing import environment

# Largest |ys - reference| at which an implementation counts as computing the
# same function, by the dtype it runs in. Beyond it, it is not timed.
TOLERANCE = {"float32": 1e-3, "bfloat16": 0.1, "float16": 0.05}


def problem_data(problem: Problem, seed: int = 0):
    """The layer (init="torch"), inputs [B, T, D] and targets [B, T, H]
    (2H for a bidirectional layer).

    The GRU's b_hn is set to zero so that flax.nnx's GRUCell, which has no
    such bias, computes the same function as the others.
    """
    key = jax.random.key(seed)
    k_layer, k_x, k_y = jax.random.split(key, 3)
    layer = _layer.init_layer(
        k_layer,
        problem.cell,
        problem.features,
        problem.hidden,
        init="torch",
        num_layers=problem.num_layers,
        bidirectional=problem.bidirectional,
    )
    if hasattr(layer.cells[0][0], "b_hn"):
        cells = tuple(
            tuple(c._replace(b_hn=jnp.zeros_like(c.b_hn)) for c in directions)
            for directions in layer.cells
        )
        layer = dataclasses.replace(layer, cells=cells)
    shape = (problem.batch, problem.seq_len)
    xs = jax.random.normal(k_x, (*shape, problem.features))
    targets = jax.random.normal(k_y, (*shape, problem.directions * problem.hidden))
    return layer, xs, targets


def _dtype_of(name: str) -> str:
    return "bfloat16" if "bf16" in name else "float16" if "fp16" in name else "float32"


def select(keys: Iterable[str] | None, cell: str) -> list[Impl]:
    keys = None if keys is None else set(keys)
    return [
        impl
        for impl in IMPLS
        if cell in impl.cells and (keys is None or impl.key in keys)
    ]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(
    problems: list[Problem],
    keys: Iterable[str] | None = None,
    *,
    repeats: int = 10,
    measures: Iterable[str] = MEASURES,
    progress: Callable[[str], None] = _say,
) -> list[dict]:
    """Time every selected implementation on every problem.

    For each problem: build every implementation from the same weights,
    compare its forward outputs with the jaxrnn reference (impl="scan"),
    compile (timed apart), call once to warm up, then time `repeats` rounds
    in which every implementation, in a rotating order, runs one untimed
    call and one timed call: the drift of a shared machine falls on all of
    them alike, and none is timed straight after another library's call
    (whose thread pools may still be spinning, and which evicted its data).

    Returns:
        One dict per (problem, implementation, measure): the environment, the
        problem, "impl", "measure", "status" ("ok", "skipped" or
        "mismatch"), and for "ok" min_ms, median_ms, compile_s, repeats,
        sequences_per_s, tokens_per_s, gflop_s, memory_bytes (XLA's
        temporaries, or torch's CUDA peak; None where not reported) and
        max_abs_err against the reference.
    """
    env = environment()
    # One id per run, so that a results file of many runs can be split.
    now = datetime.datetime.now().isoformat(timespec="seconds")
    env["run_id"] = f"{now}-{uuid.uuid4().hex[:8]}"
    measures = tuple(measures)
    lines = []
    for problem in problems:
        progress(f"== {problem.label()} ({problem.source})")
        layer, xs, targets = problem_data(problem)
        reference = np.asarray(
            _layer.apply_layer(layer, xs, impl="scan")[0], np.float64
        )
        base = {
            **env,
            "cell": problem.cell,
            "B": problem.batch,
            "T": problem.seq_len,
            "D": problem.features,
            "H": problem.hidden,
            "layers": problem.num_layers,
            "bidirectional": problem.bidirectional,
            "source": problem.source,
        }
        runners = {}
        for impl in select(keys, problem.cell):
            name = impl.name.format(cell=problem.cell.upper())
            dtype = _dtype_of(name)
            head = {**base, "impl": name, "column": impl.column, "dtype": dtype}
            why = impl.missing()
            if problem.stacked and not impl.stacks:
                why = "one layer, one direction only in the harness"
            if why:
                progress(f"   {name}: skipped ({why})")
                lines.append({**head, "status": "skipped", "reason": why})
                continue
            runner = impl.build(layer, xs, targets)
            compile_s = {
                m: runner.prepare(m) for m in measures if m in problem.measures
            }
            error = float(np.max(np.abs(runner.outputs() - reference), initial=0.0))
            if error > TOLERANCE[dtype]:
                progress(f"   {name}: max |ys - reference| = {error:.2e}: NOT TIMED")
                lines.append({**head, "status": "mismatch", "max_abs_err": error})
                continue
            runners[name] = (runner, head, error, compile_s)
        for measure in measures:
            if measure not in problem.measures or not runners:
                continue
            for runner, *_ in runners.values():
                runner(measure)  # warm-up, discarded
            times = {name: [] for name in runners}
            order = list(runners)
            for round_ in range(repeats):
                shift = round_ % len(order)
                for name in order[shift:] + order[:shift]:
                    # An untimed call first: it refills the caches and wakes
                    # the thread pools that the previous library left.
                    runners[name][0](measure)
                    start = time.perf_counter()
                    runners[name][0](measure)
                    times[name].append(time.perf_counter() - start)
            for name, (runner, head, error, compile_s) in runners.items():
                median = statistics.median(times[name])
                line = {
                    **head,
                    "measure": measure,
                    "status": "ok",
                    "min_ms": 1e3 * min(times[name]),
                    "median_ms": 1e3 * median,
                    "compile_s": compile_s[measure],
                    "repeats": repeats,
                    "sequences_per_s": problem.batch / median,
                    "tokens_per_s": problem.batch * problem.seq_len / median,
                    "gflop_s": problem.flops(measure) / median / 1e9,
                    "memory_bytes": runner.memory(measure),
                    "max_abs_err": error,
                }
                lines.append(line)
                progress(
                    f"   {measure:10s} {name:32s} median {line['median_ms']:9.2f} ms"
                    f"  min {line['min_ms']:9.2f} ms"
                    f"  compile {compile_s[measure]:5.2f} s"
                    f"  err {error:.1e}"
                )
    return lines
