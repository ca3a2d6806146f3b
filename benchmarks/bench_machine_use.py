"""How much of the machine an LSTM training step uses, against its fp32 peak.

The peak is measured, not quoted: square float32 matmuls (N = 1024, 2048,
4096) by XLA's dot and by torch.mm on all the cores, timed the way every
step below is timed (the median of interleaved rounds, after a warm-up);
the fastest of them is the peak. Then, for each size, the forward pass
(the loss and everything the backward pass keeps), the backward pass and
the whole step (both, in one compiled function) of jaxrnn (impl="auto") and
of torch.nn.LSTM, side by side in one process. FLOPs are counted
analytically, the matmuls only:

    forward    F = 2 B T 4H (D + H)          x w_ih^T over all T, h w_hh^T per step
    backward   2F with dx, 1.5F without      dw_ih, dw_hh, dh per step (and dx)

Two steps are timed: the input needs no gradient (a first layer on data:
jaxrnn skips dx, PyTorch computes it, and both are credited 1.5F), and the
input needs its gradient (both compute dx: 2F).

    python benchmarks/bench_machine_use.py [--save] [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import _timing  # noqa: E402
import jaxrnn  # noqa: E402

SIZES = [(64, 100, 256), (16, 200, 512)]  # B, T, H (D = H)


def _rounds(fns: dict, repeats: int) -> dict:
    """Median seconds of each fn(), in rotating order, after a warm-up."""
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    keys = list(fns)
    for r in range(repeats):
        for k in keys[r % len(keys) :] + keys[: r % len(keys)]:
            start = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def peak(repeats: int) -> dict:
    """GFLOP/s of square float32 matmuls by XLA and torch on every core."""
    import torch

    fns = {}
    for n in (1024, 2048, 4096):
        a = jax.random.normal(jax.random.key(n), (n, n))
        dot = jax.jit(lambda a: a @ a)
        fns[f"xla {n}"] = lambda a=a, dot=dot: jax.block_until_ready(dot(a))
        t = torch.randn(n, n)
        fns[f"torch {n}"] = lambda t=t: torch.mm(t, t)
    medians = _rounds(fns, repeats)
    rates = {k: 2 * int(k.split()[1]) ** 3 / s / 1e9 for k, s in medians.items()}
    return {"rates": rates, "peak": max(rates.values())}


def _jax_fns(b, t, h, need_x):
    layer = jaxrnn.init_layer(jax.random.key(0), "lstm", h, h, init="torch")
    xs = jax.random.normal(jax.random.key(1), (b, t, h))
    targets = jax.random.normal(jax.random.key(2), (b, t, h))

    def loss(p, x):
        return jnp.mean((jaxrnn.apply_layer(p, x)[0] - targets) ** 2)

    argnums = (0, 1) if need_x else 0
    forward = jax.jit(
        lambda p, x: jax.vjp(loss, p, x) if need_x else jax.vjp(lambda p: loss(p, x), p)
    )
    backward = jax.jit(lambda pullback: pullback(jnp.ones((), jnp.float32)))
    step = jax.jit(jax.grad(loss, argnums))
    state = {}

    def fwd():
        state["pullback"] = jax.block_until_ready(forward(layer, xs))[1]

    def bwd():
        jax.block_until_ready(backward(state["pullback"]))

    fwd()
    return {
        "forward": fwd,
        "backward": bwd,
        "step": lambda: jax.block_until_ready(step(layer, xs)),
    }, (layer, xs, targets)


def _torch_fns(layer, xs, targets, need_x):
    import torch

    module = jaxrnn.interop.to_torch(layer, batch_first=True)
    x = torch.tensor(np.asarray(xs)).requires_grad_(need_x)
    y = torch.tensor(np.asarray(targets))
    state = {}

    def fwd():
        out = module(x)[0]
        state["loss"] = torch.mean((out - y) ** 2)

    def bwd():
        state["loss"].backward()
        module.zero_grad(set_to_none=True)

    def step():
        fwd()
        bwd()

    fwd()
    return {"forward": fwd, "backward": bwd, "step": step}


def measure(b, t, h, need_x, repeats):
    jax_fns, data = _jax_fns(b, t, h, need_x)
    torch_fns = _torch_fns(*data, need_x)
    fns = {}
    for part in ("forward", "backward", "step"):
        fns[f"jaxrnn {part}"] = jax_fns[part]
        fns[f"torch {part}"] = torch_fns[part]
    # A backward pass needs its own forward pass just before it: time the
    # pairs in order within a round, the other entries rotating.
    medians = {k: [] for k in fns}
    for k in fns:
        fns[k]()  # warm-up
    for r in range(repeats):
        order = ["jaxrnn", "torch"] if r % 2 == 0 else ["torch", "jaxrnn"]
        for lib in order:
            for part in ("forward", "backward", "step"):
                if part == "backward":
                    fns[f"{lib} forward"]()
                start = time.perf_counter()
                fns[f"{lib} {part}"]()
                medians[f"{lib} {part}"].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in medians.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--save",
        action="store_true",
        help="append to benchmarks/results/<machine>/machine_use.jsonl",
    )
    args = parser.parse_args(argv)
    env = _timing.environment()
    machine = peak(args.repeats)
    print(json.dumps({**env, **machine}), flush=True)
    lines = [{**env, "kind": "peak", **machine}]
    rows = []
    for b, t, h in SIZES:
        flops = 2 * b * t * 4 * h * (h + h)
        for need_x in (False, True):
            medians = measure(b, t, h, need_x, args.repeats)
            backward = (2.0 if need_x else 1.5) * flops
            counted = {"forward": flops, "backward": backward, "step": flops + backward}
            for key, seconds in medians.items():
                lib, part = key.split()
                rate = counted[part] / seconds / 1e9
                line = {
                    **env,
                    "kind": "lstm",
                    "B": b,
                    "T": t,
                    "H": h,
                    "D": h,
                    "input_gradient": need_x,
                    "library": lib,
                    "part": part,
                    "median_ms": 1e3 * seconds,
                    "gflop_s": rate,
                    "fraction_of_peak": rate / machine["peak"],
                }
                lines.append(line)
                rows.append(line)
                print(json.dumps(line), flush=True)
    print(
        f"\n{env['machine']}, jax {env['jax']}, {env['date']}: fp32 peak "
        f"{machine['peak']:.0f} GFLOP/s on {env['cpu_count']} cores (best of "
        + ", ".join(f"{k} {v:.0f}" for k, v in machine["rates"].items())
        + ")\n"
    )
    print("| B, T, H | dx | library | forward | backward | step |")
    print("|---|---|---|---|---|---|")
    for b, t, h in SIZES:
        for need_x in (False, True):
            for lib in ("jaxrnn", "torch"):
                cells = []
                for part in ("forward", "backward", "step"):
                    line = next(
                        r
                        for r in rows
                        if (r["B"], r["T"], r["H"]) == (b, t, h)
                        and r["input_gradient"] == need_x
                        and r["library"] == lib
                        and r["part"] == part
                    )
                    cells.append(
                        f"{line['median_ms']:.1f} ms, {line['gflop_s']:.0f} GFLOP/s "
                        f"({100 * line['fraction_of_peak']:.0f}%)"
                    )
                dx = "yes" if need_x else "no"
                print(f"| {b}, {t}, {h} | {dx} | {lib} | " + " | ".join(cells) + " |")
    if args.save:
        _timing.save(lines, env, "machine_use.jsonl")


if __name__ == "__main__":
    main()
