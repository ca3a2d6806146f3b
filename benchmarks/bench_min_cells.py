"""The minimal cells against the GRU and the LSTM: training step, forward
pass and memory.

One layer, D = H, float32, over the grid T in {100, 512, 4096, 65536} x
H in {64, 256} x B in {1, 16}:

    min_gru, min_lstm    impl "linear_scan" (what "auto" runs on a CPU),
                         "assoc" and "assoc_log" (activation "positive", so
                         that every form runs)
    gru, lstm            impl "auto" (the compiled CPU kernels on a CPU)

Each is timed as the forward pass (the outputs) and the training step (the
value and gradient, with respect to the params, of the sum of squared
outputs): the median of `--repeats` calls after a compile-and-warm call
(one call where the warm call took over 2 s). Memory is XLA's temporary
allocation of the compiled training step (`memory_analysis()`), beside the
arguments and outputs; a run whose compiled step needs more than
MAX_TEMP_BYTES is not run, and the line says so.

`--paper` runs the paper's lengths on whatever device is there (the stage
of benchmarks/gpu_session.sh): B = 64, H = 256, T in {512, 4096}.

`--long` measures the segmented form at T = 1,000,000 (min_gru, B = 1,
H = 64): the training step's time and memory with checkpoint=None and with
segments of sqrt(T) = 1000 steps, for "assoc" and "linear_scan".

    python benchmarks/bench_min_cells.py [--smoke] [--paper] [--long] [--save]
                                         [--rows CELL:IMPL,...] [--repeats N]
                                         [--results DIR]
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import _timing  # noqa: E402
import jaxrnn  # noqa: E402

LENGTHS = [100, 512, 4096, 65536]
HIDDEN = [64, 256]
BATCH = [1, 16]
ROWS = [
    ("min_gru", "linear_scan"),
    ("min_gru", "assoc"),
    ("min_gru", "assoc_log"),
    ("min_lstm", "linear_scan"),
    ("min_lstm", "assoc"),
    ("gru", "auto"),
    ("lstm", "auto"),
]
MAX_TEMP_BYTES = 12 * 2**30


def _functions(impl, checkpoint=None):
    def outputs(params, xs):
        return jaxrnn.apply_layer(params, xs, impl=impl, checkpoint=checkpoint)[0]

    def loss(params, xs):
        return jnp.sum(outputs(params, xs) ** 2)

    return jax.jit(outputs), jax.jit(jax.value_and_grad(loss))


def _params(cell, size):
    activation = {"activation": "positive"} if cell.startswith("min_") else {}
    return jaxrnn.init_layer(jax.random.key(0), cell, size, size, **activation)


def measure(cell, impl, seq_len, size, batch, repeats, checkpoint=None):
    """One line: times, the impl that ran, and the training step's memory."""
    params = _params(cell, size)
    xs = jax.random.normal(jax.random.key(1), (batch, seq_len, size))
    forward, train = _functions(impl, checkpoint)
    row = dict(cell=cell, impl=impl, T=seq_len, H=size, B=batch)
    if checkpoint is not None:
        row["checkpoint"] = checkpoint
    row["ran"] = jaxrnn.layer.choose(impl, cell, params.activation)
    memory = train.lower(params, xs).compile().memory_analysis()
    row["train_temp_mib"] = memory.temp_size_in_bytes / 2**20
    row["train_args_out_mib"] = (
        memory.argument_size_in_bytes + memory.output_size_in_bytes
    ) / 2**20
    if memory.temp_size_in_bytes > MAX_TEMP_BYTES:
        row["skipped"] = f"needs {row['train_temp_mib'] / 1024:.1f} GiB of temporaries"
        return row
    row["forward_ms"] = _timing.median_ms(forward, params, xs, repeats=repeats)
    row["train_ms"] = _timing.median_ms(train, params, xs, repeats=repeats)
    return row


def grid(lengths, hidden, batch, repeats, rows=ROWS):
    lines = []
    for seq_len in lengths:
        for size in hidden:
            for b in batch:
                rows_here = [measure(c, i, seq_len, size, b, repeats) for c, i in rows]
                base = {r["cell"]: r for r in rows_here if r["impl"] == "auto"}
                for row in rows_here:
                    peer = base.get("gru" if row["cell"] == "min_gru" else "lstm", {})
                    for what in ("train", "forward"):
                        if f"{what}_ms" in row and f"{what}_ms" in peer:
                            row[f"{what}_speedup"] = (
                                peer[f"{what}_ms"] / row[f"{what}_ms"]
                            )
                    print(_line(row), flush=True)
                lines.extend(rows_here)
    return lines


def long(seq_len, repeats):
    lines = []
    for impl in ("assoc", "linear_scan"):
        for checkpoint in (None, "sqrt"):
            row = measure("min_gru", impl, seq_len, 64, 1, repeats, checkpoint)
            print(_line(row), flush=True)
            lines.append(row)
    return lines


def _line(row):
    parts = [f"{row['cell']:>8} {row['impl']:>11} ({row['ran']})"]
    parts.append(f"T={row['T']:>7} H={row['H']:>3} B={row['B']:>2}")
    if "checkpoint" in row:
        parts.append(f"checkpoint={row['checkpoint']}")
    for key in ("train_ms", "forward_ms", "train_speedup", "forward_speedup"):
        if key in row:
            parts.append(f"{key}={row[key]:.2f}")
    parts.append(f"temp={row['train_temp_mib']:.1f}MiB")
    if "skipped" in row:
        parts.append(f"skipped: {row['skipped']}")
    return " ".join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for tests")
    parser.add_argument("--long", action="store_true", help="T = 1,000,000 only")
    parser.add_argument("--paper", action="store_true", help="the paper's lengths")
    parser.add_argument(
        "--rows",
        help="cell:impl pairs to run, comma-separated (default: all of ROWS)",
    )
    parser.add_argument("--save", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--results", type=pathlib.Path, default=_timing.RESULTS)
    args = parser.parse_args(argv)
    rows = ROWS
    if args.rows:
        rows = [tuple(pair.split(":")) for pair in args.rows.split(",")]
        unknown = sorted(set(rows) - set(ROWS))
        if unknown:
            parser.error(f"--rows takes pairs of {ROWS}, got {unknown}")
    env = _timing.environment()
    print(env)
    if args.smoke:
        lines = grid([20], [4], [1, 2], 1, rows) + long(50, repeats=1)
    elif args.paper:
        lines = grid([512, 4096], [256], [64], args.repeats, rows)
    elif args.long:
        lines = long(1_000_000, args.repeats)
    else:
        lines = grid(LENGTHS, HIDDEN, BATCH, args.repeats, rows)
    if args.save:
        keep = ("date", "jax", "jaxlib", "python", "cpu_count", "load_1min", "machine")
        stamped = [dict(row, **{k: env[k] for k in keep if k in env}) for row in lines]
        path = _timing._save(stamped, env, "min_cells.jsonl", args.results)
        print("saved", path)
    return lines


if __name__ == "__main__":
    main()
