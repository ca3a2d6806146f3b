"""Memory of one training step at T = 1k, 10k and 100k, for each `checkpoint=`.

An LSTM layer (B=16, D=64, H=256, fp32) and one full training step: forward,
loss, BPTT, clip + Adam. Two losses:

* many-to-one: `return_sequences=False`, MSE on the final h. Nothing of size
  T is kept but the input, so checkpointing bounds the memory of BPTT.
* many-to-many: MSE on the outputs of every step. The outputs [B, T, H] and
  their cotangent are O(T) by nature; checkpointing removes the rest.

Memory is XLA's own accounting of the compiled step (`memory_analysis()`:
temporaries, plus arguments and outputs); time is the median of a few runs.
Runs that would not fit in this machine's memory are compiled and measured,
not run. Afterwards the process's peak resident memory is reported.

    python benchmarks/bench_memory.py [--smoke] [--save]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import _timing  # noqa: E402
import jaxrnn  # noqa: E402
from jaxrnn import train  # noqa: E402

BATCH, INPUT, HIDDEN = 16, 64, 256
LENGTHS = [1_000, 10_000, 100_000]
CHOICES = [None, "step", "sqrt"]
LOSSES = ["many-to-one", "many-to-many"]
RUN_BUDGET_BYTES = 12 * 2**30  # run a step only when XLA says it needs less
SMOKE_LENGTHS = [1_000]


def measure(seq_len, checkpoint, loss_kind, repeats, run):
    params = jaxrnn.init_layer(jax.random.key(0), "lstm", INPUT, HIDDEN)
    xs = jax.random.normal(jax.random.key(1), (BATCH, seq_len, INPUT))
    many = loss_kind == "many-to-many"
    targets = jnp.zeros((BATCH, seq_len, HIDDEN) if many else (BATCH, HIDDEN))

    def loss_fn(params, xs, targets):
        # The reference path throughout: checkpointing is one of its options,
        # and "none" is measured on the same machinery as "step" and "sqrt".
        ys, _ = jaxrnn.apply_layer(
            params, xs, checkpoint=checkpoint, return_sequences=many, impl="scan"
        )
        return train.mse_loss(ys, targets)

    optimizer = train.make_optimizer(1e-3, max_norm=1.0)
    step = jax.jit(train.make_train_step(optimizer, loss_fn))
    state = optimizer.init(params)
    args = (params, state, xs, targets)
    start = time.perf_counter()
    compiled = step.lower(*args).compile()
    compile_s = time.perf_counter() - start
    memory = compiled.memory_analysis()
    total = (
        memory.temp_size_in_bytes
        + memory.argument_size_in_bytes
        + memory.output_size_in_bytes
    )
    result = {
        "temp_bytes": memory.temp_size_in_bytes,
        "total_bytes": total,
        "ran": False,
    }
    if run and total < RUN_BUDGET_BYTES:
        result.update(_timing.time_jitted(step, *args, repeats=repeats), ran=True)
    result["compile_s"] = compile_s  # time_jitted's own compile hits the cache
    return result


def table(lines):
    first = lines[0]
    out = [
        f"{first['machine']}, jax {first['jax']}, {first['date']}: LSTM B={BATCH}, "
        f"D={INPUT}, H={HIDDEN}, fp32, one training step",
        "",
        "| loss | T | checkpoint | XLA temp | XLA total | none / this | step time |",
        "|---|---|---|---|---|---|---|",
    ]
    by = {(r["loss"], r["T"], r["checkpoint"]): r for r in lines}
    for (loss, t, choice), r in by.items():
        none = by[(loss, t, "none")]
        time = f"{r['median_ms'] / 1e3:.2f} s" if r["ran"] else "not run"
        out.append(
            f"| {loss} | {t:,} | {choice} | {r['temp_bytes'] / 2**20:,.1f} MiB | "
            f"{r['total_bytes'] / 2**20:,.1f} MiB | "
            f"{none['total_bytes'] / r['total_bytes']:.1f}x | {time} |"
        )
    return "\n".join(out)


def report(path):
    """The table, from a saved memory.jsonl."""
    return table([json.loads(line) for line in open(path)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="T = 1k only")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--save",
        action="store_true",
        help="append to benchmarks/results/<machine>/memory.jsonl",
    )
    args = parser.parse_args(argv)
    env = _timing.environment()
    lines = []
    for loss_kind in LOSSES:
        for seq_len in SMOKE_LENGTHS if args.smoke else LENGTHS:
            for checkpoint in CHOICES:
                # The longest sequence is run once, for the checkpointed choice
                # that the target names; the rest of T = 100k is compiled only.
                run = seq_len < 100_000 or checkpoint == "sqrt"
                repeats = 1 if seq_len >= 100_000 else args.repeats
                result = measure(seq_len, checkpoint, loss_kind, repeats, run)
                line = {
                    **env,
                    "cell": "lstm",
                    "B": BATCH,
                    "D": INPUT,
                    "H": HIDDEN,
                    "T": seq_len,
                    "dtype": "float32",
                    "loss": loss_kind,
                    "checkpoint": "none" if checkpoint is None else str(checkpoint),
                    **result,
                }
                print(json.dumps(line), flush=True)
                lines.append(line)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(table(lines))
    print(f"\npeak resident memory of the whole run: {peak:.2f} GiB")
    for line in lines:
        line["process_peak_rss_gib"] = peak
    if args.save:
        _timing.save(lines, env, "memory.jsonl")


if __name__ == "__main__":
    main()
