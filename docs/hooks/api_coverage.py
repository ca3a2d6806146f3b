"""The docs build fails when a public name is missing from the API reference.

Every name in the `__all__` of jaxrnn's public modules (other than a module)
must be documented by a `::: dotted.name` line of a page under docs/api/ that
resolves to the same object. `missing()` is also run by the test suite.
"""

from __future__ import annotations

import importlib
import pathlib
import re
import types

PUBLIC = (
    "jaxrnn",
    "jaxrnn.cells",
    "jaxrnn.layer",
    "jaxrnn.parallel",
    "jaxrnn.fast",
    "jaxrnn.train",
    "jaxrnn.diagnostics",
    "jaxrnn.tasks",
    "jaxrnn.runs",
    "jaxrnn.interop",
    "jaxrnn.io",
    "jaxrnn.bench",
)
API = pathlib.Path(__file__).parents[1] / "api"


def _resolve(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def missing() -> list[str]:
    """The public names that no page of docs/api documents."""
    targets = re.findall(r"^::: ([\w.]+)", "\n".join(
        p.read_text() for p in sorted(API.glob("*.md"))
    ), re.M)
    documented = {id(_resolve(t)) for t in targets}
    absent = []
    for module_name in PUBLIC:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, types.ModuleType):
                continue
            if id(value) not in documented:
                absent.append(f"{module_name}.{name}")
    return absent


def on_pre_build(config, **kwargs):
    """mkdocs hook: stop the build on an undocumented public name."""
    from mkdocs.exceptions import PluginError

    absent = missing()
    if absent:
        raise PluginError(
            f"{len(absent)} public names have no API reference entry: "
            + ", ".join(absent)
        )
