"""Training runs: run directories, checkpoints that resume exactly, evaluation,
sampling, comparison, and every kind of bad input refused with its message."""

import dataclasses
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrnn import io, runs
from jaxrnn.cells import _registry as _cells
from jaxrnn.runs import _files, _result, _train

pytestmark = pytest.mark.usefixtures("standard_promotion")

SMALL = runs.RunConfig(
    task="adding",
    cell="gru",
    hidden_size=8,
    seq_len=10,
    batch_size=8,
    steps=40,
    chunk=10,
    eval_every=20,
    eval_size=64,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small run, trained once for the module: (its folder, its result)."""
    folder = tmp_path_factory.mktemp("trained") / "run"
    with jax.numpy_dtype_promotion("standard"):
        result = runs.fit(SMALL, folder)
    return folder, result


@pytest.fixture
def run_copy(trained, tmp_path):
    """A copy of the trained run that a test may damage."""
    shutil.copytree(trained[0], tmp_path / "run")
    return tmp_path / "run"


def _files_of(run_dir):
    return {path.name: path.read_bytes() for path in sorted(run_dir.iterdir())}


def test_fit_writes_a_run_directory(trained):
    folder, result = trained
    names = set(os.listdir(folder))
    assert {"config.json", "metrics.jsonl", "checkpoint.npz", "result.json"} <= names
    assert ("loss.png" in names) == _files.have_matplotlib()
    record = json.loads((folder / "config.json").read_text())
    assert record["config"] == SMALL.resolved().to_dict() and record["jax"]
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["step"] for r in rows if r["split"] == "train"] == [10, 20, 30, 40]
    assert [r["step"] for r in rows if r["split"] == "valid"] == [20, 40]
    assert set(result["metrics"]) == {"valid", "test"}
    assert result["verdict"].startswith(("beats", "does not beat"))
    saved = json.loads((folder / "result.json").read_text())
    assert saved["metrics"] == result["metrics"] and "history" not in saved
    assert io.load_metadata(folder / "checkpoint.npz")["step"] == 40


@pytest.mark.slow
def test_resume_continues_exactly_where_the_run_stopped(trained, tmp_path):
    whole = trained[1]
    runs.fit(dataclasses.replace(SMALL, steps=20), tmp_path / "part")
    # A crash after the checkpoint: a logged row past it and a torn line.
    with open(tmp_path / "part" / "metrics.jsonl", "a") as f:
        f.write('{"step": 30, "split": "train", "loss": 1.0}\n{"step": 4')
    resumed = runs.fit(run_dir=tmp_path / "part", resume=True, steps=40)
    assert resumed["metrics"] == whole["metrics"]
    a, b = _files_of(trained[0]), _files_of(tmp_path / "part")
    like = _train.build(SMALL.resolved())
    like = {"model": like[1], "opt_state": like[3]}
    ca = io.load(trained[0] / "checkpoint.npz", like)
    cb = io.load(tmp_path / "part" / "checkpoint.npz", like)
    for x, y in zip(jax.tree.leaves(ca), jax.tree.leaves(cb)):
        assert np.array_equal(x, y)
    strip = lambda text: [
        {k: v for k, v in json.loads(line).items() if k != "time_s"}
        for line in text.decode().splitlines()
    ]
    assert strip(a["metrics.jsonl"]) == strip(b["metrics.jsonl"])
    assert json.loads(b["config.json"])["config"]["steps"] == 40


def test_evaluate_run_matches_the_result_of_training(trained):
    folder, result = trained
    again = runs.evaluate_run(folder)
    assert again["metrics"] == result["metrics"]
    assert again["checkpoint_step"] == again["kept"]["step"] == result["kept"]["step"]


def test_a_new_run_refuses_a_folder_that_holds_one(run_copy):
    before = _files_of(run_copy)
    with pytest.raises(runs.RunError, match="already holds a run.*--resume"):
        runs.fit(SMALL, run_copy)
    assert _files_of(run_copy) == before


def test_an_unwritable_run_directory_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(runs.RunError, match="cannot write the run directory"):
        runs.fit(SMALL, blocker / "run")


@pytest.mark.parametrize("damage", ["flip", "truncate", "mismatch", "delete"])
def test_a_bad_checkpoint_is_refused_and_nothing_changes(run_copy, damage):
    # The same damage to the last checkpoint (resume's) and the best (eval's).
    for path in (run_copy / "checkpoint.npz", run_copy / "best.npz"):
        raw = path.read_bytes()
        if damage == "flip":
            path.write_bytes(raw[:-200] + bytes([raw[-200] ^ 0xFF]) + raw[-199:])
        elif damage == "truncate":
            path.write_bytes(raw[: len(raw) // 2])
        elif damage == "mismatch":  # a checkpoint of another architecture
            _, model, _, opt_state = _train.build(
                dataclasses.replace(SMALL, hidden_size=9).resolved()
            )
            tree = {"model": model, "opt_state": opt_state}
            if path.name == "best.npz":
                tree = {"model": model}
            io.save(path, tree, metadata={"step": 40})
        elif path.name == "checkpoint.npz":
            path.unlink()
    before = _files_of(run_copy)
    message = "no checkpoint yet" if damage == "delete" else "checkpoint"
    with pytest.raises(runs.RunError, match=message):
        runs.evaluate_run(run_copy)
    with pytest.raises(runs.RunError):
        runs.fit(run_dir=run_copy, resume=True, steps=60)
    assert _files_of(run_copy) == before


def test_non_finite_losses_stop_the_run_and_keep_the_last_checkpoint(
    run_copy, monkeypatch
):
    checkpoint = (run_copy / "checkpoint.npz").read_bytes()
    build = _train.build

    def poisoned(config):  # from here on, every training batch is NaN
        task, *rest = build(config)
        draw = task.train_batch
        nan = lambda key, b: draw(key, b)._replace(xs=draw(key, b).xs * np.nan)
        return (task._replace(train_batch=nan), *rest)

    monkeypatch.setattr(_train, "build", poisoned)
    with pytest.raises(runs.Diverged, match=r"from step 40, is kept in"):
        runs.fit(run_dir=run_copy, resume=True, steps=80)
    assert (run_copy / "checkpoint.npz").read_bytes() == checkpoint
    last = (run_copy / "metrics.jsonl").read_text().splitlines()[-1]
    last = json.loads(last)
    assert last["skipped"] == 10 and last["loss"] is None  # NaN is written as null


@pytest.mark.slow
def test_a_character_model_samples_text(tmp_path):
    config = runs.RunConfig(
        task="chars", hidden_size=16, seq_len=16, steps=20, chunk=10
    )
    runs.fit(config, tmp_path / "chars")
    text = runs.generate_run(tmp_path / "chars", "Rosalind:\n", 40, temperature=0.8)
    assert len(text) == 40
    greedy = [
        runs.generate_run(tmp_path / "chars", "O", 30, temperature=0) for _ in "ab"
    ]
    assert greedy[0] == greedy[1]
    with pytest.raises(ValueError, match=r"others: '@'"):
        runs.generate_run(tmp_path / "chars", "a@b", 5)
    with pytest.raises(ValueError, match="at least one character"):
        runs.generate_run(tmp_path / "chars", "", 5)


def test_generate_needs_a_character_model(trained):
    with pytest.raises(ValueError, match="needs a character model"):
        runs.generate_run(trained[0], "x", 5)


@pytest.mark.slow
def test_compare_trains_each_cell_with_the_same_budget(tmp_path):
    results = runs.compare(SMALL, ("rnn", "lstm"), out=tmp_path / "cmp")
    assert [r["cell"] for r in results] == ["rnn", "lstm"]
    assert {r["steps"] for r in results} == {40}
    assert os.path.isdir(tmp_path / "cmp" / "rnn")
    assert os.path.exists(tmp_path / "cmp" / "compare.png") == _files.have_matplotlib()


@pytest.mark.parametrize(
    "change,message",
    [
        ({"task": "mnist"}, "task must be one of adding"),
        ({"cell": "transformer"}, "cell must be one of rnn"),
        ({"hidden_size": 0}, "hidden_size must be a positive int"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"learning_rate": float("nan")}, "learning_rate must be a positive finite"),
        ({"seq_len": 1}, "at least 2 for the adding problem"),
        ({"optimizer": "lion"}, "optimizer must be one of adam"),
        ({"schedule": "linear"}, "schedule must be one of constant, cosine"),
        ({"output_dropout": -0.1}, r"output_dropout must be in \[0, 1\)"),
    ],
)
def test_bad_configs_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(runs.RunConfig(), **change)


def test_task_defaults_fill_only_what_was_not_given():
    config = runs.RunConfig(task="chars", steps=120, chunk=50).resolved()
    assert config.hidden_size == 256 and config.seq_len == 64
    assert config.learning_rate == 2e-3 and config.steps == 120  # exactly
    assert runs.RunConfig(task="chars", hidden_size=8).resolved().hidden_size == 8


def test_a_cosine_schedule_warms_up_then_decays_to_zero():
    """--schedule cosine: the learning rate rises over the first 2% of the
    steps, peaks at --learning-rate, and reaches zero at the last step (an
    SGD update scales with it exactly)."""
    config = dataclasses.replace(
        SMALL,
        schedule="cosine",
        optimizer="sgd",
        steps=100,
        learning_rate=0.5,
        clip_norm=None,
    ).resolved()
    _, model, optimizer, state = _train.build(config)
    grads = jax.tree.map(jnp.ones_like, model)
    sizes = []
    for _ in range(100):
        updates, state = optimizer.update(grads, state, model)
        sizes.append(-float(jax.tree.leaves(updates)[0].ravel()[0]))
    assert sizes[0] == 0.0 and sizes[1] == pytest.approx(0.25)
    assert max(sizes) == pytest.approx(0.5) and sizes[2] == pytest.approx(0.5)
    assert sizes[-1] < 1e-3
    assert all(a >= b for a, b in zip(sizes[2:], sizes[3:]))  # decays from the peak


def test_output_dropout_drops_the_readout_inputs_in_training_only():
    """--output-dropout: in training, the layer's outputs enter the readout
    with inverted dropout (a fresh mask per key); in evaluation, not at all."""
    from jaxrnn.runs import _model

    config = dataclasses.replace(SMALL, output_dropout=0.5).resolved()
    plain = dataclasses.replace(SMALL).resolved()
    task, model, _, _ = _train.build(config)
    xs = task.splits["valid"].xs[:4]
    run = lambda c, **kw: _model.forward(model, xs, c, task, **kw)  # noqa: E731
    key = jax.random.key(3)
    np.testing.assert_array_equal(run(config), run(plain))
    dropped = run(config, training=True, key=key)
    assert not np.allclose(dropped, run(plain, training=True, key=key))
    assert not np.allclose(dropped, run(config, training=True, key=jax.random.key(4)))
    np.testing.assert_array_equal(dropped, run(config, training=True, key=key))


@pytest.mark.parametrize(
    "cell", [s.name for s in _cells.CELLS.values() if s.update_block is not None]
)
def test_update_bias_sets_the_z_block_only(cell):
    """Every GRU-like cell of the registry (gru, layer_norm_gru, cho_gru)."""
    small = dataclasses.replace(SMALL, cell=cell)
    task = _train.build(small.resolved())[0]
    key = jax.random.key(0)
    plain = runs.init_model(key, small.resolved(), task)
    config = dataclasses.replace(small, update_bias=1.5, num_layers=2).resolved()
    biased = runs.init_model(key, config, task)
    for cell in (c for layer in biased.layer.cells for c in layer):
        b = np.asarray(cell.b)
        assert (b[8:16] == 1.5).all() and not (b[:8] == 1.5).any()
    first = np.asarray(biased.layer.cells[0][0].b)
    base = np.asarray(plain.layer.cells[0][0].b)
    assert np.array_equal(np.delete(first, range(8, 16)), np.delete(base, range(8, 16)))


def test_recurrent_horizon_draws_the_indrnns_u_in_the_papers_range():
    """recurrent_horizon=T reaches init_indrnn's horizon (u from U(0,
    2^(1/T))) in every layer; cells without a horizon ignore it."""
    small = dataclasses.replace(SMALL, cell="indrnn", hidden_size=64, num_layers=2)
    task = _train.build(small.resolved())[0]
    key = jax.random.key(0)

    def u(config):
        model = runs.init_model(key, config.resolved(), task)
        return np.stack([np.asarray(c.w_hh) for c in model.layer.cells[0]])

    assert u(small).max() <= 1.0
    wide = u(dataclasses.replace(small, recurrent_horizon=1))  # U(0, 2)
    assert wide.max() > 1.0 and wide.max() <= 2.0
    narrow = u(dataclasses.replace(small, recurrent_horizon=100))
    assert narrow.max() <= 2 ** (1 / 100) and not np.array_equal(narrow, wide)
    gru = dataclasses.replace(SMALL, cell="gru")
    same = [
        runs.init_model(key, c.resolved(), task)
        for c in (gru, dataclasses.replace(gru, recurrent_horizon=100))
    ]
    jax.tree.map(np.testing.assert_array_equal, *same)
    with pytest.raises(ValueError, match="recurrent_horizon must be a positive int"):
        dataclasses.replace(small, recurrent_horizon=0)


def test_a_bidirectional_run_trains_evaluates_and_resumes(tmp_path):
    """bidirectional=True gives a two-direction layer whose readout reads
    both directions' outputs; eval and resume work on it."""
    config = dataclasses.replace(SMALL, bidirectional=True, steps=20, num_layers=2)
    result = runs.fit(config, tmp_path / "bi")
    task, model = _train.build(config.resolved())[:2]
    assert model.layer.num_directions == 2
    assert model.head.w_ya.shape == (task.output_size, 2 * config.hidden_size)
    assert runs.evaluate_run(tmp_path / "bi")["metrics"] == result["metrics"]
    resumed = runs.fit(run_dir=tmp_path / "bi", resume=True, steps=30)
    assert resumed["steps"] == 30
    with pytest.raises(ValueError, match="bidirectional must be False for the chars"):
        runs.RunConfig(task="chars", bidirectional=True)


