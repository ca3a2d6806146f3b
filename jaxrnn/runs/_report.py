"""Reading runs back: evaluate a run directory, sample from it, compare cells."""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Callable, Sequence

import jax

from jaxrnn import io
from jaxrnn.runs import _files, _result, _train
from jaxrnn.runs._config import RunConfig
from jaxrnn.runs._model import sample_text


def kept(run_dir: str, config: RunConfig) -> str:
    """Which checkpoint a run keeps: "best" where `config.keep` says so and
    best.npz is there (a run from before it keeps its last), else "last"."""
    best = os.path.exists(os.path.join(run_dir, _files.BEST))
    return "best" if config.keep == "best" and best else "last"


def load_run(run_dir: str | os.PathLike):
    """(config, task, model, step) of the checkpoint that a run keeps
    (`RunConfig.keep`: the best validation's, or the last).

    Raises:
        RunError: no run there, or a missing, corrupt, truncated or
            mismatched checkpoint (nothing in the folder is changed).
    """
    run_dir = os.fspath(run_dir)
    config = RunConfig.from_dict(_files.read_json(run_dir, _files.CONFIG)["config"])
    task, model, _, opt_state = _train.build(config)
    path = os.path.join(run_dir, _files.CHECKPOINT)
    if not os.path.exists(path):
        raise _files.RunError(
            f"{run_dir!r} has no checkpoint yet ({_files.CHECKPOINT}); one is written "
            f"at every validation (every {config.eval_every} steps)."
        )
    like = {"model": model, "opt_state": opt_state}
    if kept(run_dir, config) == "best":
        path, like = os.path.join(run_dir, _files.BEST), {"model": model}
    try:
        saved = io.load(path, like)
        step = int(io.load_metadata(path)["step"])
    except (ValueError, KeyError, TypeError) as error:
        raise _files.RunError(f"cannot use the checkpoint {path!r}: {error}") from None
    return config, task, saved["model"], step


def evaluate_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The metrics of the checkpoint a run keeps on every split, beside the
    baselines; "kept" says which ({"keep": "best" or "last", "step": its
    step}), as in `fit`'s result."""
    config, task, model, step = load_run(run_dir)
    result = _result.summarize(config, task, model, _train.make_evaluate(config, task))
    return result | {
        "steps": step,
        "checkpoint_step": step,
        "kept": {"keep": kept(os.fspath(run_dir), config), "step": step},
        "run_dir": os.fspath(run_dir),
    }


def generate_run(
    run_dir: str | os.PathLike,
    prompt: str,
    length: int = 300,
    *,
    temperature: float = 0.8,
    seed: int = 0,
) -> str:
    """Sample `length` characters after `prompt` from a character model's run."""
    config, task, model, _ = load_run(run_dir)
    return sample_text(
        model,
        config,
        task,
        prompt,
        length,
        temperature=temperature,
        key=jax.random.key(seed),
    )


def compare(
    config: RunConfig,
    cells: Sequence[str] = ("rnn", "lstm", "gru"),
    *,
    seeds: Sequence[int] | None = None,
    out: str | os.PathLike | None = None,
    progress: Callable[[str], Callable] | None = None,
    on_result: Callable[[dict], None] | None = None,
) -> list[dict[str, Any]]:
    """Train each cell with the same config and budget; one result per run.

    A run that diverges (`Diverged`) does not stop the comparison: its result
    has the verdict "diverged", NaN metrics and the reason.

    Args:
        config: everything but the cell (and the seed, where seeds are given).
        cells: the cells, trained one after the other.
        seeds: the seeds to train each cell with (default: config.seed).
        out: a folder for one run directory per run (out/CELL, or
            out/CELL-seedS with several seeds) and compare.png, or None to
            keep everything in memory.
        progress: `progress(label)` returns the progress callback of a run.
        on_result: called with each result as it is ready.
    """
    seeds = [config.seed] if seeds is None else list(seeds)
    runs = [(cell, seed) for cell in cells for seed in seeds]

    def label(cell, seed):
        return cell if len(seeds) == 1 else f"{cell}-seed{seed}"

    if out is not None:
        out = os.fspath(out)
        for cell, seed in runs:
            _files.prepare(os.path.join(out, label(cell, seed)))
    results = []
    for cell, seed in runs:
        run_config = dataclasses.replace(config, cell=cell, seed=seed)
        run_dir = None if out is None else os.path.join(out, label(cell, seed))
        callback = None if progress is None else progress(label(cell, seed))
        try:
            result = _train.fit(run_config, run_dir, progress=callback)
        except _train.Diverged as error:
            result = _diverged(run_config, str(error), run_dir)
        result["seed"] = seed
        results.append(result)
        if on_result is not None:
            on_result(result)
    if out is not None and results:
        task, _, _, _ = _train.build(config.resolved())
        curves = {label(r["cell"], r["seed"]): r["history"] for r in results}
        _files.plot_curves(
            os.path.join(out, "compare.png"),
            curves,
            task.metric,
            task.baselines.get("valid", {}),
            task.description[:110],
        )
    return results


