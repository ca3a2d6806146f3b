"""The README's snippets run, and print what their comments say."""

import contextlib
import importlib.util
import io
import pathlib
import re

README = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def test_there_is_a_tour():
    assert len(BLOCKS) >= 6


def test_quickstart_is_two_commands():
    section = README.split("## Quickstart", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    assert "jaxrnn compare" in commands[0] and "pytest" in commands[1]


def test_readme_snippets(standard_promotion):
    """Run the blocks in order, in one namespace, as a reader would.

    A line `print(...)  # text` promises that it prints `text` (anything after
    a ": " in the comment is explanation, not output).
    """
    namespace = {}
    for number, block in enumerate(BLOCKS):
        if "import torch" in block and importlib.util.find_spec("torch") is None:
            continue  # the PyTorch interop example needs the test extra's torch
        expected = [
            m.group(1).split(": ")[0].strip()
            for line in block.splitlines()
            if (m := re.match(r"\s*print\(.*\)\s+#\s*(.*)$", line))
        ]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, f"README block {number}", "exec"), namespace)
        assert out.getvalue().splitlines() == expected, f"README block {number}"
