"""The parallel solve against the sequential scan and the fused path.

A GRU layer (D = H, float32) over the grid T in {1k, 10k, 100k} x H in
{1, 4, 16, 64} x B in {1, 16}, forward pass and training step (value and
gradient of the sum of squared outputs), for apply_layer's impl "parallel"
(Newton, dense Jacobians), "scan" (the reference) and "fused" (and "cpu",
the compiled kernels, where they built). For each parallel run: the Newton
iterations (the most over the batch) and XLA's temporary memory of the
compiled step (`memory_analysis()`).

Dense Newton stores B T H^2 Jacobian entries per iteration and its solve
does about B T H^3 multiply-adds; a run past MAX_JACOBIAN_BYTES or MAX_WORK
is skipped and said to be. Times are the median of `--repeats` calls after a
compile-and-warm call (one call where the warm call took over 2 s).

Then the iterations against the largest Lyapunov exponent: tanh RNNs
(H = 16, T = 1000) whose W_hh is a Gaussian of gain g, from contractive to
chaotic, and the LSTM and GRU as initialised, for the three methods.

    python benchmarks/bench_parallel.py [--smoke] [--demo] [--save] [--repeats N]
                                        [--results DIR]

`--demo` runs only the published DEER demonstration's setting (a GRU at
B = 16, T = 10,000; 68x over sequential on a V100), at H in {1, 8, 16, 32}:
the stage of benchmarks/gpu_session.sh.
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import _timing  # noqa: E402
import jaxrnn  # noqa: E402
from jaxrnn import diagnostics  # noqa: E402

LENGTHS = [1_000, 10_000, 100_000]
HIDDEN = [1, 4, 16, 64]
BATCH = [1, 16]
MAX_JACOBIAN_BYTES = 2 * 2**30
MAX_WORK = 1e10  # B T H^3: one dense solve's multiply-adds, about
GAINS = [0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0]


def _impls():
    impls = ["parallel", "scan", "fused"]
    try:  # the compiled CPU kernels, where they built
        impls.append(jaxrnn.layer.choose("cpu", "gru"))
    except ValueError:
        pass
    return impls


def crossover(lengths, hidden, batch, repeats):
    lines = []
    for seq_len in lengths:
        for size in hidden:
            for b in batch:
                params = jaxrnn.init_layer(jax.random.key(0), "gru", size, size)
                xs = jax.random.normal(jax.random.key(1), (b, seq_len, size))
                row = dict(cell="gru", T=seq_len, H=size, B=b)
                jacobian_bytes = 4 * b * seq_len * size * size
                for impl in _impls():
                    work = b * seq_len * size**3
                    if impl == "parallel" and (
                        jacobian_bytes > MAX_JACOBIAN_BYTES or work > MAX_WORK
                    ):
                        row["parallel_skipped"] = (
                            f"Jacobians {jacobian_bytes / 2**30:.1f} GiB, "
                            f"{work:.1e} multiply-adds per solve"
                        )
                        continue
                    forward = jax.jit(
                        lambda p, x, impl=impl: jaxrnn.apply_layer(p, x, impl=impl)[0]
                    )
                    loss = lambda p, x, impl=impl: (  # noqa: E731
                        jaxrnn.apply_layer(p, x, impl=impl)[0] ** 2
                    ).sum()
                    train = jax.jit(jax.value_and_grad(loss))
                    row[f"{impl}_forward_ms"] = _timing.median_ms(
                        forward, params, xs, repeats=repeats
                    )
                    row[f"{impl}_train_ms"] = _timing.median_ms(
                        train, params, xs, repeats=repeats
                    )
                    if impl == "parallel":
                        compiled = train.lower(params, xs).compile()
                        memory = compiled.memory_analysis()
                        row["parallel_train_temp_mib"] = (
                            memory.temp_size_in_bytes / 2**20
                        )
                        row["iterations"] = _iterations(params, xs)
                for measure in ("forward", "train"):
                    if f"parallel_{measure}_ms" in row:
                        row[f"parallel/scan_{measure}"] = (
                            row[f"parallel_{measure}_ms"] / row[f"scan_{measure}_ms"]
                        )
                print(_line(row), flush=True)
                lines.append(row)
    return lines


def _iterations(params, xs):
    cell = params.cells[0][0]
    size = xs.shape[-1]
    solve = jax.jit(
        jax.vmap(
            lambda x: (
                jaxrnn.parallel_unroll(
                    jaxrnn.gru_step, cell, jnp.zeros(size), x, fallback=False
                )[2].iterations
            )
        )
    )
    return int(solve(xs).max())


def _line(row):
    parts = [f"T={row['T']:>6} H={row['H']:>2} B={row['B']:>2}"]
    for key, value in row.items():
        if key.endswith("_ms") or key.startswith("parallel/"):
            parts.append(f"{key}={value:.2f}")
    for key in ("iterations", "parallel_train_temp_mib", "parallel_skipped"):
        if key in row:
            parts.append(f"{key}={row[key]}")
    return " ".join(parts)


def iterations_against_lle(seq_len, size):
    lines = []
    xs = 0.5 * jax.random.normal(jax.random.key(1), (seq_len, size))
    base = jaxrnn.init_rnn(jax.random.key(0), size, size)
    normal = jax.random.normal(jax.random.key(2), (size, size)) / size**0.5
    cases = [
        (f"rnn g={g}", jaxrnn.rnn_step, base._replace(w_hh=g * normal), jnp.zeros(size))
        for g in GAINS
    ]
    cases.append(
        (
            "lstm",
            jaxrnn.lstm_step,
            jaxrnn.init_lstm(jax.random.key(0), size, size),
            jaxrnn.init_lstm_carry(size),
        )
    )
    cases.append(
        (
            "gru",
            jaxrnn.gru_step,
            jaxrnn.init_gru(jax.random.key(0), size, size),
            jnp.zeros(size),
        )
    )
    for name, step, params, carry in cases:
        row = dict(case=name, T=seq_len, H=size)
        row["lle"] = float(diagnostics.lyapunov_exponent(step, params, carry, xs))
        for method in jaxrnn.parallel.METHODS:
            solve = jax.jit(
                functools.partial(
                    jaxrnn.parallel_unroll, step, method=method, max_iters=seq_len + 1
                )
            )
            _, ys, info = solve(params, carry, xs)
            row[f"{method}_iterations"] = int(info.iterations)
            row[f"{method}_converged"] = bool(info.converged)
        print(
            f"{name:>10} lle={row['lle']:+.3f} "
            + " ".join(_count(row, m) for m in jaxrnn.parallel.METHODS),
            flush=True,
        )
        lines.append(row)
    return lines


def _count(row, method):
    late = "" if row[f"{method}_converged"] else " (not converged)"
    return f"{method}={row[f'{method}_iterations']}{late}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for tests")
    parser.add_argument("--save", action="store_true")
    parser.add_argument("--demo", action="store_true", help="the DEER demo's sizes")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--results", type=pathlib.Path, default=_timing.RESULTS)
    args = parser.parse_args(argv)
    env = _timing.environment()
    print(env)
    if args.smoke:
        grid = crossover([100], [1, 4], [1, 2], repeats=1)
        lle = iterations_against_lle(50, 4)
    elif args.demo:
        grid = crossover([10_000], [1, 8, 16, 32], [16], repeats=args.repeats)
        lle = []
    else:
        grid = crossover(LENGTHS, HIDDEN, BATCH, repeats=args.repeats)
        lle = iterations_against_lle(1000, 16)
    if args.save:
        path = _timing._save(
            [dict(kind="crossover", **r) for r in grid]
            + [dict(kind="iterations", **r) for r in lle],
            env,
            "parallel.jsonl",
            args.results,
        )
        print("saved", path)


if __name__ == "__main__":
    main()
