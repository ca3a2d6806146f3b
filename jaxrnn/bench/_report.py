"""Markdown tables and a PNG chart from the harness's JSON lines."""

from __future__ import annotations

import os
from collections import defaultdict

FUSED = "jaxrnn fused"
CPU = "jaxrnn cpu"
COLUMNS = """Columns: "cell" is each library's plain class for the cell (LSTMCell,
GRUCell, SimpleCell), "Optimized" is Flax's OptimizedLSTMCell, "torch" is
torch.nn.LSTM / GRU / RNN in float32 (oneDNN on a CPU, cuDNN on a GPU), "jax
cuDNN" is jax.experimental.rnn. "jaxrnn" in a ratio is what impl="auto" runs:
the compiled CPU kernels where they were timed, else the fused path. Every
ratio is a time over a time: below 1 jaxrnn is faster."""


def latest_run(lines: list[dict]) -> list[dict]:
    """The lines of the last run in a results file: those sharing the last
    line's run_id, or for files from before run ids, the trailing block that
    shares its machine, date and load."""
    if not lines:
        return []
    last = lines[-1]
    if "run_id" in last:
        return [line for line in lines if line.get("run_id") == last["run_id"]]

    def key(line):
        return (line.get("machine"), line.get("date"), line.get("load_1min"))

    block = []
    for line in reversed(lines):
        if key(line) != key(last):
            break
        block.append(line)
    return block[::-1]


def _problems(lines: list[dict]) -> dict:
    """{(cell, B, T, D, H, stack): {column: line}} per measure, in first-seen
    order; stack is "" for one layer in one direction, else e.g. "2 bi"."""
    table: dict = defaultdict(lambda: defaultdict(dict))
    for line in lines:
        if line.get("status") == "ok":
            layers, bi = line.get("layers", 1), line.get("bidirectional", False)
            stack = "" if layers == 1 and not bi else f"{layers}{' bi' if bi else ''}"
            key = (line["cell"], line["B"], line["T"], line["D"], line["H"], stack)
            table[line["measure"]][key][line.get("column", line["impl"])] = line
    return table


def _ours(row: dict) -> dict | None:
    """What impl="auto" ran: the CPU kernels where timed, else fused."""
    return row.get(CPU) or row.get(FUSED)


def _torch(row: dict) -> dict | None:
    return row.get("torch")


def _best_flax(row: dict) -> tuple[str, dict] | None:
    flax = [(k, v) for k, v in row.items() if k.startswith("flax")]
    return min(flax, key=lambda kv: kv[1]["median_ms"]) if flax else None


def _ratio(ours: dict | None, theirs: dict | None) -> str:
    if not ours or not theirs:
        return "–"
    return f"{ours['median_ms'] / theirs['median_ms']:.2f}x"


def header(lines: list[dict]) -> str:
    first = next((line for line in lines if "machine" in line), None)
    if first is None:
        return ""
    versions = f"jax {first['jax']}"
    load = f", load {first['load_1min']}" if "load_1min" in first else ""
    return (
        f"{first['machine']} ({first['platform']}), {versions}, {first['date']}{load}"
    )


