"""The command line: `jaxrnn info` and a small `jaxrnn train`."""

import json
import subprocess
import sys

import pytest

from jaxrnn._cli import main

SMALL = [
    "train",
    "--steps",
    "20",
    "--chunk",
    "10",
    "--seq-len",
    "12",
    "--hidden-size",
    "8",
    "--batch-size",
    "8",
    "--test-size",
    "50",
]


def test_train_json_lines(capsys, standard_promotion):
    assert main(SMALL + ["--json", "--quiet", "--cell", "rnn", "lstm"]) == 0
    out = capsys.readouterr()
    rows = [json.loads(line) for line in out.out.splitlines()]
    assert [r["cell"] for r in rows] == ["rnn", "lstm"]
    for r in rows:
        assert r["steps"] == 20 and r["seq_len"] == 12 and r["hidden_size"] == 8
        assert 0.0 <= r["solved"] <= 1.0 and r["test_mse"] > 0
        assert r["baseline_mse"] == pytest.approx(1 / 6)
    assert out.err == ""  # --quiet: no progress bar


def test_train_a_cell_variant(capsys, standard_promotion):
    args = ["--steps", "10", "--chunk", "10", "--json", "--quiet"]
    assert main(SMALL + args + ["--cell", "layer_norm_lstm"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["cell"] == "layer_norm_lstm" and row["test_mse"] > 0


def test_train_table_and_progress(capsys, standard_promotion):
    assert main(SMALL + ["--cell", "gru", "--seed", "3"]) == 0
    out = capsys.readouterr()
    assert "cell" in out.out and "test MSE" in out.out and "gru" in out.out
    assert "20/20" in out.err and "loss=" in out.err  # the progress bar


def test_same_seed_same_result(capsys, standard_promotion):
    results = []
    for _ in range(2):
        main(SMALL + ["--json", "--quiet", "--cell", "lstm", "--seed", "5"])
        row = json.loads(capsys.readouterr().out)
        results.append((row["test_mse"], row["train_mse"]))
    assert results[0] == results[1]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--cell", "transformer"], "invalid choice: 'transformer'"),
        (["train", "--hidden-size", "0"], "expected a positive int, got '0'"),
        (["train", "--learning-rate", "fast"], "expected a float, got 'fast'"),
        (["train", "--seq-len", "1"], "the adding problem needs T >= 2"),
        (["train", "--clip-norm", "-1"], "expected a positive float"),
        ([], "the following arguments are required: command"),
    ],
)
def test_bad_flags_exit_2_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_info(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["backend"] in {"cpu", "gpu", "tpu"} and info["jax"]


def test_python_dash_m_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "jaxrnn", "train", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    for flag in (
        "--cell",
        "--hidden-size",
        "--seq-len",
        "--steps",
        "--learning-rate",
        "--clip-norm",
        "--seed",
        "--json",
    ):
        assert flag in result.stdout
