"""The command line: train, resume, eval, generate and compare, and bad input
answered with a message and a non-zero status, never a traceback."""

import importlib.util
import json

import numpy as np
import pytest

from jaxrnn._cli import main

pytestmark = pytest.mark.usefixtures("standard_promotion")

SMALL = "--seq-len 12 --hidden-size 8 --batch-size 8 --eval-size 50 --chunk 10"


def run(capsys, args):
    status = main(args.split())
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.mark.slow
def test_train_resume_eval_round_trip(capsys, tmp_path):
    out = tmp_path / "run"
    status, stdout, stderr = run(
        capsys, f"train --cell lstm --steps 20 --eval-every 10 {SMALL} --out {out}"
    )
    assert status == 0
    assert "test mse" in stdout and "predict_1" in stdout and str(out) in stdout
    assert "20/20" in stderr and "valid_mse=" in stderr  # the progress bar
    assert "kept the best checkpoint, of step" in stdout
    status, stdout, _ = run(capsys, f"train --resume {out} --steps 30 --json --quiet")
    assert status == 0
    resumed = json.loads(stdout)
    assert resumed["steps"] == 30 and resumed["run_dir"] == str(out)
    status, stdout, _ = run(capsys, f"eval {out} --json")
    assert status == 0
    evaluated = json.loads(stdout)
    assert evaluated["metrics"] == resumed["metrics"]
    best = resumed["kept"]["step"]  # the best of the validations at 10, 20, 30
    assert evaluated["kept"] == {"keep": "best", "step": best} and best in (10, 20, 30)
    status, stdout, _ = run(capsys, f"eval {out}")
    assert f"the best checkpoint, of step {best})" in stdout and "verdict" in stdout


def test_resume_takes_no_other_run_flags(capsys, tmp_path):
    out = tmp_path / "run"
    assert run(capsys, f"train --steps 10 {SMALL} --out {out} --quiet")[0] == 0
    status, _, stderr = run(capsys, f"train --resume {out} --hidden-size 9")
    assert status == 2 and "only --steps may be given, got --hidden-size" in stderr
    # A second run into the same folder is refused before anything is printed.
    status, stdout, stderr = run(capsys, f"train --steps 10 {SMALL} --out {out}")
    assert status == 2 and "already holds a run" in stderr and stdout == ""


@pytest.mark.slow
def test_generate_prints_a_sample(capsys, tmp_path):
    out = tmp_path / "chars"
    args = "train --task chars --hidden-size 8 --seq-len 16 --steps 10 --chunk 10"
    args += f" --out {out} --quiet"
    assert run(capsys, args)[0] == 0
    status, stdout, _ = run(capsys, f"generate {out} --prompt Ham --length 25 --json")
    assert status == 0
    sample = json.loads(stdout)
    assert sample["prompt"] == "Ham" and len(sample["text"]) == 25
    status, _, stderr = run(capsys, f"generate {out} --prompt @")
    assert status == 2 and "others: '@'" in stderr


@pytest.mark.slow
def test_compare_prints_one_table(capsys):
    status, stdout, _ = run(
        capsys, f"compare --cell rnn gru --steps 10 {SMALL} --quiet"
    )
    assert status == 0
    lines = stdout.splitlines()
    assert lines[0].startswith("adding: rnn, gru with the same budget")
    assert any(line.startswith("rnn ") for line in lines)
    assert any(line.startswith("gru ") for line in lines)
    status, stdout, _ = run(capsys, f"compare --cell lstm --steps 10 {SMALL} --json")
    (row,) = [json.loads(line) for line in stdout.splitlines()]
    assert row["cell"] == "lstm" and row["metric"] == "mse"


@pytest.mark.parametrize(
    "argv,message",
    [
        ("train --task mnist", "invalid choice: 'mnist'"),
        ("compare --cell transformer", "invalid choice: 'transformer'"),
        ("train --hidden-size 0", "expected a positive int, got '0'"),
        ("train --learning-rate fast", "expected a float, got 'fast'"),
        ("train --clip-norm -1", "expected a positive float"),
        ("generate", "the following arguments are required: run_dir"),
        ("", "the following arguments are required: command"),
    ],
)
def test_bad_flags_exit_2_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv.split())
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_runs_exit_2_with_a_message(capsys, tmp_path, monkeypatch):
    status, _, stderr = run(capsys, "train --seq-len 1")
    assert status == 2 and "at least 2 for the adding problem" in stderr
    status, _, stderr = run(capsys, f"eval {tmp_path}")
    assert status == 2 and "is not a run directory" in stderr
    blocker = tmp_path / "file"
    blocker.write_text("x")
    status, _, stderr = run(capsys, f"train --out {blocker}/run --steps 10")
    assert status == 2 and "cannot write the run directory" in stderr
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "statsmodels" else real(name, *a),
    )
    status, _, stderr = run(capsys, f"train --task sunspots --out {tmp_path}/s")
    assert status == 2 and "pip install 'jaxrnn[data]'" in stderr