def table(lines: list[dict], measure: str) -> str:
    """One row per problem, one column per implementation (median ms), and
    jaxrnn's ratios (what impl="auto" ran) to PyTorch fp32, to the best Flax
    cell and to the jaxrnn reference, and the kernels' to the fused path."""
    rows = _problems(lines).get(measure, {})
    if not rows:
        return ""
    impls = list(dict.fromkeys(name for row in rows.values() for name in row))
    stacks = any(k[5] for k in rows)
    head = ["cell", "B", "T", "D=H" if all(k[3] == k[4] for k in rows) else "D, H"]
    head += ["layers"] if stacks else []
    head += impls
    head += ["jaxrnn / torch", "jaxrnn / best flax", "jaxrnn / scan", "cpu / fused"]
    out = [
        f"**{measure}**: median ms over repeats ({header(lines)})",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for (cell, b, t, d, h, stack), row in rows.items():
        size = str(h) if d == h else f"{d}, {h}"
        cells = [cell, str(b), str(t), size] + ([stack or "1"] if stacks else [])
        cells += [f"{row[n]['median_ms']:.1f}" if n in row else "–" for n in impls]
        ours = _ours(row)
        best = _best_flax(row)
        cells += [
            _ratio(ours, _torch(row)),
            _ratio(ours, best[1] if best else None),
            _ratio(ours, row.get("jaxrnn scan")),
            _ratio(row.get(CPU), row.get(FUSED)),
        ]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def compile_table(lines: list[dict], measure: str = "train_step") -> str:
    """Compile time (s) of every JAX implementation, per problem."""
    rows = _problems(lines).get(measure, {})
    impls = list(
        dict.fromkeys(
            n for row in rows.values() for n, v in row.items() if v["compile_s"] > 0
        )
    )
    if not impls:
        return ""
    out = [
        f"**compile time of the {measure}** (s, lowering included)",
        "",
        "| cell | B | T | H | " + " | ".join(impls) + " |",
        "|" + "---|" * (4 + len(impls)),
    ]
    for (cell, b, t, _, h, stack), row in rows.items():
        vals = [f"{row[n]['compile_s']:.2f}" if n in row else "–" for n in impls]
        size = f"{h} ({stack})" if stack else str(h)
        out.append(f"| {cell} | {b} | {t} | {size} | " + " | ".join(vals) + " |")
    return "\n".join(out)


def markdown(lines: list[dict]) -> str:
    parts = [table(lines, m) for m in ("train_step", "forward")]
    parts.append(compile_table(lines))
    if any(parts):
        parts.append(COLUMNS)
    skipped = sorted(
        {
            f"{line['impl']}: {line['reason']}"
            for line in lines
            if line.get("status") == "skipped"
        }
    )
    wrong = [
        f"{line['impl']} on {line['cell']} B={line['B']} T={line['T']} H={line['H']}: "
        f"max |ys - reference| = {line['max_abs_err']:.2e}"
        for line in lines
        if line.get("status") == "mismatch"
    ]
    if skipped:
        parts.append("Not run here: " + "; ".join(skipped) + ".")
    if wrong:
        parts.append(
            "Not timed, outputs differ from the reference: " + "; ".join(wrong)
        )
    return "\n\n".join(p for p in parts if p) + "\n"


def chart(lines: list[dict], path: str | os.PathLike) -> bool:
    """A PNG of every implementation's time relative to PyTorch fp32 (or to
    the fused path where torch was not run), grouped by problem, one panel
    per measure. Returns False when matplotlib is not installed."""
    try:
        # A Figure without pyplot: no backend is switched (a notebook's inline
        # plots keep working) and nothing global is left open.
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle
        from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter
    except ImportError:
        return False
    problems = _problems(lines)
    measures = [m for m in ("train_step", "forward") if m in problems]
    if not measures:
        return False
    columns = list(
        dict.fromkeys(c for m in measures for row in problems[m].values() for c in row)
    )
    colors = {c: f"C{i % 10}" for i, c in enumerate(columns)}
    groups = max(len(problems[m]) for m in measures)
    fig = Figure(figsize=(6.5 * len(measures), 1.2 + 0.55 * groups * len(columns) / 3))
    axes = fig.subplots(1, len(measures), squeeze=False)
    for ax, measure in zip(axes[0], measures):
        ticks, labels = [], []
        y = 0.0
        for (cell, b, t, _, h, stack), row in problems[measure].items():
            base = _torch(row) or row.get(FUSED)
            if base is None:
                continue
            start = y
            for column in columns:
                if column in row:
                    ratio = row[column]["median_ms"] / base["median_ms"]
                    ax.barh(y, ratio, height=0.8, color=colors[column])
                    y += 1
            ticks.append((start + y - 1) / 2)
            stacked = f" {stack}" if stack else ""
            labels.append(f"{cell}\nB={b} T={t}\nH={h}{stacked}")
            y += 1.0
        ax.set_yticks(ticks, labels, fontsize=7)
        ax.invert_yaxis()
        ax.axvline(1.0, color="k", lw=0.8)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator([0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4]))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("time relative to torch fp32 (lower is faster)")
        ax.set_title(f"{measure}\n{header(lines)}", fontsize=8)
    handles = [Rectangle((0, 0), 1, 1, color=colors[c]) for c in columns]
    fig.legend(
        handles,
        columns,
        loc="lower center",
        ncol=min(5, len(columns)),
        fontsize=7,
        frameon=False,
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    return True
