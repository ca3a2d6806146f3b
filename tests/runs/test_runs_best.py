"""Keep-best and early stopping in runs: the kept checkpoint, eval, resume."""

import dataclasses

import pytest

from jaxrnn import io, runs
from jaxrnn.runs import _train

pytestmark = pytest.mark.usefixtures("standard_promotion")

# Validations at steps 10, 20, ..., 60.
CONFIG = runs.RunConfig(
    task="adding",
    cell="gru",
    hidden_size=8,
    seq_len=10,
    batch_size=8,
    steps=60,
    chunk=10,
    eval_every=10,
    eval_size=64,
)
# The validation MSEs the runs see: the best is at step 20.
SCRIPT = [0.5, 0.3, 0.4, 0.35, 0.45, 0.5]


@pytest.fixture
def scripted(monkeypatch):
    """Training's validations read SCRIPT in order from `state["next"]`;
    every other evaluation (the result's, eval's) is the real one."""
    state = {"next": 0}
    real = _train.make_evaluate

    def make(config, task):
        evaluate = real(config, task)

        def fake(model, split):
            out = evaluate(model, split)
            if split == "valid" and state["next"] < len(SCRIPT):
                out = dict(out, mse=SCRIPT[state["next"]], loss=SCRIPT[state["next"]])
                state["next"] += 1
            return out

        return fake

    monkeypatch.setattr(_train, "make_evaluate", make)
    return state


@pytest.mark.slow
def test_the_best_checkpoint_is_kept_and_eval_scores_it(scripted, tmp_path):
    result = runs.fit(CONFIG, tmp_path / "best")
    assert result["kept"] == {"keep": "best", "step": 20, "valid": 0.3}
    assert result["steps"] == 60 and not result["stopped_early"]
    assert io.load_metadata(tmp_path / "best" / "best.npz")["step"] == 20
    assert io.load_metadata(tmp_path / "best" / "checkpoint.npz")["step"] == 60
    again = runs.evaluate_run(tmp_path / "best")
    assert again["kept"] == {"keep": "best", "step": 20}
    assert again["metrics"]["test"] == result["metrics"]["test"]
    # The kept model is the one at step 20: a run of 20 steps ends there.
    scripted["next"] = len(SCRIPT)  # real validations from here on
    short = runs.fit(dataclasses.replace(CONFIG, steps=20, keep="last"))
    assert short["metrics"]["test"] == result["metrics"]["test"]
    last = runs.fit(dataclasses.replace(CONFIG, keep="last"), tmp_path / "last")
    assert last["kept"] == {"keep": "last", "step": 60}
    assert runs.evaluate_run(tmp_path / "last")["kept"] == {"keep": "last", "step": 60}


def test_patience_stops_the_run_early(scripted, tmp_path):
    config = dataclasses.replace(CONFIG, patience=2)
    result = runs.fit(config, tmp_path / "run")
    # 0.4 at step 30 and 0.35 at step 40 do not beat 0.3: two validations.
    assert result["steps"] == 40 and result["stopped_early"]
    assert result["kept"]["step"] == 20
    with pytest.raises(runs.RunError, match="complete at step 40 .it stopped early"):
        runs.fit(run_dir=tmp_path / "run", resume=True)
    # Killed after its last checkpoint, before result.json: a resume writes
    # the result and trains no further step.
    log = (tmp_path / "run" / "metrics.jsonl").read_text()
    (tmp_path / "run" / "result.json").unlink()
    again = runs.fit(run_dir=tmp_path / "run", resume=True)
    assert again["steps"] == 40 and again["kept"] == result["kept"]
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == log


@pytest.mark.slow
def test_an_interrupted_run_resumes_with_its_best_and_patience_exact(
    scripted, tmp_path
):
    config = dataclasses.replace(CONFIG, patience=3)
    whole = runs.fit(config, tmp_path / "whole")
    scripted["next"] = 0

    def interrupt(step, steps, metrics):
        if step == 30:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runs.fit(config, tmp_path / "cut", progress=interrupt)
    scripted["next"] = 3  # the validations at 10, 20 and 30 were seen
    resumed = runs.fit(run_dir=tmp_path / "cut", resume=True)
    for key in ("kept", "steps", "stopped_early", "metrics"):
        assert resumed[key] == whole[key], key
    assert whole["steps"] == 50 and whole["kept"]["step"] == 20
