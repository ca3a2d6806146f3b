"""The `jaxrnn` command line: `jaxrnn info`, `jaxrnn train` and `jaxrnn bench`.

`jaxrnn train` with no arguments trains a tanh RNN and an LSTM on the adding
problem at a length where the plain RNN fails and the LSTM learns, then
prints one table. Every flag maps onto a keyword argument of the public API.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax

import jaxrnn
from jaxrnn import _cells, bench, tasks, train

# Every cell in the registry; the projected LSTM needs a size the CLI does not take.
CELLS = tuple(name for name in _cells.CELLS if name != "proj_lstm")


class Model(NamedTuple):
    """A recurrent layer and the readout on its outputs."""

    layer: jaxrnn.LayerParams
    head: jaxrnn.ReadoutParams


def predict(model: Model, xs: jax.Array) -> jax.Array:
    ys, _ = jaxrnn.apply_layer(model.layer, xs)
    return jaxrnn.readout(model.head, ys)


def adding_loss(model: Model, batch: tasks.Batch) -> jax.Array:
    return train.mse_loss(predict(model, batch.xs), batch.ys, batch.mask)


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, else a line per 10%."""

    def __init__(self, label: str, total: int, enabled: bool = True):
        self.label, self.total, self.enabled = label, total, enabled
        self.tty = sys.stderr.isatty()
        self.start = time.perf_counter()
        self.last_decile = -1

    def update(self, done: int, **metrics: float) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        width = 24
        filled = int(width * done / self.total)
        bar = "#" * filled + "-" * (width - filled)
        values = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        line = (
            f"{self.label:>5} [{bar}] {done}/{self.total} {values} "
            f"{rate:.0f} it/s eta {eta:.0f}s"
        )
        if self.tty:
            sys.stderr.write("\r" + line.ljust(100))
            if done == self.total:
                sys.stderr.write("\n")
        else:
            decile = 10 * done // self.total
            if decile != self.last_decile:
                self.last_decile = decile
                sys.stderr.write(line + "\n")
        sys.stderr.flush()


def train_adding(cell: str, args: argparse.Namespace) -> dict:
    """Train one cell on the adding problem; return its results row."""
    key_init, key_head, key_data = jax.random.split(jax.random.key(args.seed), 3)
    activation = args.activation if cell == "rnn" else None
    model = Model(
        jaxrnn.init_layer(
            key_init,
            cell,
            2,
            args.hidden_size,
            num_layers=args.num_layers,
            activation=activation,
        ),
        jaxrnn.init_readout(key_head, args.hidden_size, 1),
    )
    optimizer = train.make_optimizer(
        args.learning_rate,
        max_norm=args.clip_norm,
        clip_value=args.clip_value,
        skip_nonfinite=True,
    )
    step = train.make_train_step(optimizer, adding_loss)

    @jax.jit
    def run_chunk(model, opt_state, first_step):
        def body(state, i):
            model, opt_state = state
            batch = tasks.make_adding_batch(
                jax.random.fold_in(key_data, i), args.batch_size, args.seq_len
            )
            model, opt_state, metrics = step(model, opt_state, batch)
            return (model, opt_state), metrics

        steps = first_step + jnp.arange(args.chunk)
        (model, opt_state), metrics = jax.lax.scan(body, (model, opt_state), steps)
        return model, opt_state, metrics

    test = tasks.make_adding_batch(
        jax.random.key(args.seed + 10_000), args.test_size, args.seq_len
    )

    @jax.jit
    def evaluate(model):
        error = predict(model, test.xs)[:, -1, 0] - test.ys[:, -1, 0]
        return jnp.mean(error**2), jnp.mean(jnp.abs(error) < 0.04)

    opt_state = optimizer.init(model)
    start = time.perf_counter()
    run_chunk = run_chunk.lower(model, opt_state, 0).compile()
    compile_s = time.perf_counter() - start
    progress = Progress(cell, args.steps, enabled=not args.quiet)
    losses, norms, done, bad_run, stopped = [], [], 0, 0, None
    while done < args.steps:
        model, opt_state, metrics = run_chunk(model, opt_state, done)
        losses.extend(metrics["loss"].tolist())
        norms.extend(metrics["grad_norm"].tolist())
        for finite in metrics["finite"].tolist():
            bad_run = 0 if finite else bad_run + 1
            if bad_run >= args.max_bad_steps:
                break
        done += args.chunk
        if bad_run >= args.max_bad_steps:
            stopped = (
                f"{cell}: stopped after {bad_run} consecutive steps with a "
                "non-finite loss or gradient (each update was skipped). Lower "
                "--learning-rate or --clip-norm, or raise --max-bad-steps."
            )
            print(stopped, file=sys.stderr)
            break
        finite = [x for x in losses[-args.chunk :] if math.isfinite(x)]
        progress.update(
            min(done, args.steps),
            loss=sum(finite) / max(len(finite), 1),
            grad_norm=norms[-1],
        )
    test_mse, solved = (float(v) for v in evaluate(model))
    tail = losses[-min(len(losses), 100) :]
    return {
        "task": "adding",
        "cell": cell,
        "seq_len": args.seq_len,
        "hidden_size": args.hidden_size,
        "steps": len(losses),
        "params": sum(x.size for x in jax.tree.leaves(model)),
        "train_mse": sum(tail) / len(tail),
        "test_mse": test_mse,
        "baseline_mse": tasks.ADDING_BASELINE_MSE,
        "solved": solved,
        "beats_baseline": test_mse < 0.5 * tasks.ADDING_BASELINE_MSE,
        "compile_s": compile_s,
        "train_s": time.perf_counter() - start - compile_s,
        "diverged": not math.isfinite(test_mse) or stopped is not None,
        "skipped_steps": int(train.skipped_steps(opt_state)),
    }


