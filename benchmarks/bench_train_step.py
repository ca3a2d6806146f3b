"""Forward pass and training step of the jaxrnn layer, optionally beside PyTorch.

A training step is: forward over the sequence, an MSE loss on all outputs,
full BPTT, and an Adam update after clip_by_global_norm(1.0). Sizes are
declared once in PROBLEMS and are the same on every device.

    python benchmarks/bench_train_step.py [--smoke] [--torch] [--save]

Prints one JSON line per measurement; --save appends them to
benchmarks/results/<device>/train_step.jsonl. Run it alone on an idle machine:
under contention the numbers, and above all the ratios to PyTorch, mean nothing.
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
from jaxrnn import train  # noqa: E402

# (cell, batch B, time T, input D = hidden H), fp32.
PROBLEMS = [
    ("lstm", 32, 100, 128),
    ("lstm", 64, 100, 256),
    ("lstm", 16, 200, 512),
    ("lstm", 1, 1000, 64),
    ("lstm", 128, 50, 64),
    ("gru", 32, 100, 128),
    ("rnn", 32, 100, 128),
]
SMOKE = [("lstm", 32, 100, 128), ("gru", 8, 50, 64)]


def jaxrnn_step(cell, batch, seq_len, hidden, repeats):
    key = jax.random.key(0)
    params = jaxrnn.init_layer(key, cell, hidden, hidden, init="torch")
    xs = jax.random.normal(jax.random.key(1), (batch, seq_len, hidden))
    targets = jax.random.normal(jax.random.key(2), (batch, seq_len, hidden))

    def loss_fn(params, xs, targets):
        ys, _ = jaxrnn.apply_layer(params, xs)
        return train.mse_loss(ys, targets)

    # Before timing, check the batched layer against the reference `unroll` of
    # one example (eagerly, so the timed functions' compile caches stay cold).
    step_fn = {
        "rnn": jaxrnn.rnn_step,
        "lstm": jaxrnn.lstm_step,
        "gru": jaxrnn.gru_step,
    }[cell]
    carry = jaxrnn.init_lstm_carry(hidden) if cell == "lstm" else jnp.zeros(hidden)
    one = jaxrnn.unroll(step_fn, params.cells[0][0], carry, xs[0])[1]
    error = float(jnp.abs(jaxrnn.apply_layer(params, xs[:1])[0][0] - one).max())

    forward = jax.jit(lambda p, x: jaxrnn.apply_layer(p, x)[0])

    optimizer = train.make_optimizer(1e-3, max_norm=1.0)
    step = jax.jit(train.make_train_step(optimizer, loss_fn))
    state = optimizer.init(params)
    return error, {
        "forward": _timing.time_jitted(forward, params, xs, repeats=repeats),
        "train_step": _timing.time_jitted(
            step, params, state, xs, targets, repeats=repeats
        ),
    }


def torch_step(cell, batch, seq_len, hidden, repeats):
    import torch

    torch.manual_seed(0)
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](
        hidden, hidden, batch_first=True
    )
    xs = torch.randn(batch, seq_len, hidden)
    targets = torch.randn(batch, seq_len, hidden)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)

    def forward():
        with torch.no_grad():
            module(xs)

    def step():
        optimizer.zero_grad()
        loss = ((module(xs)[0] - targets) ** 2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()

    return {
        "forward": _timing.time_python(forward, repeats),
        "train_step": _timing.time_python(step, repeats),
    }, torch.__version__


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="two small sizes only")
    parser.add_argument(
        "--torch", action="store_true", help="also time torch.nn modules"
    )
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--save",
        action="store_true",
        help="append to benchmarks/results/<device>/train_step.jsonl",
    )
    args = parser.parse_args(argv)
    env = _timing.environment()
    lines = []
    for cell, batch, seq_len, hidden in SMOKE if args.smoke else PROBLEMS:
        problem = {
            "cell": cell,
            "B": batch,
            "T": seq_len,
            "D": hidden,
            "H": hidden,
            "dtype": "float32",
        }
        error, timings = jaxrnn_step(cell, batch, seq_len, hidden, args.repeats)
        results = [
            ("jaxrnn.apply_layer (reference scan)", timings, {"max_abs_err": error})
        ]
        if args.torch:
            torch_timings, version = torch_step(
                cell, batch, seq_len, hidden, args.repeats
            )
            results.append(
                (f"torch.nn.{cell.upper()}", torch_timings, {"torch": version})
            )
        for impl, timing, extra in results:
            for kind, t in timing.items():
                line = {
                    **env,
                    **problem,
                    "impl": impl,
                    "measure": kind,
                    **t,
                    **extra,
                    "sequences_per_s": batch / (t["median_ms"] / 1e3),
                    "tokens_per_s": batch * seq_len / (t["median_ms"] / 1e3),
                }
                print(json.dumps(line), flush=True)
                lines.append(line)
    if args.save:
        _timing.save(lines, env, "train_step.jsonl")


if __name__ == "__main__":
    main()
