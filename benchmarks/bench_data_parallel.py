"""Data-parallel scaling of one training step over 1, 2, 4 and 8 devices.

`train.make_data_parallel` splits the batch over a 1-D mesh; XLA all-reduces
the gradients. With no accelerator, the CPU is split into 8 host devices
(`--xla_force_host_platform_device_count=8`, set here before jax starts):
those share the machine's cores, so the scaling measured on a 2-core CPU is
bounded by 2 and is a test of the machinery, not of hardware. On a machine
with several GPUs the same script uses them.

    python benchmarks/bench_data_parallel.py [--save]
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402

import jax  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import _timing  # noqa: E402
import jaxrnn  # noqa: E402
from jaxrnn import train  # noqa: E402

BATCH, STEPS, INPUT, HIDDEN = 64, 100, 64, 128


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
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

    def loss_fn(params, xs, targets):
        return train.mse_loss(jaxrnn.apply_layer(params, xs)[0], targets)

    optimizer = train.make_optimizer(1e-3)
    step = train.make_train_step(optimizer, loss_fn)
    state = optimizer.init(params)
    lines, reference = [], None
    counts = [n for n in (1, 2, 4, 8) if n <= jax.device_count()]
    for count in counts:
        mesh = jax.sharding.Mesh(jax.devices()[:count], ("batch",))
        parallel = train.make_data_parallel(step, mesh=mesh)
        out = parallel(params, state, xs, targets)  # compile and warm up
        jax.block_until_ready(out)
        leaves = [jax.device_get(a) for a in jax.tree.leaves(out[0])]
        if reference is None:
            reference = leaves
        error = max(float(abs(a - b).max()) for a, b in zip(leaves, reference))
        timing = _timing.time_python(
            lambda: jax.block_until_ready(parallel(params, state, xs, targets)),
            args.repeats,
        )
        line = {
            **env,
            "devices": count,
            "device_kind": jax.devices()[0].device_kind,
            "cell": "lstm",
            "B": BATCH,
            "T": STEPS,
            "D": INPUT,
            "H": HIDDEN,
            **timing,
            "max_abs_diff_vs_1_device": error,
        }
        print(json.dumps(line), flush=True)
        lines.append(line)
    base = lines[0]["median_ms"]
    print(
        f"\n{env['machine']}, jax {env['jax']}, {env['date']}: LSTM B={BATCH} "
        f"(global), T={STEPS}, D={INPUT}, H={HIDDEN}, one training step\n"
    )
    print("| devices | step (median) | speed-up | max diff vs 1 device |")
    print("|---|---|---|---|")
    for line in lines:
        diff = line["max_abs_diff_vs_1_device"]
        print(
            f"| {line['devices']} | {line['median_ms']:.1f} ms | "
            f"{base / line['median_ms']:.2f}x | {diff:.1e} |"
        )
    if args.save:
        _timing.save(lines, env, "data_parallel.jsonl")


if __name__ == "__main__":
    main()
