"""The README's and the docs pages' code blocks run, and print what their
comments say; the Quickstart is two commands."""

import contextlib
import importlib.util
import io
import pathlib
import re

import pytest

# Each case is a module, a page or a notebook: all run in the default tier.
pytestmark = pytest.mark.every_case

ROOT = pathlib.Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()
# Every page of the docs site written here (the notebooks and the benchmark
# results are checked by their own tests).
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


# What a block needs, by what it says: the interop examples the test extra's
# frameworks, the real series statsmodels' files (jaxrnn[data]).
NEEDS = {
    "torch": "import torch",
    "haiku": "import haiku",
    "statsmodels": "load_series(",
}


def _blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


def test_readme_is_short_and_has_an_example():
    assert len(README.splitlines()) <= 200
    assert len(_blocks(ROOT / "README.md")) >= 1


def test_there_is_a_tour():
    """The README's old tour (12 blocks) moved into the guides, whole."""
    assert sum(len(_blocks(page)) for page in PAGES) >= 12


def test_quickstart_is_two_commands():
    section = README.split("## Quickstart", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    assert "jaxrnn compare" in commands[0] and "pytest" in commands[1]


@pytest.mark.parametrize("path", [p for p in PAGES if _blocks(p)], ids=lambda p: p.name)
def test_page_snippets(path, standard_promotion):
    """Run a page's blocks in order, in one namespace, as a reader would.

    A line `print(...)  # text` promises that it prints `text` (anything after
    a ": " in the comment is explanation, not output).
    """
    namespace = {}
    for number, block in enumerate(_blocks(path)):
        if any(
            needs in block and importlib.util.find_spec(module) is None
            for module, needs in NEEDS.items()
        ):
            continue  # the block needs a package this Python has not got
        expected = [
            m.group(1).split(": ")[0].strip()
            for line in block.splitlines()
            if (m := re.match(r"\s*print\(.*\)\s+#\s*(.*)$", line))
        ]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, f"{path.name} block {number}", "exec"), namespace)
        assert out.getvalue().splitlines() == expected, f"{path.name} block {number}"
