"""The mixed-precision policy (matmul_dtype=bfloat16) against float32, and
against PyTorch's bfloat16 autocast, on a CPU.

For each cell and size, one training step (forward, MSE against a fixed
target, gradients of the params, SGD) and one forward pass, timed in
interleaved rounds in one process:

    jaxrnn float32       impl="auto" (the CPU kernels), float32
    jaxrnn bf16          impl="auto" with matmul_dtype=jnp.bfloat16: the
                         kernels, by what `jaxrnn info` says they run
    jaxrnn bf16 round    the kernels' float32 products of rounded operands
                         (JAXRNN_CPU_BF16=round)
    jaxrnn bf16 native   the kernels' bfloat16 products (AVX512-BF16,
                         JAXRNN_CPU_BF16=native), where the build has them
    jaxrnn bf16 scan     impl="scan" with matmul_dtype=jnp.bfloat16 (the
                         reference's policy)
    torch float32        torch.nn.{LSTM,GRU,RNN}
    torch bf16           the same under torch.autocast("cpu", bfloat16)

    python benchmarks/bench_bf16.py [--save] [--repeats N] [--cells lstm,gru]

Reports median ms and the ratios bf16 / float32 (jaxrnn's own) and jaxrnn
bf16 / torch bf16.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import statistics
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import _timing  # noqa: E402
import jaxrnn  # noqa: E402
from jaxrnn.fast import _cpu  # noqa: E402

# (cell, B, T, H), D = H.
SIZES = [
    ("lstm", 32, 100, 128),
    ("lstm", 64, 100, 256),
    ("lstm", 24, 100, 384),
    ("lstm", 16, 200, 512),
    ("gru", 32, 100, 128),
    ("gru", 64, 100, 256),
    ("gru", 16, 200, 512),
    ("rnn", 32, 100, 256),
    ("rnn", 32, 100, 512),
]


def _jax_fns(cell, batch, steps, hidden, impl, policy, path=""):
    params = jaxrnn.init_layer(jax.random.key(0), cell, hidden, hidden)
    xs = jax.random.normal(jax.random.key(1), (batch, steps, hidden))
    target = jax.random.normal(jax.random.key(2), (batch, steps, hidden))

    def loss(p):
        ys, _ = jaxrnn.apply_layer(p, xs, impl=impl, matmul_dtype=policy)
        return jnp.mean((ys - target) ** 2)

    @jax.jit
    def train(p):
        value, grads = jax.value_and_grad(loss)(p)
        return jax.tree.map(lambda a, g: a - 0.01 * g, p, grads), value

    forward = jax.jit(
        lambda p: jaxrnn.apply_layer(p, xs, impl=impl, matmul_dtype=policy)[0]
    )
    state = {"p": params}

    def step():
        state["p"], value = train(state["p"])
        value.block_until_ready()

    def infer():
        forward(params).block_until_ready()

    # Traced (and the kernels' path read) now, under $JAXRNN_CPU_BF16 = path.
    before = os.environ.get("JAXRNN_CPU_BF16", "")
    os.environ["JAXRNN_CPU_BF16"] = path
    try:
        step()
        infer()
    finally:
        os.environ["JAXRNN_CPU_BF16"] = before
    return step, infer


def _torch_fns(cell, batch, steps, hidden, dtype):
    import torch

    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
    net = module(hidden, hidden, batch_first=True)
    xs = torch.randn(batch, steps, hidden)
    target = torch.randn(batch, steps, hidden)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    auto = dtype == "bfloat16"

    def step():
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=auto):
            ys, _ = net(xs)
        loss = torch.mean((ys.float() - target) ** 2)
        loss.backward()
        opt.step()

    def forward():
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=auto):
            net(xs)

    return step, forward


def _runs(cell, batch, steps, hidden, with_torch):
    runs = {
        "jaxrnn float32": _jax_fns(cell, batch, steps, hidden, "auto", None),
        "jaxrnn bf16": _jax_fns(cell, batch, steps, hidden, "auto", jnp.bfloat16),
        "jaxrnn bf16 round": _jax_fns(
            cell, batch, steps, hidden, "cpu", jnp.bfloat16, "round"
        ),
        "jaxrnn bf16 scan": _jax_fns(cell, batch, steps, hidden, "scan", jnp.bfloat16),
    }
    if _cpu.status().bf16:
        runs["jaxrnn bf16 native"] = _jax_fns(
            cell, batch, steps, hidden, "cpu", jnp.bfloat16, "native"
        )
    if with_torch:
        runs["torch float32"] = _torch_fns(cell, batch, steps, hidden, "float32")
        runs["torch bf16"] = _torch_fns(cell, batch, steps, hidden, "bfloat16")
    return runs


def _time(fns, repeats, seed=0):
    """Median ms of each function, in interleaved rounds after a warm-up,
    as the harness times (`jaxrnn.bench`): each round in a new order, and
    each timed call after an untimed one of the same function, so that none
    is timed straight after another's call (whose thread pools may still be
    spinning, and which evicted its data)."""
    for fn in fns.values():
        fn()
        fn()
    times = {name: [] for name in fns}
    order = random.Random(seed)
    for _ in range(repeats):
        names = list(fns)
        order.shuffle(names)
        for name in names:
            fn = fns[name]
            fn()
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--cells", default="lstm,gru,rnn")
    parser.add_argument(
        "--save", action="store_true", help="append to results/<machine>/bf16.jsonl"
    )
    args = parser.parse_args(argv)
    env = _timing.environment()
    try:
        import torch

        torch.set_num_threads(_cpu.threads())
        with_torch = True
    except ImportError:
        with_torch = False
    env["kernels"] = _cpu.status().describe().rsplit(":", 1)[0]
    cells = args.cells.split(",")
    lines = []
    for cell, batch, steps, hidden in SIZES:
        if cell not in cells:
            continue
        runs = _runs(cell, batch, steps, hidden, with_torch)
        for measure, index in (("train_step", 0), ("forward", 1)):
            medians = _time({n: f[index] for n, f in runs.items()}, args.repeats)
            line = {
                **env,
                "cell": cell,
                "B": batch,
                "T": steps,
                "D": hidden,
                "H": hidden,
                "measure": measure,
                "repeats": args.repeats,
                "median_ms": medians,
            }
            print(json.dumps(line), flush=True)
            lines.append(line)
    _table(lines, env)
    if args.save:
        _timing.save(lines, env, "bf16.jsonl")


def _table(lines, env):
    print(f"\n{env['machine']}, jax {env['jax']}, {env['date']}; {env['kernels']}\n")
    names = list(lines[0]["median_ms"])
    print(
        "| cell | B | T | D=H | measure | " + " | ".join(names) + " | bf16 / float32 |"
        " bf16 / torch bf16 |"
    )
    print("|---" * (len(names) + 7) + "|")
    for line in lines:
        m = line["median_ms"]
        mine = m["jaxrnn bf16"] / m["jaxrnn float32"]
        torch_ratio = (
            f"{m['jaxrnn bf16'] / m['torch bf16']:.2f}x" if "torch bf16" in m else "-"
        )
        cells = " | ".join(f"{m[n]:.1f}" for n in names)
        print(
            f"| {line['cell']} | {line['B']} | {line['T']} | {line['H']} | "
            f"{line['measure']} | {cells} | {mine:.2f}x | {torch_ratio} |"
        )


if __name__ == "__main__":
    main()