def test_verdicts_need_a_real_margin():
    task = _train.build(SMALL.resolved())[0]  # adding: MSE must halve
    base = {"predict_1": {"mse": 0.16}}
    assert _result.verdict(task, {"mse": 0.09}, base, 1000).startswith("does not")
    assert _result.verdict(task, {"mse": 0.07}, base, 1000) == "beats predict_1"
    assert _result.verdict(task, {"mse": float("nan")}, base, 1000) == "diverged"
    # An accuracy must clear chance by two binomial standard errors.
    digits = task._replace(metric="accuracy", lower=False, info={})
    chance = {"uniform": {"accuracy": 0.1}}
    assert _result.verdict(digits, {"accuracy": 0.122}, chance, 360).startswith("does")
    assert _result.verdict(digits, {"accuracy": 0.2}, chance, 360) == "beats uniform"


def test_plots_leave_the_matplotlib_backend_alone(tmp_path):
    """Writing loss.png or a benchmark chart must not switch a notebook's
    backend (inline plots would stop showing) or leave figures open."""
    matplotlib = pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from jaxrnn.bench import _report

    previous = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        open_figures = plt.get_fignums()
        rows = [{"split": "train", "step": 1, "loss": 1.0}]
        rows.append({"split": "valid", "step": 1, "mse": 0.5})
        assert _files.plot_curves(
            str(tmp_path / "a.png"), {"lstm": rows}, "mse", {}, "title"
        )
        line = {"cell": "lstm", "B": 1, "T": 2, "D": 3, "H": 3, "status": "ok"}
        lines = [{**line, "measure": "forward", "impl": "torch", "median_ms": 1.0}]
        assert _report.chart(lines, tmp_path / "b.png")
        assert (tmp_path / "a.png").stat().st_size > 0
        assert (tmp_path / "b.png").stat().st_size > 0
        assert matplotlib.get_backend() == "svg"
        assert plt.get_fignums() == open_figures
    finally:
        matplotlib.use(previous)


