"""Everything in __all__ exists; the public surface is what we say it is."""

import importlib

import pytest

import jaxrnn

# Each case is a module, a page or a notebook: all run in the default tier.
pytestmark = pytest.mark.every_case


@pytest.mark.parametrize(
    "module",
    [
        "jaxrnn",
        "jaxrnn.train",
        "jaxrnn.tasks",
        "jaxrnn.runs",
        "jaxrnn.interop",
        "jaxrnn.io",
        "jaxrnn.diagnostics",
        "jaxrnn.cells",
        "jaxrnn.layer",
        "jaxrnn.parallel",
        "jaxrnn.fast",
        "jaxrnn.bench",
    ],
)
def test_all_names_import(module):
    mod = importlib.import_module(module)
    assert len(set(mod.__all__)) == len(mod.__all__)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"
        obj = getattr(mod, name)
        if callable(obj) and not isinstance(obj, type):
            assert obj.__doc__, f"{module}.{name} has no docstring"


def test_core_names():
    for name in [
        "rnn_step",
        "lstm_step",
        "gru_step",
        "init_rnn",
        "init_lstm",
        "init_gru",
        "unroll",
        "unroll_loop",
        "init_layer",
        "apply_layer",
        "LSTMCarry",
        "readout",
        "init_readout",
    ]:
        assert name in jaxrnn.__all__
    for name in [
        "make_train_step",
        "make_optimizer",
        "make_tbptt_step",
        "rnn_bptt",
        "mse_loss",
        "cross_entropy_loss",
    ]:
        assert name in jaxrnn.train.__all__


def test_version_matches_pyproject():
    import pathlib
    import re

    text = (pathlib.Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert re.search(r'^version = "([^"]+)"', text, re.M).group(1) == jaxrnn.__version__


def test_interop_imports_no_framework():
    """Importing jaxrnn.interop must not import torch, flax, keras or equinox."""
    import subprocess
    import sys

    code = (
        "import sys, jaxrnn.interop; "
        "print(sorted(m for m in ('torch', 'flax', 'keras', 'equinox') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_every_subpackage_is_an_attribute_after_import_jaxrnn():
    """`import jaxrnn; jaxrnn.runs.fit` works for every public subpackage (the
    docs name them so), in a fresh interpreter that imported nothing else."""
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(jaxrnn.__file__).parent
    packages = sorted(
        p.parent.name
        for p in root.glob("*/__init__.py")
        if not p.parent.name.startswith("_")
    )
    assert {"runs", "bench", "train", "interop"} <= set(packages)
    code = (
        "import jaxrnn\n"
        f"missing = [n for n in {packages!r} if not hasattr(jaxrnn, n)]\n"
        "print(missing, callable(jaxrnn.runs.fit), callable(jaxrnn.bench.run))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["[]", "True", "True"]