def test_info_json(capsys):
    status, stdout, _ = run(capsys, "info --json")
    assert status == 0 and json.loads(stdout)["backend"] == "cpu"


def test_info_says_whether_the_cpu_kernels_run(capsys, monkeypatch):
    from jaxrnn.fast import _cpu

    state = _cpu.status()
    status, stdout, _ = run(capsys, "info")
    line = next(line for line in stdout.splitlines() if "kernels:" in line)
    if state.available:
        assert f"compiled ({state.engine}, {state.threads} threads)" in line
    missing = _cpu.Status(False, "avx2", 2, "", "no C++ compiler found (set CXX)")
    monkeypatch.setattr(_cpu, "status", lambda: missing)
    status, stdout, _ = run(capsys, "info")
    assert (
        "kernels: not available (no C++ compiler found (set CXX)); impl='auto'"
        in stdout
    )


def test_resume_at_or_below_the_checkpoint_is_refused(capsys, tmp_path):
    out = tmp_path / "run"
    assert run(capsys, f"train --steps 10 {SMALL} --out {out} --quiet")[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    status, _, stderr = run(capsys, f"train --resume {out} --steps 5 --quiet")
    assert status == 2 and "already at step 10" in stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_progress_after_a_resume_counts_only_the_new_steps(monkeypatch, capsys):
    from jaxrnn.runs import _progress

    clock = iter([100.0, 110.0])  # the first call, the second
    monkeypatch.setattr(_progress.time, "perf_counter", lambda: next(clock))
    bar = _progress.Progress("resume")
    bar(350, 500, {"loss": 0.6})  # the first chunk after a checkpoint at 300
    first = capsys.readouterr().err.splitlines()[-1]
    assert "350/500" in first and "it/s" not in first  # no rate from one point
    bar(400, 500, {"loss": 0.5})  # then 50 steps in 10 s
    last = capsys.readouterr().err.splitlines()[-1]
    assert "400/500" in last and " 5 it/s eta 20s" in last


def test_help_shows_every_task_default(capsys):
    from jaxrnn import runs
    from jaxrnn._cli import build_parser
    from jaxrnn.runs import _config

    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    checked = 0
    for action in train._actions:
        name = action.dest
        if name in (
            "task",
            "cell",
            "forget_bias",
            "update_bias",
            "activation",
            "data",  # your own file: no task's default
            "column",
        ) or not hasattr(runs.RunConfig, name):
            continue
        help_text = " ".join(action.help.split())
        shown = help_text[help_text.rindex("(") + 1 : -1]
        common = shown.split(";")[0]
        for task in _config.TASKS:
            value = getattr(_config.example(task).resolved(), name)
            value = "none" if value is None else str(value)
            assert value == common or f"{task} {value}" in shown, (name, task)
        checked += 1
    assert checked >= 19
    generate = parser._subparsers._group_actions[0].choices["generate"]
    text = generate.format_help()
    assert "default: 300" in text and "default: 0.8" in text


def test_a_closed_pipe_ends_quietly():
    import subprocess
    import sys

    child = subprocess.Popen(
        [sys.executable, "-m", "jaxrnn", "info"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    child.stdout.close()  # the reader is gone before the first write
    _, stderr = child.communicate(timeout=120)
    assert b"Traceback" not in stderr and b"BrokenPipe" not in stderr
    assert child.returncode == 141


def test_your_own_series_and_text_from_the_command_line(capsys, tmp_path, monkeypatch):
    """--data FILE makes a series or a text task by the file's ending; eval
    and generate read the file again from anywhere; a bad file exits 2 with
    its name and line, before anything is printed or written."""
    values = 10 + np.sin(np.arange(300) / 4.0)
    csv = tmp_path / "load.csv"
    csv.write_text("t,load\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    text = tmp_path / "poem.txt"
    text.write_text("to be or not to be, that is the question. " * 40)
    out = tmp_path / "runs"
    flags = "--steps 20 --eval-every 10 --hidden-size 8 --quiet"
    status, stdout, _ = run(
        capsys, f"train --data {csv} --column load {flags} --out {out}/s"
    )
    assert status == 0 and "series: training lstm" in stdout and "linear_ar" in stdout
    monkeypatch.chdir(tmp_path.parent)  # the run keeps the file's absolute path
    status, stdout, _ = run(capsys, f"eval {out}/s --json")
    assert status == 0 and json.loads(stdout)["task"] == "series"
    status, stdout, _ = run(
        capsys, f"train --data {text} --seq-len 16 {flags} --out {out}/t"
    )
    assert status == 0 and "unigram" in stdout
    status, stdout, _ = run(capsys, f"generate {out}/t --prompt to --length 10")
    assert status == 0 and stdout.startswith("to") and len(stdout.strip()) == 12
    bad = tmp_path / "bad.csv"
    bad.write_text("t,load\n0,1.5\n1,oops\n")
    status, stdout, stderr = run(
        capsys, f"train --data {bad} --column load --out {out}/b"
    )
    assert status == 2 and stdout == ""
    assert f"{bad}, line 3, column 'load': 'oops' is not a number" in stderr
    assert not (out / "b").exists()
