"""The benchmark harness: its grids, its correctness gate, its outputs.

Speed itself is never asserted here (benchmarks/README.md has the figures);
these tests check that the harness runs every implementation on the same
function, refuses to time one that computes something else, and writes what
it says it writes.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn import _cli, bench
from jaxrnn.bench import _cli as _bench_cli
from jaxrnn.bench import _impls, _report, _run

# Optax's Adam and the peers' own code need standard promotion rules.
pytestmark = pytest.mark.usefixtures("permissive_promotion")

TINY = [
    bench.Problem("lstm", 2, 5, 4, source="test"),
    bench.Problem("gru", 3, 4, 4, input_size=2, source="test"),
    bench.Problem("rnn", 2, 3, 4, measures=("forward",), source="test"),
]


def test_grids_are_valid_problems():
    for name, problems in bench.GRIDS.items():
        assert problems, name
        for p in problems:
            assert p.cell in ("lstm", "gru", "rnn")
            assert min(p.batch, p.seq_len, p.hidden, p.features) >= 1
            assert set(p.measures) <= {"forward", "train_step"}
    # The CPU grid is the five LSTM sizes, a GRU and an RNN.
    cells = [p.cell for p in bench.GRIDS["cpu"]]
    assert cells.count("lstm") == 5 and "gru" in cells and "rnn" in cells
    # FLOPs: 2 B T G H (D + H) forward, 3x for a training step.
    p = bench.Problem("gru", 2, 3, 5, input_size=7)
    assert p.flops("forward") == 2 * 2 * 3 * 3 * 5 * (7 + 5)
    assert p.flops("train_step") == 3 * p.flops("forward")


@pytest.mark.slow
def test_every_available_implementation_matches_and_is_timed():
    keys = ["jaxrnn-fused", "jaxrnn-scan", "flax-linen", "flax-nnx", "equinox"]
    keys.append("jax-cudnn")
    try:
        import torch  # noqa: F401

        keys.append("torch")
    except ImportError:
        pass
    lines = _run.run(TINY, keys, repeats=2, progress=lambda _: None)
    ok = [line for line in lines if line["status"] == "ok"]
    assert not [line for line in lines if line["status"] == "mismatch"]
    columns = {(line["cell"], line["column"]) for line in ok}
    assert ("lstm", "flax.linen Optimized") in columns
    assert ("gru", "equinox") in columns and ("rnn", "flax.nnx cell") in columns
    for line in ok:
        assert line["max_abs_err"] < 1e-5, line
        assert 0 < line["min_ms"] <= line["median_ms"]
        assert line["repeats"] == 2 and line["tokens_per_s"] > 0
        assert line["platform"] == jax.default_backend()
    # The RNN problem asks for the forward pass only.
    assert {line["measure"] for line in ok if line["cell"] == "rnn"} == {"forward"}
    # Skips say why (cuDNN and half precision need a GPU).
    skipped = [line for line in lines if line["status"] == "skipped"]
    if jax.default_backend() == "cpu":
        assert any("cuDNN" in line["impl"] for line in skipped)
        assert all(line["reason"] for line in skipped)


def test_an_implementation_that_computes_something_else_is_not_timed(monkeypatch):
    def wrong(layer, xs, targets):
        return _impls.JaxRunner(
            lambda p, x: 1.01 * jaxrnn.apply_layer(p, x)[0], layer, xs, targets
        )

    impl = _impls.Impl("wrong", "wrong", "wrong", ("lstm",), lambda: "", wrong)
    monkeypatch.setattr(_run, "IMPLS", [impl])
    lines = _run.run(TINY[:1], None, repeats=1, progress=lambda _: None)
    assert [line["status"] for line in lines] == ["mismatch"]
    assert lines[0]["max_abs_err"] > 1e-3 and "median_ms" not in lines[0]
    assert "Not timed, outputs differ" in _report.markdown(lines)


def test_cudnn_packing_against_jax_experimental_rnn_reference():
    """The flat cuDNN weights run through jax.experimental.rnn's own pure-JAX
    `lstm_ref` give the jaxrnn layer's outputs (the GPU path uses the same
    weights with its cuDNN kernel)."""
    layer = jaxrnn.init_layer(jax.random.key(0), "lstm", 3, 5, init="torch")
    xs = jax.random.normal(jax.random.key(1), (2, 6, 3))
    weights = _impls.cudnn_weights(layer.cells[0][0])
    ys = _impls.cudnn_forward(layer, reference=True)(weights, xs)
    expected = jaxrnn.apply_layer(layer, xs, impl="scan")[0]
    np.testing.assert_allclose(ys, expected, atol=1e-6)


@pytest.mark.slow
def test_tables_and_chart(tmp_path):
    lines = _run.run(
        TINY[:2], ["jaxrnn-fused", "jaxrnn-scan"], repeats=1, progress=lambda _: None
    )
    text = _report.markdown(lines)
    assert "**train_step**" in text and "**forward**" in text
    assert "| lstm | 2 | 5 | 4 |" in text and "jaxrnn / scan" in text
    assert "| gru | 3 | 4 | 2, 4 |" in text
    pytest.importorskip("matplotlib")
    assert _report.chart(lines, tmp_path / "chart.png")
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_stack_runs_where_an_implementation_has_stacks():
    """A 2-layer bidirectional problem: jaxrnn's layer runs it (checked
    against the reference like any other), a one-cell library is skipped
    with the reason, and the table says how many layers."""
    stack = bench.Problem("gru", 2, 4, 3, num_layers=2, bidirectional=True)
    lines = _run.run(
        [stack], ["jaxrnn-fused", "flax-linen"], repeats=1, progress=lambda _: None
    )
    status = {line["impl"]: line["status"] for line in lines}
    assert status["jaxrnn (fused)"] == "ok"
    skipped = [line for line in lines if line["status"] == "skipped"]
    assert skipped and all("one layer" in line["reason"] for line in skipped)
    assert "| gru | 2 | 4 | 3 | 2 bi |" in _report.markdown(lines)


def test_the_flops_of_a_stack_count_every_layer_and_direction():
    one = bench.Problem("lstm", 8, 10, 16, input_size=4)
    # forward: 2 B T G H (D + H) per layer and direction; layer 2 reads 2H.
    assert one.flops("forward") == 2 * 8 * 10 * 4 * 16 * (4 + 16)
    stack = one._replace(num_layers=2, bidirectional=True)
    per_step = 2 * 8 * 10 * 4 * 16
    want = 2 * per_step * ((4 + 16) + (2 * 16 + 16))
    assert stack.flops("forward") == want
    assert stack.flops("train_step") == 3 * want


def test_busy_processes_start_and_stop():
    with _bench_cli._busy(2) as loops:
        assert len(loops) == 2 and all(loop.poll() is None for loop in loops)
    assert all(loop.poll() is not None for loop in loops)
    assert _bench_cli._basename("cpu", 1) == "bench_busy1"
    assert _bench_cli._basename("sweep", 0) == "sweep"


def test_jaxrnn_bench_command_saves_results(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(bench.GRIDS, "smoke", TINY)
    status = _cli.main(
        [
            "bench",
            "--smoke",
            "--impls",
            "jaxrnn-fused",
            "--cells",
            "rnn,gru",
            "--repeats",
            "1",
            "--save",
            "--results",
            str(tmp_path),
            "--json",
        ]
    )
    assert status == 0
    printed = [json.loads(s) for s in capsys.readouterr().out.splitlines() if s]
    assert {line["cell"] for line in printed} == {"rnn", "gru"}
    (folder,) = tmp_path.iterdir()
    saved = (folder / "bench.jsonl").read_text().splitlines()
    assert [json.loads(s) for s in saved] == printed
    assert "jaxrnn fused" in (folder / "bench.md").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--impls", "jaxrnn-fused,mxnet"], "--impls takes a comma-separated subset"),
        (["--cells", "lstm,transformer"], "--cells takes a comma-separated subset"),
        (["--measures", "backward"], "--measures takes"),
        (["--repeats", "0"], "--repeats must be >= 1"),
        (["--grid", "tpu-pod"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _cli.main(["bench", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_unwritable_results_folder_fails_before_timing(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    status = _cli.main(["bench", "--smoke", "--save", "--results", str(blocker)])
    assert status == 2
    assert "cannot write results" in capsys.readouterr().err


@pytest.mark.slow
def test_fused_train_step_gradients_match_in_the_harness_setting():
    """The harness's own training step, with the fused path and the scan,
    on the same problem: the same loss and the same updated params."""
    problem = bench.Problem("lstm", 3, 6, 5)
    layer, xs, targets = _run.problem_data(problem)
    step, optimizer = _impls._train_step(
        lambda p, x: jaxrnn.apply_layer(p, x, impl="fused")[0]
    )
    ref_step, _ = _impls._train_step(
        lambda p, x: jaxrnn.apply_layer(p, x, impl="scan")[0]
    )
    state = optimizer.init(layer)
    out = jax.jit(step)(layer, state, xs, targets)
    ref = jax.jit(ref_step)(layer, state, xs, targets)
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(ref)):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert jnp.isfinite(out[2])


def test_report_renders_the_last_run_of_a_results_file(tmp_path, capsys):
    first = _run.run(TINY[2:], ["jaxrnn-fused"], repeats=1, progress=lambda _: None)
    second = _run.run(TINY[2:], ["jaxrnn-scan"], repeats=1, progress=lambda _: None)
    path = tmp_path / "bench.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in first + second))
    assert _report.latest_run(first + second) == second
    assert _cli.main(["bench", "--report", str(path), "--save"]) == 0
    out = capsys.readouterr().out
    assert "jaxrnn scan" in out and "jaxrnn fused" not in out
    assert (tmp_path / "bench.md").read_text().strip() == out.strip()
    assert _cli.main(["bench", "--report", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_pallas_is_timed_on_a_gpu_only_and_builds_everywhere():
    """On a CPU the kernels run interpreted, so the harness skips them with
    the reason; the runner itself is built and checked here all the same."""
    impl = next(i for i in bench.IMPLS if i.key == "jaxrnn-pallas")
    if jax.default_backend() == "cpu":
        assert "timed on a GPU" in impl.missing()
    layer, xs, targets = _run.problem_data(TINY[0])
    runner = impl.build(layer, xs, targets)
    runner.prepare("train_step")
    runner("train_step")
    reference = jaxrnn.apply_layer(layer, xs, impl="scan")[0]
    np.testing.assert_allclose(runner.outputs(), reference, atol=1e-5)


def test_the_min_cells_benchmark_runs_and_writes_its_lines(tmp_path):
    """benchmarks/bench_min_cells.py at tiny sizes: every row runs the impl it
    names, and --save writes one line per measurement."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[2] / "benchmarks" / "bench_min_cells.py"
    spec = importlib.util.spec_from_file_location("bench_min_cells", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lines = module.main(["--smoke", "--save", "--results", str(tmp_path)])
    assert {(r["cell"], r["impl"]) for r in lines if "checkpoint" not in r} == set(
        module.ROWS
    )
    for r in lines:
        expected = r["impl"]
        if expected == "auto":  # what auto runs here, asked of the table
            expected = jaxrnn.layer.choose("auto", r["cell"])
        assert r["ran"] == expected and r["train_ms"] > 0 and r["train_temp_mib"] >= 0
    assert {r.get("checkpoint") for r in lines} == {None, "sqrt"}
    (saved,) = tmp_path.glob("*/min_cells.jsonl")
    assert len(saved.read_text().splitlines()) == len(lines)
