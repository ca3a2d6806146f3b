"""A run's result: its metrics beside the baselines, the verdict, the plot."""

from __future__ import annotations

import math
import os
from typing import Callable

import jax

from jaxrnn.runs import _files
from jaxrnn.runs._config import RunConfig
from jaxrnn.runs._model import Model


def plot(run_dir: str, rows: list[dict], task, config: RunConfig) -> None:
    title = f"{config.task}: {config.cell}, H={config.hidden_size}"
    path = os.path.join(run_dir, _files.PLOT)
    _files.plot_curves(path, {config.cell: rows}, task.metric, _baselines(task), title)


def _baselines(task) -> dict[str, dict[str, float]]:
    return task.baselines.get("valid", {})


def verdict(task, metrics: dict[str, float], baselines: dict, count: int) -> str:
    """Whether the model beats every baseline on the task's headline metric.

    Lower-is-better metrics must be below the baseline times the task's
    margin. An accuracy must be two standard errors of a binomial proportion
    over `count` examples above the baseline's, so that a chance-level model
    does not "beat" chance by luck.
    """
    name, value = task.metric, metrics.get(task.metric, math.nan)
    if not math.isfinite(value):
        return "diverged"
    margin = task.info.get("margin", 1.0)
    missed = []
    for baseline, values in baselines.items():
        if name not in values:
            continue
        ref = values[name]
        if task.lower:
            ok = value < ref * margin
        else:
            ok = value > ref + 2 * math.sqrt(ref * (1 - ref) / max(count, 1))
        if not ok:
            missed.append(baseline)
    if missed:
        return "does not beat " + ", ".join(missed)
    return "beats " + ", ".join(b for b, v in baselines.items() if name in v)


def record(config: RunConfig, task, model: Model, metrics: dict, verdict: str) -> dict:
    """A run's result: what was trained, its metrics, the baselines, the verdict."""
    return {
        "task": config.task,
        "cell": config.cell,
        "description": task.description,
        "metric": task.metric,
        "lower_is_better": task.lower,
        "split": "test" if "test" in task.splits else "valid",
        "metrics": metrics,
        "baselines": task.baselines,
        "verdict": verdict,
        "steps": config.steps,
        "params": sum(x.size for x in jax.tree.leaves(model)),
        "config": config.to_dict(),
    }


def summarize(config: RunConfig, task, model: Model, evaluate: Callable) -> dict:
    """Metrics on every split, the baselines, and the verdict on the last split."""
    metrics = {split: evaluate(model, split) for split in task.splits}
    final = "test" if "test" in metrics else "valid"
    count = task.splits[final].xs.shape[0]
    judged = verdict(task, metrics[final], task.baselines[final], count)
    return record(config, task, model, metrics, judged)
