"""A run directory: its files, written so that a crash loses nothing.

    RUN_DIR/config.json     the resolved RunConfig, the task, versions, date
    RUN_DIR/metrics.jsonl   one line per chunk (train) and per validation
    RUN_DIR/checkpoint.npz  model and optimizer state (`jaxrnn.io`: no
                            pickle, SHA-256 per array, atomic replace),
                            at the last validation: what resume reads
    RUN_DIR/best.npz        the model at the best validation (keep="best")
    RUN_DIR/result.json     the final evaluation
    RUN_DIR/loss.png        the loss curves (needs matplotlib: jaxrnn[plot])

Every whole-file write goes to a temporary file in the same folder and is
renamed over the target. metrics.jsonl is appended line by line; on resume it
is rewritten without the lines past the checkpoint and any torn last line.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import math
import os
import platform
import tempfile
from typing import Any

import jax
import optax

from jaxrnn._version import __version__
from jaxrnn.io._files import TEMPORARY_PREFIX, write_atomically

CONFIG, METRICS, CHECKPOINT, BEST, RESULT, PLOT = (
    "config.json",
    "metrics.jsonl",
    "checkpoint.npz",
    "best.npz",
    "result.json",
    "loss.png",
)


class RunError(Exception):
    """A run cannot start or go on; the message says why and what to do."""


def environment() -> dict[str, Any]:
    return {
        "jaxrnn": __version__,
        "jax": jax.__version__,
        "optax": optax.__version__,
        "python": platform.python_version(),
        "device": str(jax.devices()[0].device_kind),
        "backend": jax.default_backend(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
    }


def write_atomic(path: str, data: bytes | str) -> None:
    """Write a whole file through a temporary file and a rename."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    write_atomically(path, lambda f: f.write(raw))


def _json(value: Any) -> str:
    """JSON with NaN and infinities written as null (valid JSON everywhere)."""

    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    return json.dumps(clean(value))


def prepare(run_dir: str) -> None:
    """Create a new run directory; refuse one that already holds a run."""
    try:
        os.makedirs(run_dir, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=run_dir, prefix=".probe-")
        probe.close()
    except OSError as error:
        raise RunError(
            f"cannot write the run directory {run_dir!r}: {error.strerror or error}. "
            "Choose a writable --out."
        ) from None
    refuse_a_run(run_dir)


def refuse_a_run(run_dir: str) -> None:
    """Raise RunError where `run_dir` already holds a run."""
    if os.path.exists(os.path.join(run_dir, CONFIG)):
        raise RunError(
            f"{run_dir!r} already holds a run ({CONFIG}); nothing was changed. Pass "
            "--resume to continue it, or choose another --out."
        )


def remove_leftovers(run_dir: str) -> list[str]:
    """Delete the temporary files of writes that a killed process left in
    `run_dir` (never read: each write renames its file only when whole);
    return their names."""
    gone = []
    for name in sorted(os.listdir(run_dir)):
        if name.startswith((TEMPORARY_PREFIX, ".probe-")):
            try:
                os.remove(os.path.join(run_dir, name))
                gone.append(name)
            except OSError:
                pass
    return gone


def write_json(run_dir: str, name: str, value: Any) -> None:
    write_atomic(os.path.join(run_dir, name), _json(value) + "\n")


def read_json(run_dir: str, name: str) -> dict:
    path = os.path.join(run_dir, name)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise RunError(
            f"{run_dir!r} is not a run directory: it has no {name}. Give the "
            "folder that `jaxrnn train --out` wrote."
        ) from None
    except (OSError, ValueError) as error:
        raise RunError(f"cannot read {path!r}: {error}") from None


def append_metrics(run_dir: str | None, rows: list[dict]) -> None:
    if run_dir is None or not rows:
        return
    with open(os.path.join(run_dir, METRICS), "a", encoding="utf-8") as f:
        f.write("".join(_json(row) + "\n" for row in rows))


def read_metrics(run_dir: str, up_to: int | None = None) -> list[dict]:
    """The logged rows (a torn last line is skipped), up to a step if given."""
    rows = []
    path = os.path.join(run_dir, METRICS)
    if not os.path.exists(path):
        return rows
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if up_to is None or row.get("step", 0) <= up_to:
                rows.append(row)
    return rows


def rewind_metrics(run_dir: str, step: int) -> list[dict]:
    """Drop the rows logged after `step` (work lost since the checkpoint)."""
    rows = read_metrics(run_dir, step)
    write_atomic(os.path.join(run_dir, METRICS), "".join(_json(r) + "\n" for r in rows))
    return rows


def have_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def plot_curves(
    path: str,
    curves: dict[str, list[dict]],
    metric: str,
    baselines: dict[str, dict[str, float]],
    title: str,
) -> bool:
    """Training loss and the validation metric against step, one line per run.

    Returns False (and writes nothing) where matplotlib is not installed.
    """
    if not have_matplotlib():
        return False
    # A Figure without pyplot: no backend is switched and no global state is
    # touched, so a notebook's inline plots keep working.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4))
    left, right = fig.subplots(1, 2)
    # One colour per cell; the seeds of a cell ("lstm-seed1") differ in style.
    cells = list(dict.fromkeys(label.split("-seed")[0] for label in curves))
    styles = ["-", "--", ":", "-."]
    seen: dict[str, int] = {}
    for label, rows in curves.items():
        cell = label.split("-seed")[0]
        seen[cell] = seen.get(cell, -1) + 1
        look = {
            "color": f"C{cells.index(cell)}",
            "linestyle": styles[seen[cell] % len(styles)],
            "label": label,
        }
        train = [r for r in rows if r["split"] == "train" and r.get("loss") is not None]
        valid = [r for r in rows if r["split"] == "valid" and r.get(metric) is not None]
        left.plot([r["step"] for r in train], [r["loss"] for r in train], **look)
        right.plot(
            [r["step"] for r in valid], [r[metric] for r in valid], marker=".", **look
        )
    for name, values in baselines.items():
        if values.get(metric) is not None:
            right.axhline(values[metric], linestyle="--", color="gray", linewidth=1)
            right.annotate(
                name,
                (1.0, values[metric]),
                xycoords=("axes fraction", "data"),
                ha="right",
                va="bottom",
                color="gray",
            )
    left.set(xlabel="step", ylabel="training loss", title="training loss")
    right.set(
        xlabel="step", ylabel=f"validation {metric}", title=f"validation {metric}"
    )
    for axis in (left, right):
        if metric != "accuracy":
            axis.set_yscale("log")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize="small", ncol=2 if len(curves) > 4 else 1)
    fig.suptitle(title)
    fig.tight_layout()
    write_atomically(path, lambda f: fig.savefig(f, format="png", dpi=90))
    return True
