"""The `jaxrnn` command line: info, train, eval, generate, compare and bench.

Every flag of `train` and `compare` is a field of `jaxrnn.runs.RunConfig`, and
a flag left out takes the task's default (`jaxrnn train --help` lists them).
Bad input exits with status 2 and one message, a run stopped by non-finite
losses with status 3; a traceback is a bug.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import time
from typing import Sequence

import jax
import optax

import jaxrnn
from jaxrnn import bench, runs
from jaxrnn.fast import _cpu
from jaxrnn.runs import _config, _files, _report
from jaxrnn.runs._progress import Progress
from jaxrnn.tasks import MissingExtraError


def _config_of(args: argparse.Namespace, **fixed) -> runs.RunConfig:
    names = {f.name for f in dataclasses.fields(runs.RunConfig)}
    given = {k: v for k, v in vars(args).items() if k in names}
    return runs.RunConfig(**(given | fixed))


def _public(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "history"}


def _print_result(result: dict) -> None:
    print(_report.results_table([result]))
    print()
    print(_report.baselines_table(result))


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume is not None:
        given = {k for k in vars(args)} & {
            f.name for f in dataclasses.fields(runs.RunConfig)
        }
        if given - {"steps"}:
            raise runs.RunError(
                f"--resume continues {args.resume!r} with its saved config; of the "
                f"run's flags only --steps may be given, got "
                + ", ".join(
                    "--" + n.replace("_", "-") for n in sorted(given - {"steps"})
                )
            )
        run_dir, config = args.resume, None
        label = "resume"
    else:
        config = _config_of(args)
        run_dir = args.out or time.strftime(
            f"runs/{config.task}-{config.cell}-%Y%m%d-%H%M%S"
        )
        label = config.cell
    if not args.json and config is not None:
        print(f"{config.task}: training {config.cell}; the run is written to {run_dir}")
    result = runs.fit(
        config,
        run_dir,
        resume=args.resume is not None,
        steps=getattr(args, "steps", None) if args.resume is not None else None,
        progress=Progress(label, not args.quiet),
    )
    if args.json:
        print(json.dumps(_public(result)))
    else:
        _print_result(result)
        plotted = (
            "loss.png"
            if _files.have_matplotlib()
            else "no loss.png: pip install 'jaxrnn[plot]'"
        )
        print(
            f"\nrun directory: {run_dir} (config.json, metrics.jsonl, "
            f"checkpoint.npz, result.json, {plotted})"
        )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    result = runs.evaluate_run(args.run_dir)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['description']} (checkpoint of step {result['checkpoint_step']})"
        )
        _print_result(result)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    text = runs.generate_run(
        args.run_dir,
        args.prompt,
        args.length,
        temperature=args.temperature,
        seed=args.seed,
    )
    if args.json:
        print(json.dumps({"prompt": args.prompt, "text": text}))
    else:
        print(args.prompt + text)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    config = _config_of(args, cell=args.cell[0])
    resolved = config.resolved()
    if not args.json:
        print(
            f"{resolved.task}: {', '.join(args.cell)} with the same budget "
            f"({resolved.steps} steps of batch {resolved.batch_size}, H="
            f"{resolved.hidden_size}, "
            + (
                f"seeds {' '.join(map(str, args.seeds))})"
                if args.seeds
                else f"seed {resolved.seed})"
            ),
            flush=True,
        )
    results = runs.compare(
        config,
        args.cell,
        seeds=args.seeds,
        out=args.out,
        progress=lambda label: Progress(label, not args.quiet),
        on_result=(lambda r: print(json.dumps(_public(r)), flush=True))
        if args.json
        else None,
    )
    if not args.json:
        print(_report.results_table(results))
        if args.seeds and len(args.seeds) > 1:
            print()
            print(_report.seeds_table(results))
        print()
        print(_report.baselines_table(results[0]))
        for r in results:
            if "reason" in r:
                print(f"\n{r['cell']} (seed {r['seed']}) diverged: {r['reason']}")
        if args.out:
            print(f"\nruns and compare.png in {args.out}")
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
    if jax.default_backend() == "cpu":
        kernels = _cpu.status()
        info["kernels"] = kernels.describe()
    if args.json:
        print(json.dumps(info))
    else:
        for k, v in info.items():
            print(f"{k:>8}: {v}")
    return 0


def _number(kind, minimum=None, *, positive=False, allow_none=False):
    def parse(text):
        if allow_none and text.lower() == "none":
            return None
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a {kind.__name__}, got {text!r}"
            )
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite float, got {text!r}")
        if minimum is not None and not value >= minimum:
            raise argparse.ArgumentTypeError(
                f"expected a {kind.__name__} >= {minimum}, got {text!r}"
            )
        if positive and not value > 0:
            raise argparse.ArgumentTypeError(
                f"expected a positive {kind.__name__}, got {text!r}"
            )
        return value

    return parse


_TASK = runs.RunConfig().task
# None in RunConfig means the cell's own default, which init_layer sets.
_CELL_DEFAULTS = {
    "forget_bias": "the cell's, 1.0",
    "update_bias": "the cell's, 0",
    "activation": "the cell's",
}


def _run_flags(p: argparse.ArgumentParser, cells_nargs: str | None) -> None:
    """The RunConfig flags; a flag left out keeps the task's default, which
    its help shows (from `defaults`)."""
    S = argparse.SUPPRESS
    p.add_argument(
        "--task", choices=_config.TASKS, default=S, help=f"the task ({_TASK})"
    )
    if cells_nargs:
        p.add_argument(
            "--cell",
            nargs="+",
            choices=_config.CELLS,
            default=["rnn", "lstm", "gru"],
            help="the cells (rnn lstm gru)",
        )
    else:
        p.add_argument(
            "--cell",
            choices=_config.CELLS,
            default=S,
            help=f"the cell ({_config.shown_default('cell')})",
        )
    pos_int, pos_float = _number(int, positive=True), _number(float, positive=True)
    clip = _number(float, positive=True, allow_none=True)
    flags = [
        ("--hidden-size", pos_int, "H"),
        ("--num-layers", pos_int, "stacked layers"),
        ("--forget-bias", _number(float), "LSTM forget-gate bias"),
        ("--update-bias", _number(float), "update-gate bias of the GRU-like cells"),
        ("--recurrent-horizon", pos_int, "T the IndRNN's recurrent weights suit"),
        ("--dropout", _number(float, 0.0), "dropout between layers"),
        ("--output-dropout", _number(float, 0.0), "dropout before the readout"),
        ("--seq-len", pos_int, "T (the copy task's delay; digits: 8 + --blanks)"),
        ("--horizon", pos_int, "steps forecast at once"),
        ("--blanks", _number(int, 0), "blank steps after each digit"),
        ("--batch-size", pos_int, "B"),
        ("--steps", pos_int, "optimizer steps, exactly"),
        ("--learning-rate", pos_float, "the optimizer's learning rate"),
        ("--clip-norm", clip, "clip_by_global_norm threshold, or 'none'"),
        ("--clip-value", clip, "per-entry clip, or 'none'"),
        ("--seed", _number(int), "PRNG seed"),
        ("--eval-every", pos_int, "steps between validations and checkpoints"),
        ("--eval-size", pos_int, "validation/test sequences of generated tasks"),
        ("--chunk", pos_int, "the most steps per compiled call"),
        ("--max-bad-steps", pos_int, "consecutive non-finite steps that stop a run"),
    ]
    for flag, kind, text in flags:
        name = flag[2:].replace("-", "_")
        shown = _CELL_DEFAULTS.get(name) or _config.shown_default(name)
        p.add_argument(flag, type=kind, default=S, help=f"{text} ({shown})")
    for flag, choices, text in (
        ("--activation", _config.ACTIVATIONS, "g1 of the cells that take one"),
        ("--impl", _config.IMPLS, "apply_layer's impl"),
        ("--matmul-dtype", _config.MATMUL_DTYPES, "the layer's matmul inputs"),
        ("--optimizer", _config.OPTIMIZERS, "the optax optimizer"),
        (
            "--schedule",
            _config.SCHEDULES,
            "the learning rate: constant, or a "
            "warm-up over 2%% of the steps and a cosine decay to zero",
        ),
    ):
        name = flag[2:].replace("-", "_")
        p.add_argument(
            flag,
            choices=choices,
            default=S,
            help=f"{text} ({_CELL_DEFAULTS.get(name) or _config.shown_default(name)})",
        )
    p.add_argument("--json", action="store_true", help="print JSON results")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


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
        help="train one model into a run directory",
        description="Train one cell on one task, with validation, "
        "checkpoints and a metrics log in a run directory.",
    )
    _run_flags(t, None)
    t.add_argument(
        "--out", default=None, help="the run directory (runs/TASK-CELL-DATE-TIME)"
    )
    t.add_argument(
        "--resume",
        metavar="RUN_DIR",
        default=None,
        help="continue the run in RUN_DIR from its checkpoint",
    )
    t.set_defaults(func=cmd_train)

    c = sub.add_parser(
        "compare",
        help="train rnn, lstm and gru with one budget",
        description="Train each --cell on one task with the same "
        "config and budget, and print one table.",
    )
    _run_flags(c, "+")
    c.add_argument(
        "--seeds",
        nargs="+",
        type=_number(int),
        default=None,
        help="train every cell once per seed (instead of --seed)",
    )
    c.add_argument(
        "--out",
        default=None,
        help="write a run directory per cell and compare.png here",
    )
    c.set_defaults(func=cmd_compare)

    e = sub.add_parser("eval", help="the metrics of a run's checkpoint")
    e.add_argument("run_dir")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.set_defaults(func=cmd_eval)

    g = sub.add_parser(
        "generate",
        help="sample text from a chars run",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g.add_argument("run_dir", help="the directory of a run of the chars task")
    g.add_argument(
        "--prompt",
        default="Rosalind:\n",
        help="the text to continue (default: %(default)r)",
    )
    g.add_argument(
        "--length", type=_number(int, positive=True), default=300, help="characters"
    )
    g.add_argument(
        "--temperature",
        type=_number(float, 0.0),
        default=0.8,
        help="softmax temperature; 0 is greedy",
    )
    g.add_argument("--seed", type=_number(int), default=0, help="PRNG seed")
    g.add_argument("--json", action="store_true", help="print JSON")
    g.set_defaults(func=cmd_generate)

    b = sub.add_parser(
        "bench",
        help="time jaxrnn beside Flax, Equinox and PyTorch",
        description="Check every implementation against the jaxrnn "
        "reference, then time its forward pass and training step.",
    )
    bench.add_arguments(b)
    b.set_defaults(func=lambda args: bench.execute(args, b))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)  # --help prints here
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the try
        return status
    except BrokenPipeError:
        # The reader went away (`jaxrnn eval RUN | head -1`): stop quietly.
        # Python would flush stdout again at exit and complain, so point it
        # at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a killed process would report
    except runs.Diverged as error:
        print(f"jaxrnn {args.command}: {error}", file=sys.stderr)
        return 3
    except (runs.RunError, MissingExtraError, ValueError) as error:
        print(f"jaxrnn {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
