"""Memory and threads over a long run: no leaks on the compiled paths.

Two loops of many steps in one process, each sampled every `--every` steps:

    train    an LSTM layer's training step (impl="auto": the CPU kernels'
             forward and backward calls), B=16, T=50, D=H=64, SGD
    stream   `stream_layer` on one step of a GRU at a time (the kernels'
             forward call, jitted once), B=4, D=H=32

A sample is the process's resident memory (/proc/self/statm) and its thread
count (/proc/self/task). The growth is measured from the sample after the
warm-up (`--warmup` steps, by which the caches, pools and compiled programs
exist) to the last one.

    python benchmarks/bench_leaks.py [--steps 20000] [--save]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import _timing  # noqa: E402
import jaxrnn  # noqa: E402


def sample() -> tuple[float, int]:
    """(resident MiB, threads) of this process (Linux)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20, len(
        os.listdir("/proc/self/task")
    )


def _train_loop():
    params = jaxrnn.init_layer(jax.random.key(0), "lstm", 64, 64)
    xs = jax.random.normal(jax.random.key(1), (16, 50, 64))
    target = jax.random.normal(jax.random.key(2), (16, 50, 64))

    @jax.jit
    def step(p):
        def loss(p):
            return jnp.mean((jaxrnn.apply_layer(p, xs)[0] - target) ** 2)

        value, grads = jax.value_and_grad(loss)(p)
        return jax.tree.map(lambda a, g: a - 1e-3 * g, p, grads), value

    state = {"p": params}

    def one():
        state["p"], value = step(state["p"])
        value.block_until_ready()

    return one


def _stream_loop():
    layer = jaxrnn.init_layer(jax.random.key(0), "gru", 32, 32)
    x = jax.random.normal(jax.random.key(1), (4, 32))
    step = jax.jit(lambda s, x: jaxrnn.stream_layer(layer, s, x))
    state = {"s": jaxrnn.init_state(layer, 4)}

    def one():
        ys, state["s"] = step(state["s"], x)
        ys.block_until_ready()

    return one


LOOPS = {"train": _train_loop, "stream": _stream_loop}


def run(loop: str, steps: int, every: int, warmup: int) -> dict:
    """Run `steps` steps of a loop; the samples and the growth after warm-up."""
    one = LOOPS[loop]()
    samples = []
    for i in range(steps + 1):
        if i % every == 0 or i == warmup:
            rss, threads = sample()
            samples.append({"step": i, "rss_mib": round(rss, 2), "threads": threads})
        if i < steps:
            one()
    base = next(s for s in samples if s["step"] >= warmup)
    last = samples[-1]
    return {
        "loop": loop,
        "steps": steps,
        "warmup": warmup,
        "rss_growth": last["rss_mib"] / base["rss_mib"] - 1,
        "threads": sorted({s["threads"] for s in samples if s["step"] >= warmup}),
        "samples": samples,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--loops", default="train,stream")
    parser.add_argument(
        "--save", action="store_true", help="append to results/<machine>/leaks.jsonl"
    )
    args = parser.parse_args(argv)
    env = _timing.environment()
    lines = []
    for loop in args.loops.split(","):
        result = run(loop, args.steps, args.every, args.warmup)
        line = {**env, **result}
        print(json.dumps(line), flush=True)
        lines.append(line)
    print(f"\n{env['machine']}, jax {env['jax']}, {env['date']}\n")
    print("| loop | steps | RSS after warm-up | RSS at the end | growth | threads |")
    print("|---|---|---|---|---|---|")
    for line in lines:
        base = next(s for s in line["samples"] if s["step"] >= line["warmup"])
        end, growth = line["samples"][-1]["rss_mib"], 100 * line["rss_growth"]
        print(
            f"| {line['loop']} | {line['steps']} | {base['rss_mib']:.1f} MiB | "
            f"{end:.1f} MiB | {growth:+.2f}% "
            f"| {', '.join(map(str, line['threads']))} |"
        )
    if args.save:
        _timing.save(lines, env, "leaks.jsonl")


if __name__ == "__main__":
    main()
