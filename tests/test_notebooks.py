"""The notebooks: each runs top to bottom in a fresh process, on the public API,
and is committed with the outputs of such a run."""

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

# Each case is a module, a page or a notebook: all run in the default tier.
pytestmark = pytest.mark.every_case

ROOT = pathlib.Path(__file__).parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TEACHING = [p for p in NOTEBOOKS if re.match(r"\d\d_", p.name)]

# A fresh interpreter runs the code cells in order in one namespace, as a
# fresh kernel would, from the notebooks folder, with plots drawn off screen.
RUNNER = """
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
plt.show = lambda *args, **kwargs: plt.close("all")
notebook = json.load(open(sys.argv[1], encoding="utf-8"))
namespace = {"__name__": "__main__"}
for number, cell in enumerate(notebook["cells"]):
    if cell["cell_type"] == "code":
        source = "".join(cell["source"])
        exec(compile(source, f"{sys.argv[1]} cell {number}", "exec"), namespace)
"""


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _code(notebook):
    return ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]


def test_the_teaching_arc_is_all_there():
    assert [p.name[:2] for p in TEACHING] == [f"{n:02d}" for n in range(1, 11)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_as_run(path):
    """Outputs are committed so that the plots show on the web: every code
    cell ran, in order, without an error, and the plots are there."""
    notebook = _load(path)
    cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    counts = [c["execution_count"] for c in cells]
    assert counts == list(range(1, len(cells) + 1)), f"{path.name}: rerun top to bottom"
    outputs = [o for c in cells for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert not [
        o
        for o in outputs
        if o.get("name") == "stderr" and "Traceback" in "".join(o["text"])
    ]
    if path in TEACHING:
        assert any("image/png" in o.get("data", {}) for o in outputs), path.name
        first = notebook["cells"][0]
        assert first["cell_type"] == "markdown" and "".join(first["source"]).startswith(
            "# "
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_uses_the_public_api_and_has_a_full_size_cell(path):
    source = "\n".join(_code(_load(path)))
    module = r"\b(?:jaxrnn|runs|tasks|train|bench|diagnostics|interop|io)"
    private = re.findall(module + r"(?:\.\w+)*\._(?!_)\w+", source)
    assert not private, f"{path.name} reaches into private modules: {private}"
    if path in TEACHING:
        assert "FULL = False" in source, f"{path.name} needs a marked full-size cell"


def test_every_notebook_is_linked_with_what_it_teaches():
    for readme in (ROOT / "README.md", ROOT / "notebooks" / "README.md"):
        text = readme.read_text(encoding="utf-8")
        for path in NOTEBOOKS:
            assert path.name in text, f"{readme.name} does not link {path.name}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path):
    notebook = _load(path)
    for module in notebook["metadata"].get("jaxrnn", {}).get("requires", []):
        pytest.importorskip(module)
    # The notebook runs with the suite's XLA flags (conftest.py: without
    # LLVM's optimisation passes), which the environment passes on. This test
    # checks that every cell runs; the committed outputs, timings included,
    # come from a run with full optimisation (`jupyter execute`).
    env = dict(os.environ)
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(path)],
        cwd=path.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{path.name} failed:\n{done.stderr[-4000:]}"