def print_table(rows: Sequence[dict]) -> None:
    head = (
        "cell",
        "params",
        "test MSE",
        "baseline",
        "solved",
        "verdict",
        "steps",
        "time",
    )
    lines = [head]
    for r in rows:
        verdict = (
            "diverged"
            if r["diverged"]
            else "learned"
            if r["beats_baseline"]
            else "at baseline"
        )
        lines.append(
            (
                r["cell"],
                str(r["params"]),
                f"{r['test_mse']:.4f}",
                f"{r['baseline_mse']:.3f}",
                f"{100 * r['solved']:.1f}%",
                verdict,
                str(r["steps"]),
                f"{r['train_s'] + r['compile_s']:.0f}s",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for n, line in enumerate(lines):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print(
        "learned: test MSE below half the baseline; solved: share of test sequences "
        "answered within 0.04; time includes compilation."
    )


def cmd_train(args: argparse.Namespace) -> int:
    if args.steps % args.chunk:
        args.steps += args.chunk - args.steps % args.chunk
    if not args.json:
        print(
            f"Adding problem, T={args.seq_len}: the target is the sum of two marked "
            f"values, one in each half of the sequence. Always answering 1 scores "
            f"MSE {tasks.ADDING_BASELINE_MSE:.3f}; 'solved' counts answers within "
            "0.04 (Hochreiter & Schmidhuber 1997).",
            flush=True,
        )
    rows = []
    for cell in args.cell:
        row = train_adding(cell, args)
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)
    if not args.json:
        print_table(rows)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    info = {
        "jaxrnn": jaxrnn.__version__,
        "jax": jax.__version__,
        "optax": optax.__version__,
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
    }
    if args.json:
        print(json.dumps(info))
    else:
        for k, v in info.items():
            print(f"{k:>8}: {v}")
    return 0


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a {kind.__name__}, got {text!r}"
            )
        if not value > 0 or (kind is float and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(
                f"expected a positive {kind.__name__}, got {text!r}"
            )
        return value

    return parse


def _clip(text):
    return None if text.lower() == "none" else _positive(float)(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxrnn", description="Recurrent networks as pure JAX functions."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="versions and devices")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_info)

    t = sub.add_parser(
        "train",
        help="train cells on the adding problem and compare them",
        description="Train each --cell on the adding problem with the same budget "
        "and print one results table.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    t.add_argument("--task", choices=("adding",), default="adding", help="the task")
    t.add_argument(
        "--cell",
        nargs="+",
        choices=CELLS,
        default=["rnn", "lstm", "gru"],
        help="cells to train, one after the other",
    )
    t.add_argument(
        "--activation",
        choices=("tanh", "relu", "sigmoid"),
        default="tanh",
        help="g1 of the Elman RNN",
    )
    t.add_argument("--hidden-size", type=_positive(int), default=64, help="H")
    t.add_argument("--num-layers", type=_positive(int), default=1, help="layers")
    t.add_argument("--seq-len", type=_positive(int), default=100, help="T")
    t.add_argument("--batch-size", type=_positive(int), default=32, help="B")
    t.add_argument(
        "--steps",
        type=_positive(int),
        default=2000,
        help="training steps (rounded up to a multiple of --chunk)",
    )
    t.add_argument(
        "--learning-rate",
        type=_positive(float),
        default=1e-2,
        help="Adam's learning rate",
    )
    t.add_argument(
        "--clip-norm",
        type=_clip,
        default=1.0,
        help="clip_by_global_norm threshold, or 'none'",
    )
    t.add_argument(
        "--clip-value",
        type=_clip,
        default=None,
        help="clip each gradient entry to this magnitude, or 'none'",
    )
    t.add_argument(
        "--max-bad-steps",
        type=_positive(int),
        default=20,
        help="stop after this many consecutive steps with a non-finite loss or "
        "gradient (those updates are skipped)",
    )
    t.add_argument("--seed", type=int, default=0, help="PRNG seed")
    t.add_argument(
        "--test-size",
        type=_positive(int),
        default=1000,
        help="held-out sequences for the test MSE",
    )
    t.add_argument(
        "--chunk",
        type=_positive(int),
        default=50,
        help="steps per compiled call (progress is shown per chunk)",
    )
    t.add_argument(
        "--json",
        action="store_true",
        help="print one JSON line per cell instead of the table",
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    b = sub.add_parser(
        "bench",
        help="time jaxrnn beside Flax, Equinox and PyTorch",
        description="Check every implementation against the jaxrnn reference, "
        "then time its forward pass and training step side by side.",
    )
    bench.add_arguments(b)
    b.set_defaults(func=lambda args: bench.execute(args, b))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "seq_len", 2) < 2:
        parser.error("argument --seq-len: the adding problem needs T >= 2")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
