"""`jaxrnn bench` and `python -m benchmarks`: the harness's command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import subprocess
import sys
from typing import Sequence

from jaxrnn.bench._grid import GRIDS
from jaxrnn.bench._impls import KEYS, MEASURES
from jaxrnn.bench._report import chart, latest_run, markdown
from jaxrnn.bench._run import run
from jaxrnn.bench._timing import environment, results_dir, save


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the harness's flags (--grid, --impls, --cells, --save, ...) to a parser;
    `jaxrnn bench` and `python -m benchmarks` share them."""
    parser.add_argument(
        "--grid",
        choices=sorted(GRIDS),
        default="cpu",
        help="the problem sizes (default cpu; smoke runs in about a minute)",
    )
    parser.add_argument("--smoke", action="store_true", help="the same as --grid smoke")
    parser.add_argument(
        "--impls",
        default=",".join(KEYS),
        help=f"comma-separated families to time (default all: {','.join(KEYS)})",
    )
    parser.add_argument(
        "--cells",
        default="lstm,gru,rnn",
        help="comma-separated cells to time (default lstm,gru,rnn)",
    )
    parser.add_argument(
        "--measures",
        default=",".join(MEASURES),
        help="forward, train_step or both (default both)",
    )
    parser.add_argument(
        "--repeats", type=int, default=10, help="timed rounds per measure (default 10)"
    )
    parser.add_argument(
        "--busy",
        type=int,
        default=0,
        metavar="N",
        help="time beside N competing processes, each a busy loop on one core "
        "(default 0: an idle machine); --save then writes bench_busyN.*",
    )
    parser.add_argument(
        "--save",
        action="store_true",
        help="append the JSON lines to RESULTS/<machine>/bench.jsonl and write "
        "bench.md and bench.png beside them",
    )
    parser.add_argument(
        "--results",
        default=None,
        help="the results folder for --save (default ./benchmarks/results)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the JSON lines, not the tables"
    )
    parser.add_argument(
        "--report",
        metavar="JSONL",
        default=None,
        help="time nothing: print the tables of the last run in this results "
        "file, and with --save rewrite its .md and .png beside it",
    )


def _split(parser, text: str, allowed: Sequence[str], what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in items if t not in allowed]
    if unknown or not items:
        parser.error(
            f"--{what} takes a comma-separated subset of {', '.join(allowed)}; "
            f"got {text!r}"
        )
    return items


def _report_only(args: argparse.Namespace) -> int:
    path = pathlib.Path(args.report)
    try:
        lines = [json.loads(s) for s in path.read_text().splitlines() if s.strip()]
    except (OSError, json.JSONDecodeError) as error:
        print(f"jaxrnn bench: cannot read {path}: {error}", file=sys.stderr)
        return 2
    lines = latest_run(lines)
    print(markdown(lines))
    if args.save:
        (path.parent / f"{path.stem}.md").write_text(markdown(lines))
        chart(lines, path.parent / f"{path.stem}.png")
    return 0


@contextlib.contextmanager
def _busy(count: int):
    """`count` processes that spin on a core each until the block ends."""
    loops = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(count)
    ]
    try:
        yield loops
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def _basename(grid: str, busy: int) -> str:
    """The results' file name: bench for the cpu, gpu and smoke grids, the
    grid's name for the others; _busyN beside N competing processes."""
    name = "bench" if grid in ("cpu", "gpu", "smoke") else grid
    return f"{name}_busy{busy}" if busy else name


def execute(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run the harness for parsed arguments; returns an exit status."""
    if args.report:
        return _report_only(args)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.busy < 0:
        parser.error(f"--busy must be >= 0, got {args.busy}")
    keys = _split(parser, args.impls, KEYS, "impls")
    cells = _split(parser, args.cells, ("lstm", "gru", "rnn"), "cells")
    measures = _split(parser, args.measures, MEASURES, "measures")
    grid = "smoke" if args.smoke else args.grid
    problems = [p for p in GRIDS[grid] if p.cell in cells]
    if args.save:
        # Fail on an unwritable folder now, not after minutes of timing.
        folder = results_dir(environment(), args.results)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            print(
                f"jaxrnn bench: cannot write results to {folder}: {error}",
                file=sys.stderr,
            )
            return 2
        if not os.access(folder, os.W_OK):
            print(f"jaxrnn bench: cannot write results to {folder}", file=sys.stderr)
            return 2
    with _busy(args.busy):
        lines = run(problems, keys, repeats=args.repeats, measures=measures)
    for line in lines:
        line["busy"] = args.busy
    name = _basename(grid, args.busy)
    if args.json:
        for line in lines:
            print(json.dumps(line))
    else:
        print(markdown(lines))
    if args.save:
        path = save(
            lines, lines[0] if lines else environment(), f"{name}.jsonl", args.results
        )
        (path.parent / f"{name}.md").write_text(markdown(lines))
        if chart(lines, path.parent / f"{name}.png"):
            print(f"wrote {path.parent / name}.md and {name}.png", file=sys.stderr)
        else:
            print(
                f"wrote {path.parent / name}.md (no chart: matplotlib is "
                "not installed)",
                file=sys.stderr,
            )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m benchmarks`: parse `argv` (default: sys.argv) and run the
    harness; returns an exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="The benchmark harness: jaxrnn beside Flax, Equinox, PyTorch "
        "and cuDNN.",
    )
    add_arguments(parser)
    return execute(parser.parse_args(argv), parser)