def _diverged(config: RunConfig, reason: str, run_dir) -> dict[str, Any]:
    config = config.resolved()
    task, model, _, _ = _train.build(config)
    nan = {name: math.nan for name in (task.metric, "loss")}
    metrics = {split: dict(nan) for split in task.splits}
    history = [] if run_dir is None else _files.read_metrics(run_dir)
    result = _result.record(config, task, model, metrics, "diverged")
    return result | {"reason": reason, "history": history}


def seeds_table(results: Sequence[dict]) -> str:
    """One row per cell over its seeds: mean, sd, min and max of the headline
    metric over the runs that did not diverge, and how many beat the baselines."""
    split, metric = results[0]["split"], results[0]["metric"]
    rows = [
        [
            "cell",
            "seeds",
            "diverged",
            f"{split} {metric} mean",
            "sd",
            "min",
            "max",
            "beat every baseline",
        ]
    ]
    for cell in dict.fromkeys(r["cell"] for r in results):
        mine = [r for r in results if r["cell"] == cell]
        values = [
            r["metrics"][split][metric] for r in mine if r["verdict"] != "diverged"
        ]
        mean = sum(values) / len(values) if values else math.nan
        sd = (
            math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
            if len(values) > 1
            else math.nan
        )
        wins = sum(r["verdict"].startswith("beats") for r in mine)
        rows.append(
            [
                cell,
                str(len(mine)),
                f"{len(mine) - len(values)}/{len(mine)}",
                _fmt(mean),
                _fmt(sd),
                _fmt(min(values)) if values else "-",
                _fmt(max(values)) if values else "-",
                f"{wins}/{len(mine)}",
            ]
        )
    return table(rows)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def results_table(results: Sequence[dict]) -> str:
    """One row per run: the headline metric and the others, on the final split."""
    first = next((r for r in results if r["verdict"] != "diverged"), results[0])
    several = len({r.get("seed") for r in results}) > 1
    split, metric = first["split"], first["metric"]
    values = first["metrics"][split]
    # The loss is shown where it is not another metric under a second name
    # (the MSE, or the scaled MSE of a forecast).
    hidden = {metric, "loss"} if "mse" in values else {metric}
    names = [metric] + [m for m in values if m not in hidden]
    head = [
        "cell",
        *(["seed"] if several else []),
        "params",
        *(f"{split} {n}" for n in names),
        "verdict",
        "steps",
        "time",
    ]
    rows = [head]
    for r in results:
        values = r["metrics"][r["split"]]
        seconds = r.get("compile_s", 0.0) + r.get("train_s", 0.0)
        rows.append(
            [
                r["cell"],
                *([str(r.get("seed"))] if several else []),
                str(r["params"]),
                *(_fmt(values.get(n)) for n in names),
                r["verdict"],
                str(r["steps"]),
                f"{seconds:.0f}s" if seconds else "-",
            ]
        )
    return table(rows)


def baselines_table(result: dict) -> str:
    """The baselines of a result's task on its final split."""
    split, metric = result["split"], result["metric"]
    baselines = result["baselines"][split]
    names = [metric] + sorted({m for v in baselines.values() for m in v if m != metric})
    rows = [["baseline", *(f"{split} {n}" for n in names)]]
    for name, values in baselines.items():
        rows.append([name, *(_fmt(values.get(n)) for n in names)])
    return table(rows)
