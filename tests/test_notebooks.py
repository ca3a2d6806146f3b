"""Every notebook runs top to bottom, on the public API, as committed."""

import contextlib
import importlib.util
import io
import json
import pathlib

import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, permissive_promotion):
    """Execute the code cells in order in one namespace, as a fresh kernel would."""
    notebook = json.loads(path.read_text())
    for module in notebook["metadata"].get("jaxrnn", {}).get("requires", []):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{path.name} needs {module}")
    namespace = {"__name__": "__main__"}
    for number, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(source, f"{path.name} cell {number}", "exec"), namespace)
