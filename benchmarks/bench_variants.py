"""What the cell variants and layer options cost, beside the plain cells.

Times the forward pass and one training step (forward, MSE on all outputs,
BPTT, clip + Adam) of `jaxrnn.apply_layer` for every cell in the registry and
for the stochastic layer options, at the same sizes, in one run. Before
timing, each cell's batched layer is checked against the reference `unroll`
of one example (max_abs_err). Every row runs the reference path
(impl="scan") unless --impls names others, each of which then times every
variant it can run; the plain cells' speed across sizes is in
`python -m benchmarks`.

    python benchmarks/bench_variants.py [--smoke] [--save] [--impls scan,fused,cpu]
        [--only rnn,indrnn]

Prints one JSON line per measurement and then a Markdown table with each
variant's time as a multiple of its base cell's under the same impl; --save
appends the lines to benchmarks/results/<machine>/variants.jsonl. Run it
alone on an idle machine.
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import _timing  # noqa: E402
import jaxrnn  # noqa: E402
from jaxrnn import train  # noqa: E402

# (B, T, D = H), fp32.
PROBLEMS = [(32, 100, 128), (16, 200, 256)]
SMOKE = [(8, 50, 64)]

# (name, cell, base it is compared with, init_layer kwargs, apply_layer kwargs)
VARIANTS = [
    ("lstm", "lstm", "lstm", {}, {}),
    ("layer_norm_lstm", "layer_norm_lstm", "lstm", {}, {}),
    ("peephole_lstm", "peephole_lstm", "lstm", {}, {}),
    ("cifg_lstm", "cifg_lstm", "lstm", {}, {}),
    ("proj_lstm (P = H/2)", "lstm", "lstm", {"proj_size": "half"}, {}),
    ("lstm + recurrent_dropout=0.25", "lstm", "lstm", {}, {"recurrent_dropout": 0.25}),
    ("lstm + zoneout=0.1", "lstm", "lstm", {}, {"zoneout": 0.1}),
    ("lstm + reset", "lstm", "lstm", {}, {"reset": True}),
    ("lstm + learned initial state", "lstm", "lstm", {"learn_initial_state": True}, {}),
    ("gru", "gru", "gru", {}, {}),
    ("layer_norm_gru", "layer_norm_gru", "gru", {}, {}),
    ("mgu", "mgu", "gru", {}, {}),
    ("cho_gru", "cho_gru", "gru", {}, {}),
    ("rnn", "rnn", "rnn", {}, {}),
    ("indrnn", "indrnn", "rnn", {}, {}),
]


def _reference_error(params, xs, impl):
    """Max |apply_layer - unroll of the reference step| on the first example."""
    from jaxrnn.cells import _registry as _cells

    spec = _cells.CELLS[params.cell]
    h = jnp.zeros(params.output_size)
    carry = jaxrnn.LSTMCarry(h, jnp.zeros(params.hidden_size)) if spec.lstm_carry else h
    _, one = jaxrnn.unroll(spec.step, params.cells[0][0], carry, xs[0])
    ys = jaxrnn.apply_layer(params, xs[:1], impl=impl)[0][0]
    return float(jnp.abs(ys - one).max())


def measure(cell, init_kwargs, apply_kwargs, batch, seq_len, hidden, repeats, impl):
    """(max_abs_err, {"forward": timing, "train_step": timing}), or None
    where `impl` cannot run the variant here."""
    init_kwargs = dict(init_kwargs)
    if init_kwargs.get("proj_size") == "half":
        init_kwargs["proj_size"] = hidden // 2
    params = jaxrnn.init_layer(
        jax.random.key(0), cell, hidden, hidden, init="torch", **init_kwargs
    )
    xs = jax.random.normal(jax.random.key(1), (batch, seq_len, hidden))
    targets = jax.random.normal(jax.random.key(2), (batch, seq_len, params.output_size))
    apply_kwargs = dict(apply_kwargs)
    if apply_kwargs.pop("reset", False):
        apply_kwargs["reset"] = jax.random.bernoulli(
            jax.random.key(3), 0.05, (batch, seq_len)
        )
    stochastic = "recurrent_dropout" in apply_kwargs or "zoneout" in apply_kwargs
    options = {k: True for k in apply_kwargs if k in jaxrnn.layer.SEQUENTIAL_ONLY}
    try:
        jaxrnn.layer.choose(impl, cell, params.activation, **options)
    except ValueError:
        return None
    error = None if apply_kwargs else _reference_error(params, xs, impl)
    # Each variant is compared with its base cell on the same machinery.
    apply = functools.partial(jaxrnn.apply_layer, impl=impl, **apply_kwargs)

    def loss_fn(params, xs, targets, key):
        ys, _ = apply(params, xs, key=key if stochastic else None)
        return train.mse_loss(ys, targets)

    forward = jax.jit(lambda p, x, k: apply(p, x, key=k if stochastic else None)[0])
    optimizer = train.make_optimizer(1e-3, max_norm=1.0)
    step = jax.jit(train.make_train_step(optimizer, loss_fn))
    state = optimizer.init(params)
    key = jax.random.key(4)
    return error, {
        "forward": _timing.time_jitted(forward, params, xs, key, repeats=repeats),
        "train_step": _timing.time_jitted(
            step, params, state, xs, targets, key, repeats=repeats
        ),
    }


def table(lines: list[dict]) -> str:
    """Each variant's train step and forward time, as a multiple of its base."""
    first = lines[0]
    out = [
        f"{first['machine']}, jax {first['jax']}, {first['date']} "
        "(median of repeats, ms; ratio = variant / base cell, same size, same run)",
        "",
        "| variant | impl | B | T | D=H | fwd | train step | vs base (train) "
        "| compile |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    by = {
        (r["variant"], r["impl"], r["B"], r["T"], r["H"], r["measure"]): r
        for r in lines
    }
    for (variant, impl, b, t, h, measure), r in by.items():
        if measure != "train_step":
            continue
        base = by.get((r["base"], impl, b, t, h, "train_step"))
        ratio = f"{r['median_ms'] / base['median_ms']:.2f}x" if base else "-"
        fwd = by[(variant, impl, b, t, h, "forward")]
        out.append(
            f"| {variant} | {impl} | {b} | {t} | {h} | {fwd['median_ms']:.1f} | "
            f"{r['median_ms']:.1f} | {ratio} | {r['compile_s']:.2f}s |"
        )
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one small size only")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--save",
        action="store_true",
        help="append to benchmarks/results/<machine>/variants.jsonl",
    )
    parser.add_argument(
        "--impls", default="scan", help="comma-separated impls to time (scan)"
    )
    parser.add_argument(
        "--only", default="", help="comma-separated variants to time (all)"
    )
    args = parser.parse_args(argv)
    impls = args.impls.split(",")
    only = set(args.only.split(",")) - {""}
    known = {v[0] for v in VARIANTS}
    if only - known:
        parser.error(
            f"--only: unknown variants {sorted(only - known)}; known: {sorted(known)}"
        )
    env = _timing.environment()
    lines = []
    for batch, seq_len, hidden in SMOKE if args.smoke else PROBLEMS:
        for (variant, cell, base, init_kwargs, apply_kwargs), impl in (
            (v, i) for v in VARIANTS for i in impls if not only or v[0] in only
        ):
            got = measure(
                cell,
                init_kwargs,
                apply_kwargs,
                batch,
                seq_len,
                hidden,
                args.repeats,
                impl,
            )
            if got is None:
                print(f"# {variant}: impl={impl!r} cannot run it here", flush=True)
                continue
            error, timings = got
            for kind, t in timings.items():
                line = {
                    **env,
                    "variant": variant,
                    "impl": impl,
                    "base": base,
                    "B": batch,
                    "T": seq_len,
                    "D": hidden,
                    "H": hidden,
                    "dtype": "float32",
                    "measure": kind,
                    **t,
                    "max_abs_err": error,
                    "sequences_per_s": batch / (t["median_ms"] / 1e3),
                    "tokens_per_s": batch * seq_len / (t["median_ms"] / 1e3),
                }
                print(json.dumps(line), flush=True)
                lines.append(line)
    print(table(lines))
    if args.save:
        _timing.save(lines, env, "variants.jsonl")


if __name__ == "__main__":
    main()
