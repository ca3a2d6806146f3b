"""Drift of reduced precision against float32 over a long sequence.

An LSTM layer (B=16, D=64, H=128, T=1000, default init, N(0, 1) inputs) runs
four ways: all float32 (the reference scan); all bfloat16 (params, carries,
inputs); and the mixed-precision policy `matmul_dtype=jnp.bfloat16` (float32
params, carries and gate arithmetic, bfloat16 matmul inputs accumulated in
float32), on the reference scan and on impl="auto" (the CPU kernels, by the
path `jaxrnn info` names). Reports |output - float32 output| at steps 1, 10,
100 and 1000, and the forward-pass time of each.

    python benchmarks/bench_precision.py [--save]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import _timing  # noqa: E402
import jaxrnn  # noqa: E402

BATCH, INPUT, HIDDEN, STEPS = 16, 64, 128, 1000
CHECKPOINTS = [1, 10, 100, 1000]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", default="lstm")
    parser.add_argument(
        "--save",
        action="store_true",
        help="append to benchmarks/results/<machine>/precision.jsonl",
    )
    args = parser.parse_args(argv)
    env = _timing.environment()
    params = jaxrnn.init_layer(jax.random.key(0), args.cell, INPUT, HIDDEN)
    xs = jax.random.normal(jax.random.key(1), (BATCH, STEPS, INPUT))
    cast = lambda tree, dtype: jax.tree.map(lambda a: a.astype(dtype), tree)
    runs = {
        "float32": (params, xs, {"impl": "scan"}),
        "bfloat16 everywhere": (
            cast(params, jnp.bfloat16),
            xs.astype(jnp.bfloat16),
            {"impl": "scan"},
        ),
        "matmul_dtype=bfloat16 (policy)": (
            params,
            xs,
            {"matmul_dtype": jnp.bfloat16, "impl": "scan"},
        ),
        "matmul_dtype=bfloat16, impl=auto": (
            params,
            xs,
            {"matmul_dtype": jnp.bfloat16, "impl": "auto"},
        ),
    }
    outputs, lines = {}, []
    for name, (p, x, kwargs) in runs.items():
        forward = jax.jit(
            lambda p, x, kwargs=kwargs: jaxrnn.apply_layer(p, x, **kwargs)[0]
        )
        timing = _timing.time_jitted(forward, p, x, repeats=5)
        outputs[name] = forward(p, x).astype(jnp.float32)
        error = jnp.abs(outputs[name] - outputs.get("float32", outputs[name]))
        line = {
            **env,
            "cell": args.cell,
            "B": BATCH,
            "D": INPUT,
            "H": HIDDEN,
            "T": STEPS,
            "run": name,
            **timing,
            **{
                f"max_abs_err_step_{t}": float(error[:, t - 1].max())
                for t in CHECKPOINTS
            },
            "mean_abs_err": float(error.mean()),
        }
        print(json.dumps(line), flush=True)
        lines.append(line)
    print(
        f"\n{env['machine']}, jax {env['jax']}, {env['date']}: {args.cell} B={BATCH}, "
        f"D={INPUT}, H={HIDDEN}, T={STEPS}; |h_t - h_t(float32)|\n"
    )
    steps = " | ".join(f"max, t={t}" for t in CHECKPOINTS)
    print(f"| run | {steps} | mean over all t | forward |")
    print("|---|" + "---|" * (len(CHECKPOINTS) + 2))
    for line in lines:
        values = " | ".join(f"{line[f'max_abs_err_step_{t}']:.2e}" for t in CHECKPOINTS)
        print(
            f"| {line['run']} | {values} | {line['mean_abs_err']:.2e} | "
            f"{line['median_ms']:.1f} ms |"
        )
    if args.save:
        _timing.save(lines, env, "precision.jsonl")


if __name__ == "__main__":
    main()
