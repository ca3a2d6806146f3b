"""The two tunable choices of the fused path, side by side on the CPU grid.

1. Hoisting: the input projection x @ w_ih^T for all T as one matmul before
   the loop, or x_t @ w_ih^T inside it (jaxrnn.fast._fused.HOIST_BYTES sets the
   size up to which a CPU hoists; here it is forced either way).
2. The scan's unroll factor, 1 (the default), 2 or 4.

Each variant is timed by the harness (interleaved rounds, untimed call before
each timed one), as the forward pass and the training step.

    python benchmarks/bench_fused_choices.py [--save]

Prints a Markdown table; --save appends the JSON lines to
benchmarks/results/<machine>/fused_choices.jsonl. Run it alone on an idle
machine.
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import _timing  # noqa: E402
import jaxrnn  # noqa: E402
from jaxrnn.bench import GRIDS, _impls, _run  # noqa: E402
from jaxrnn.fast import _fused  # noqa: E402

VARIANTS = {
    # name: (HOIST_BYTES, unroll)
    "hoisted, unroll 1": (2**62, 1),
    "in the loop, unroll 1": (0, 1),
    "default (auto), unroll 2": (None, 2),
    "default (auto), unroll 4": (None, 4),
    "default (auto), unroll 1": (None, 1),
}


class _Patched:
    """A runner whose compilation sees its own HOIST_BYTES (read at trace time)."""

    def __init__(self, runner, hoist_bytes):
        self._runner, self._bytes = runner, hoist_bytes

    def __getattr__(self, name):
        return getattr(self._runner, name)

    def _with_bytes(self, fn, *args):
        saved = _fused.HOIST_BYTES
        if self._bytes is not None:
            _fused.HOIST_BYTES = self._bytes
        try:
            return fn(*args)
        finally:
            _fused.HOIST_BYTES = saved

    def prepare(self, measure):
        return self._with_bytes(self._runner.prepare, measure)

    def outputs(self):
        return self._with_bytes(self._runner.outputs)

    def __call__(self, measure):
        self._runner(measure)


def _variant(name, hoist_bytes, unroll):
    def build(layer, xs, targets):
        forward = functools.partial(_apply, unroll=unroll)
        runner = _impls.JaxRunner(forward, layer, xs, targets)
        return _Patched(runner, hoist_bytes)

    return _impls.Impl(name, name, name, ("lstm", "gru", "rnn"), lambda: "", build)


def _apply(params, xs, *, unroll):
    return jaxrnn.apply_layer(params, xs, impl="fused", unroll=unroll)[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args(argv)
    _run.IMPLS[:] = [_variant(n, *v) for n, v in VARIANTS.items()]
    lines = _run.run(GRIDS["cpu"], None, repeats=args.repeats)
    ok = [line for line in lines if line["status"] == "ok"]
    head = "| cell | B | T | H | measure | " + " | ".join(VARIANTS) + " |"
    print(head + "\n|" + "---|" * (5 + len(VARIANTS)))
    keys = dict.fromkeys((x["cell"], x["B"], x["T"], x["H"], x["measure"]) for x in ok)
    for key in keys:
        row = {
            x["impl"]: x
            for x in ok
            if (x["cell"], x["B"], x["T"], x["H"], x["measure"]) == key
        }
        base = row["default (auto), unroll 1"]["median_ms"]
        cells = [
            f"{row[n]['median_ms']:.1f} ({row[n]['median_ms'] / base:.2f}x)"
            for n in VARIANTS
        ]
        print("| " + " | ".join(map(str, key)) + " | " + " | ".join(cells) + " |")
    if args.save:
        _timing.save(lines, lines[0], "fused_choices.jsonl")


if __name__ == "__main__":
    main()
