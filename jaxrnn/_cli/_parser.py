"""The `jaxrnn` command line's parser: its subcommands and flags."""

from __future__ import annotations

import argparse
import math

from jaxrnn import bench, runs
from jaxrnn._cli._commands import (
    cmd_compare,
    cmd_eval,
    cmd_generate,
    cmd_info,
    cmd_train,
)
from jaxrnn.runs import _config


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
    p.add_argument(
        "--data",
        default=S,
        metavar="FILE",
        help="your own data: a series (.csv, .npy) or a text (.txt), whose "
        "ending gives the task unless --task does (none)",
    )
    p.add_argument(
        "--column",
        default=S,
        help="the series' column: a CSV header name, or an index (none)",
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
        ("--patience", pos_int, "validations without improvement that stop a run"),
    ]
    for flag, kind, text in flags:
        name = flag[2:].replace("-", "_")
        shown = _CELL_DEFAULTS.get(name) or _config.shown_default(name)
        p.add_argument(flag, type=kind, default=S, help=f"{text} ({shown})")
    for flag, choices, text in (
        ("--activation", _config.ACTIVATIONS, "g1 of the cells that take one"),
        ("--impl", _config.IMPLS, "apply_layer's impl"),
        ("--keep", _config.KEEPS, "the checkpoint eval and the result use"),
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
    p.add_argument(
        "--bidirectional",
        action="store_true",
        default=S,
        help="read each sequence both ways (False)",
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
