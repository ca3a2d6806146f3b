"""Print a Markdown table of train-step results (jaxrnn beside PyTorch) from JSONL.

python benchmarks/report.py benchmarks/results/<machine>/train_step.jsonl
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def table(path: str) -> str:
    rows = [json.loads(line) for line in open(path)]
    latest = max(r["date"] for r in rows)
    by_problem = defaultdict(dict)
    for r in rows:
        if r["date"] != latest:
            continue
        key = (r["cell"], r["B"], r["T"], r["H"])
        impl = "torch" if r["impl"].startswith("torch") else "jaxrnn"
        by_problem[key][(impl, r["measure"])] = r
    first = next(r for r in rows if r["date"] == latest)
    lines = [
        f"{first['machine']}, jax {first['jax']}, {first['date']} "
        "(median of repeats, ms; compile time apart)",
        "",
        "| cell | B | T | D=H | jaxrnn fwd | torch fwd | jaxrnn train step | "
        "torch train step | ratio (train) | jaxrnn compile |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (cell, b, t, h), m in by_problem.items():
        get = lambda impl, what: m.get((impl, what), {}).get("median_ms")
        fmt = lambda v: "–" if v is None else f"{v:.1f}"
        ours, theirs = get("jaxrnn", "train_step"), get("torch", "train_step")
        ratio = "–" if not (ours and theirs) else f"{ours / theirs:.2f}x"
        compile_s = m[("jaxrnn", "train_step")]["compile_s"]
        lines.append(
            f"| {cell} | {b} | {t} | {h} | {fmt(get('jaxrnn', 'forward'))} | "
            f"{fmt(get('torch', 'forward'))} | {fmt(ours)} | {fmt(theirs)} | "
            f"{ratio} | {compile_s:.2f}s |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(sys.argv[1]))