def test_steps_and_validations_are_exact_whatever_the_chunk(trained, tmp_path):
    """Chunks end at every validation and at the last step, and the batches
    are a function of the step alone, so a chunk of 7 trains the same run."""
    config = dataclasses.replace(SMALL, steps=25, eval_every=15, chunk=10)
    result = runs.fit(config, tmp_path / "a")
    rows = result["history"]
    assert [r["step"] for r in rows if r["split"] == "train"] == [10, 15, 25]
    assert [r["step"] for r in rows if r["split"] == "valid"] == [15, 25]
    assert result["steps"] == 25
    assert io.load_metadata(tmp_path / "a" / "checkpoint.npz")["step"] == 25
    other = runs.fit(dataclasses.replace(config, chunk=7), tmp_path / "b")
    assert other["metrics"] == result["metrics"]
    # And the module's 40-step run, in chunks of 7 with no flag rounded.
    whole = runs.fit(dataclasses.replace(SMALL, chunk=7))
    assert whole["metrics"] == trained[1]["metrics"]


@pytest.mark.parametrize("steps", [40, 20])
def test_resume_that_would_train_nothing_changes_no_file(run_copy, steps):
    before = _files_of(run_copy)
    with pytest.raises(runs.RunError, match="already at step 40.*No file was changed"):
        runs.fit(run_dir=run_copy, resume=True, steps=steps)
    with pytest.raises(runs.RunError, match="complete at step 40.*No file was changed"):
        runs.fit(run_dir=run_copy, resume=True)
    assert _files_of(run_copy) == before


def test_resume_continues_the_clock_and_the_progress(run_copy):
    calls = []
    saved = io.load_metadata(run_copy / "checkpoint.npz")["clock"]
    resumed = runs.fit(
        run_dir=run_copy,
        resume=True,
        steps=60,
        progress=lambda *a: calls.append(a),
    )
    assert [c[:2] for c in calls] == [(50, 60), (60, 60)]
    assert all(set(c[2]) >= {"loss"} for c in calls)
    rows = [r for r in resumed["history"] if r["split"] == "train"]
    at_40 = [r["time_s"] for r in rows if r["step"] <= 40]
    after = [r["time_s"] for r in rows if r["step"] > 40]
    assert min(after) > saved["time_s"] >= max(at_40)
    assert resumed["train_s"] > saved["train_s"] > 0
    assert resumed["compile_s"] > saved["compile_s"] > 0
