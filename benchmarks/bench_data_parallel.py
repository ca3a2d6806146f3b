"""Data-parallel scaling of one training step over 1, 2, 4 and 8 devices.

`train.make_data_parallel` splits the batch over a 1-D mesh; each device
runs its rows (the CPU kernels and the fused path split their passes by
the batch: `jaxrnn/fast/_shard.py`) and XLA all-reduces the gradients.
With no accelerator, the CPU is split into 8 host devices
(`--xla_force_host_platform_device_count=8`, set here before jax starts):
those share the machine's cores, and each device's kernel call takes its
share of them, so the scaling measured on a 2-core CPU is bounded by 2 and
is a test of the machinery, not of hardware. On a machine with several GPUs
the same script uses them.

Every (impl, devices) pair is timed in the same rounds, in rotating order,
an untimed call before each timed one; the HLO of each is searched for
all-gathers (there must be none: nothing of the batch is gathered).

    python benchmarks/bench_data_parallel.py [--save] [--repeats 10]
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import _timing  # noqa: E402
import jaxrnn  # noqa: E402
from jaxrnn import train  # noqa: E402

BATCH, STEPS, INPUT, HIDDEN = 64, 100, 64, 128


IMPLS = ("auto", "fused", "scan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--save",
        action="store_true",
        help="append to benchmarks/results/<machine>/data_parallel.jsonl",
    )
    args = parser.parse_args(argv)
    env = _timing.environment()
    params = jaxrnn.init_layer(jax.random.key(0), "lstm", INPUT, HIDDEN)
    xs = jax.random.normal(jax.random.key(1), (BATCH, STEPS, INPUT))
    targets = jax.random.normal(jax.random.key(2), (BATCH, STEPS, HIDDEN))
    optimizer = train.make_optimizer(1e-3)
    state = optimizer.init(params)
    counts = [n for n in (1, 2, 4, 8) if n <= jax.device_count()]
    runs, info = {}, {}
    for impl in IMPLS:

        def loss_fn(params, xs, targets, impl=impl):
            ys = jaxrnn.apply_layer(params, xs, impl=impl)[0]
            return train.mse_loss(ys, targets)

        step = train.make_train_step(optimizer, loss_fn)
        reference = None
        for count in counts:
            mesh = jax.sharding.Mesh(jax.devices()[:count], ("batch",))
            parallel = train.make_data_parallel(step, mesh=mesh)
            out = jax.block_until_ready(parallel(params, state, xs, targets))
            leaves = [np.asarray(a) for a in jax.tree.leaves(out[0])]
            reference = leaves if reference is None else reference
            error = max(float(abs(a - b).max()) for a, b in zip(leaves, reference))
            sharded = jax.device_put(
                (xs, targets),
                jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch")),
            )
            hlo = jax.jit(step).lower(params, state, *sharded).compile().as_text()
            info[impl, count] = {
                "max_abs_diff_vs_1_device": error,
                "all_gathers": hlo.count("all-gather("),
            }
            runs[impl, count] = lambda p=parallel: jax.block_until_ready(
                p(params, state, xs, targets)
            )
    times = {key: [] for key in runs}
    keys = list(runs)
    for r in range(args.repeats):
        for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
            runs[key]()  # untimed
            start = time.perf_counter()
            runs[key]()
            times[key].append(time.perf_counter() - start)
    lines = []
    for (impl, count), values in times.items():
        line = {
            **env,
            "impl": impl,
            "devices": count,
            "device_kind": jax.devices()[0].device_kind,
            "cell": "lstm",
            "B": BATCH,
            "T": STEPS,
            "D": INPUT,
            "H": HIDDEN,
            "median_ms": 1e3 * statistics.median(values),
            "min_ms": 1e3 * min(values),
            "repeats": args.repeats,
            **info[impl, count],
        }
        print(json.dumps(line), flush=True)
        lines.append(line)
    print(
        f"\n{env['machine']}, jax {env['jax']}, {env['date']}: LSTM B={BATCH} "
        f"(global), T={STEPS}, D={INPUT}, H={HIDDEN}, one training step, median "
        f"of {args.repeats} rounds\n"
    )
    print(
        "| impl | devices | step | vs 1 device | all-gathers | max diff vs 1 device |"
    )
    print("|---|---|---|---|---|---|")
    for line in lines:
        base = next(
            x["median_ms"]
            for x in lines
            if x["impl"] == line["impl"] and x["devices"] == 1
        )
        print(
            f"| {line['impl']} | {line['devices']} | {line['median_ms']:.1f} ms | "
            f"{line['median_ms'] / base:.2f}x | {line['all_gathers']} | "
            f"{line['max_abs_diff_vs_1_device']:.1e} |"
        )
    if args.save:
        _timing.save(lines, env, "data_parallel.jsonl")


if __name__ == "__main__":
    main()
