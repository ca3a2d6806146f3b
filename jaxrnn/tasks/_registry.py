"""The tasks that `jaxrnn train --task NAME` runs: data, loss, metrics, baselines.

A `Task` is plain data plus pure functions, so that a training loop can
generate its batches inside `jax.jit`: `train_batch(key, batch_size)` draws a
batch, `splits` holds the fixed validation and test sets, and
`per_example(outputs, batch)` returns each example's loss and metrics (means
over examples are what the loop reports). The validation and test sets of the
synthetic tasks come from fixed keys, the same for every seed.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrnn.tasks import _datasets, _forecast, _own, _synthetic, _text
from jaxrnn.tasks._synthetic import Batch


class Task(NamedTuple):
    """One sequence task, ready for a training loop.

    Attributes:
        name: the task's name.
        description: one sentence, with the baseline to beat.
        input_size: D of the recurrent layer (the vocabulary size for tokens).
        output_size: O of the readout.
        tokens: xs are int32 ids, one-hot encoded by the model.
        many_to_one: the readout reads the last step only (else every step).
        train_batch: `(key, batch_size) -> Batch`, pure.
        splits: {"valid": Batch, "test": Batch} (chars has "valid" only).
        per_example: `(outputs, batch) -> {name: [B]}`, with "loss" first.
        metric: the headline metric; `lower` says whether lower is better.
        baselines: {split: {baseline: {metric: value}}}.
        info: task facts worth recording (sizes, vocabulary, scaler).
    """

    name: str
    description: str
    input_size: int
    output_size: int
    tokens: bool
    many_to_one: bool
    train_batch: Callable[[jax.Array, int], Batch]
    splits: dict[str, Batch]
    per_example: Callable[[jax.Array, Batch], dict[str, jax.Array]]
    metric: str
    lower: bool
    baselines: dict[str, dict[str, dict[str, float]]]
    info: dict[str, Any]


def _xent(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(
        logits.astype(jnp.float32), labels
    )


def _adding(seq_len: int, eval_size: int, **_) -> Task:
    def per_example(outputs, batch):
        error = outputs[:, 0] - batch.ys[:, -1, 0]
        return {
            "loss": error**2,
            "mse": error**2,
            "solved": (jnp.abs(error) < 0.04).astype(jnp.float32),
        }

    splits = {
        name: _synthetic.make_adding_batch(jax.random.key(k), eval_size, seq_len)
        for name, k in (("valid", 1), ("test", 2))
    }
    baselines = {}
    for name, batch in splits.items():
        error = 1.0 - np.asarray(batch.ys[:, -1, 0], np.float64)
        baselines[name] = {
            "predict_1": {
                "mse": float(np.mean(error**2)),
                "solved": float(np.mean(np.abs(error) < 0.04)),
            }
        }
    return Task(
        "adding",
        f"adding problem, T={seq_len}: sum the two marked values; always "
        f"answering 1 scores MSE {_synthetic.ADDING_BASELINE_MSE:.3f}",
        2,
        1,
        False,
        True,
        lambda key, b: _synthetic.make_adding_batch(key, b, seq_len),
        splits,
        per_example,
        "mse",
        True,
        baselines,
        # "beats" the baseline means half its MSE (a sliver below it is noise).
        {"seq_len": seq_len, "margin": 0.5},
    )


def _copy(seq_len: int, eval_size: int, **_) -> Task:
    length = _synthetic.COPY_LENGTH

    def per_example(outputs, batch):
        hits = jnp.argmax(outputs[:, -length:], -1) == batch.ys[:, -length:]
        xent = _xent(outputs, batch.ys).mean(axis=1)
        return {"loss": xent, "recall": hits.mean(axis=1, dtype=jnp.float32)}

    splits = {
        name: _synthetic.make_copy_batch(jax.random.key(k), eval_size, seq_len)
        for name, k in (("valid", 1), ("test", 2))
    }
    memoryless = {
        "loss": _synthetic.copy_baseline_loss(seq_len),
        "recall": 1.0 / _synthetic.COPY_SYMBOLS,
    }
    return Task(
        "copy",
        f"copy memory, T={seq_len}: repeat 10 symbols after {seq_len} steps; "
        f"remembering nothing scores {memoryless['loss']:.4f} nats",
        _synthetic.COPY_SYMBOLS + 2,
        _synthetic.COPY_SYMBOLS + 2,
        False,
        False,
        lambda key, b: _synthetic.make_copy_batch(key, b, seq_len),
        splits,
        per_example,
        "loss",
        True,
        {name: {"memoryless": dict(memoryless)} for name in splits},
        # "beats" the baseline means 10% below it.
        {"seq_len": seq_len + 2 * length, "delay": seq_len, "margin": 0.9},
    )


def _sample(arrays: Batch) -> Callable[[jax.Array, int], Batch]:
    def draw(key, batch_size):
        rows = jax.random.randint(key, (batch_size,), 0, arrays.xs.shape[0])
        return jax.tree.map(lambda a: a[rows], arrays)

    return draw


def _digits(blanks: int, **_) -> Task:
    images, labels = _datasets.load_digits()
    order = np.random.default_rng(0).permutation(len(labels))
    xs = np.concatenate([images, np.zeros((len(labels), blanks, 8), np.float32)], 1)
    parts = {"test": order[:360], "valid": order[360:540], "train": order[540:]}
    data = {
        name: Batch(
            jnp.asarray(xs[rows]), jnp.asarray(labels[rows]), jnp.ones(len(rows), bool)
        )
        for name, rows in parts.items()
    }

    def per_example(outputs, batch):
        hit = jnp.argmax(outputs, -1) == batch.ys
        return {"loss": _xent(outputs, batch.ys), "accuracy": hit.astype(jnp.float32)}

    majority = np.bincount(labels[parts["train"]]).argmax()
    baselines = {
        name: {
            "majority_class": {
                "accuracy": float(np.mean(labels[parts[name]] == majority))
            },
            "uniform": {"loss": math.log(10), "accuracy": 0.1},
        }
        for name in ("valid", "test")
    }
    return Task(
        "digits",
        f"8x8 digits read row by row, then {blanks} blank steps: name the digit; "
        "chance is 10%",
        8,
        10,
        False,
        True,
        _sample(data["train"]),
        {"valid": data["valid"], "test": data["test"]},
        per_example,
        "accuracy",
        False,
        baselines,
        {"seq_len": 8 + blanks, "blanks": blanks, "train_size": len(parts["train"])},
    )


def _forecast_task(name: str, seq_len: int, horizon: int, **kw) -> Task:
    if name == "sine":
        values = np.asarray(_synthetic.make_sine_series(jax.random.key(0), 3000))
        period, text = None, "a noisy mix of periods 16 and 50 (generated)"
    elif name == "series":  # the user's file
        path, column = _data(kw), kw.get("column")
        values, period = _own.read_series(path, column), None
        text = f"{path}" + ("" if column is None else f", column {column}")
    else:
        series = _datasets.load_series(name)
        values, period, text = series.values, series.period, series.description
    try:
        data = _forecast.split_series(values, seq_len, horizon, period=period)
    except ValueError as error:
        raise ValueError(f"{text}: {error}") from None
    scaler = data.scaler

    def arrays(part: _forecast.Windows) -> Batch:
        xs = scaler.transform(part.inputs)[..., None].astype(np.float32)
        ys = scaler.transform(part.targets).astype(np.float32)
        return Batch(jnp.asarray(xs), jnp.asarray(ys), jnp.ones(len(xs), bool))

    def per_example(outputs, batch):
        # The readout forecasts the change from the window's last value, so a
        # model that outputs zeros is the last-value baseline.
        forecast = outputs + batch.xs[:, -1, :]
        error = (forecast - batch.ys).astype(jnp.float32)
        return {
            "loss": jnp.mean(error**2, axis=1),
            "mse": jnp.mean(error**2, axis=1) * scaler.std**2,
            "mae": jnp.mean(jnp.abs(error), axis=1) * scaler.std,
        }

    baselines = {split: _forecast.baselines(data, split) for split in ("valid", "test")}
    beat = "last-value, seasonal-naive and" if period else "last-value and"
    return Task(
        name,
        f"{text}: forecast the next {horizon} from the last {seq_len}; beat the "
        f"{beat} linear AR baselines",
        1,
        horizon,
        False,
        True,
        _sample(arrays(data.train)),
        {"valid": arrays(data.valid), "test": arrays(data.test)},
        per_example,
        "rmse",
        True,
        baselines,
        {
            "seq_len": seq_len,
            "horizon": horizon,
            "scaler": list(scaler),
            "bounds": list(data.bounds),
            "sizes": [len(p.start) for p in (data.train, data.valid, data.test)],
        },
    )


def _data(kw: dict) -> str:
    if not kw.get("data"):
        raise ValueError("make_task: the series and text tasks read data=FILE.")
    return kw["data"]


def _chars(seq_len: int, name: str = "chars", **kw) -> Task:
    if name == "text":  # the user's file
        path = _data(kw)
        text, what = _own.read_text(path), path
    else:
        text, what = _datasets.load_shakespeare(), "Shakespeare"
    vocab = _text.Vocab.from_text(text)
    train, valid = _text.split_text(vocab.encode(text))
    if min(len(train), len(valid)) <= seq_len:
        raise ValueError(
            f"{what}: its {len(text)} characters are too few for a training "
            f"and a validation window of {seq_len} (the last tenth validates): "
            f"expected at least {10 * (seq_len + 1)}; use a smaller --seq-len."
        )
    train_ids = jnp.asarray(train)

    def per_example(outputs, batch):
        return {"loss": _xent(outputs, batch.ys).mean(axis=1)}

    baselines = {
        "valid": {
            "unigram": {"loss": _text.unigram_loss(train, valid, vocab.size)},
            "uniform": {"loss": math.log(vocab.size)},
        }
    }
    return Task(
        name,
        f"next character of {what} ({len(train)} train, {len(valid)} "
        f"validation characters, vocabulary {vocab.size}), in nats per character",
        vocab.size,
        vocab.size,
        True,
        False,
        lambda key, b: _text.make_char_batch(key, train_ids, b, seq_len),
        {"valid": _text.char_windows(valid, seq_len)},
        per_example,
        "loss",
        True,
        baselines,
        {"seq_len": seq_len, "vocab": vocab.chars},
    )


# The tasks whose target at each step is the next input (language models):
# a bidirectional layer's backward direction would read it.
NEXT_STEP = frozenset({"chars", "text"})
# The tasks that read the user's file (make_task's data=).
OWN_DATA = ("series", "text")

# name: (builder, the defaults of the run's config for this task)
TASKS: dict[str, tuple[Callable[..., Task], dict[str, Any]]] = {
    "adding": (_adding, {"seq_len": 100, "steps": 2000, "learning_rate": 1e-2}),
    "copy": (_copy, {"seq_len": 20, "steps": 3000, "learning_rate": 3e-3}),
    "digits": (_digits, {"steps": 800, "learning_rate": 3e-3}),
    "sine": (
        lambda **kw: _forecast_task("sine", **kw),
        {"seq_len": 60, "steps": 1000, "learning_rate": 3e-3},
    ),
    "sunspots": (
        lambda **kw: _forecast_task("sunspots", **kw),
        {"seq_len": 22, "steps": 600, "learning_rate": 3e-3, "hidden_size": 32},
    ),
    "nile": (
        lambda **kw: _forecast_task("nile", **kw),
        {"seq_len": 10, "steps": 300, "learning_rate": 3e-3, "hidden_size": 16},
    ),
    "co2": (
        lambda **kw: _forecast_task("co2", **kw),
        {"seq_len": 104, "steps": 1000, "learning_rate": 3e-3},
    ),
    "chars": (
        _chars,
        {
            "seq_len": 64,
            "steps": 2000,
            "learning_rate": 2e-3,
            "hidden_size": 256,
            "eval_every": 250,
        },
    ),
    "series": (
        lambda **kw: _forecast_task("series", **kw),
        {"seq_len": 20, "steps": 600, "learning_rate": 3e-3},
    ),
    "text": (
        lambda **kw: _chars(name="text", **kw),
        {"seq_len": 64, "steps": 2000, "learning_rate": 2e-3, "eval_every": 250},
    ),
}


def make_task(
    name: str,
    *,
    seq_len: int = 100,
    horizon: int = 1,
    blanks: int = 0,
    eval_size: int = 1000,
    data: str | None = None,
    column: Any = None,
) -> Task:
    """Build a task by name: adding, copy, digits, sine, sunspots, nile, co2,
    chars; or your own file: series (a CSV column or a .npy array, forecast
    like the real series) and text (a character model, like chars).

    Args:
        name: the task.
        seq_len: T: the adding problem's length, the copy task's delay, the
            forecast window, the characters per training window. The digits
            task ignores it (8 rows plus `blanks`).
        horizon: steps forecast at once (forecasting tasks).
        blanks: blank steps appended to each digit.
        eval_size: sequences in the validation and test sets of the
            generated tasks (adding, copy).
        data: the file of the series and text tasks (`read_series`,
            `read_text`).
        column: the series' column in a CSV (a header name or an index) or
            a two-dimensional .npy (an index); None where there is one.

    Raises:
        ValueError: an unknown task, or sizes the task cannot take.
        MissingExtraError: the task's data package is not installed.
    """
    if name not in TASKS:
        raise ValueError(
            f"make_task: name must be one of {', '.join(TASKS)}, got {name!r}."
        )
    if name == "adding" and seq_len < 2:
        raise ValueError(
            f"make_task: the adding problem needs seq_len >= 2, got {seq_len}."
        )
    if (data is not None) != (name in OWN_DATA):
        raise ValueError(
            f"make_task: data=FILE goes with the {' and '.join(OWN_DATA)} tasks "
            f"(and they need one), got data={data!r} with name={name!r}."
        )
    builder, _ = TASKS[name]
    own = {} if data is None else {"data": data, "column": column}
    return builder(
        seq_len=seq_len, horizon=horizon, blanks=blanks, eval_size=eval_size, **own
    )
