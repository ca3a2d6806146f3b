"""The recurrent matmul of one step, h [B, H] @ W [H, 4H], on each GEMM
engine that the CPU kernels could use, at the CPU grid's per-step shapes.

    python benchmarks/bench_gemm_engines.py [--steps 400] [--save]

Each engine runs the matmul once per step for `steps` steps, as a
recurrence must (a step cannot start before the last one ends), on one
thread and on two:

- "jaxrnn microkernel": the kernels' own engine (jaxrnn/fast/csrc/gemm.h),
  threads persisting across the steps with one barrier per step;
- "OpenBLAS": numpy's `@`, OpenBLAS as shipped for NumPy and SciPy
  (scipy-openblas), one call per step, threads set by OPENBLAS_NUM_THREADS;
- "MKL (torch.mm)": torch.mm, which calls the MKL linked into the torch
  wheel, one call per step, threads by torch.set_num_threads;
- "XLA:CPU": `h @ W` inside a jitted `lax.fori_loop`, as the fused path
  runs it.

Prints GFLOP/s (2 * B * H * 4H per step, best of 5 runs) as a Markdown table;
--save writes it to benchmarks/results/<machine>/gemm_engines.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SHAPES = [(32, 128), (64, 256), (16, 512), (1, 64), (128, 64)]
GATES = 4


def _best(fn, runs=5):
    fn()
    return min(fn() for _ in range(runs))


def _numpy(steps: int) -> dict:
    """OpenBLAS timings, in this process (OPENBLAS_NUM_THREADS set by the caller)."""
    import numpy as np

    out = {}
    for batch, hidden in SHAPES:
        rng = np.random.default_rng(0)
        h = rng.standard_normal((batch, hidden), dtype=np.float32)
        w = rng.standard_normal((hidden, GATES * hidden), dtype=np.float32) * 0.01

        def run():
            x = h
            start = time.perf_counter()
            for _ in range(steps):
                x = (x @ w)[:, :hidden]
            return time.perf_counter() - start

        out[f"{batch}x{hidden}"] = _best(run)
    return out


def _openblas(steps: int, threads: int) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
    code = f"import json, sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); "
    code += f"import bench_gemm_engines as b; print(json.dumps(b._numpy({steps})))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def _torch(steps: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    out = {}
    for batch, hidden in SHAPES:
        h = torch.randn(batch, hidden)
        w = torch.randn(hidden, GATES * hidden) * 0.01

        def run():
            x = h
            start = time.perf_counter()
            for _ in range(steps):
                x = torch.mm(x, w)[:, :hidden]
            return time.perf_counter() - start

        out[f"{batch}x{hidden}"] = _best(run)
    return out


def _xla(steps: int) -> dict:
    import jax
    import jax.numpy as jnp

    out = {}
    for batch, hidden in SHAPES:
        h = jnp.ones((batch, hidden)) * 0.1
        w = jax.random.normal(jax.random.key(0), (hidden, GATES * hidden)) * 0.01
        loop = jax.jit(
            lambda h, w: jax.lax.fori_loop(
                0, steps, lambda _, x: (x @ w)[:, :hidden], h
            )
        )
        jax.block_until_ready(loop(h, w))

        def run():
            start = time.perf_counter()
            jax.block_until_ready(loop(h, w))
            return time.perf_counter() - start

        out[f"{batch}x{hidden}"] = _best(run)
    return out


def _ours(steps: int, threads: int) -> dict:
    from jaxrnn.fast import _cpu

    return {
        f"{b}x{h}": _best(lambda: _cpu.gemm_seconds(b, h, GATES, threads, steps))
        for b, h in SHAPES
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from jaxrnn.bench._timing import environment, results_dir
    from jaxrnn.fast import _cpu

    rows = {}
    for threads in (1, 2):
        rows[f"jaxrnn microkernel ({_cpu.status().engine}), {threads} thread"] = _ours(
            args.steps, threads
        )
        rows[f"OpenBLAS (numpy), {threads} thread"] = _openblas(args.steps, threads)
        rows[f"MKL (torch.mm), {threads} thread"] = _torch(args.steps, threads)
    rows["XLA:CPU (fori_loop), its default threads"] = _xla(args.steps)
    env = environment()
    lines = [
        f"Per-step recurrent matmul h [B, H] @ W [H, 4H], GFLOP/s (best of 5 runs of "
        f"{args.steps} steps): {env['machine']}, jax {env['jax']}, {env['date']}, "
        f"load {env.get('load_1min')}",
        "",
        "| engine | " + " | ".join(f"B={b}, H={h}" for b, h in SHAPES) + " |",
        "|---|" + "---|" * len(SHAPES),
    ]
    for name, times in rows.items():
        cells = [
            f"{2 * b * h * GATES * h * args.steps / times[f'{b}x{h}'] / 1e9:.0f}"
            for b, h in SHAPES
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    if args.save:
        path = results_dir(env) / "gemm_engines.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
        print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
