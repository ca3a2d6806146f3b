"""The package's layout is part of the product: these rules keep it readable.

- the cells live in jaxrnn/cells/, the layer in jaxrnn/layer/, the fast paths
  in jaxrnn/fast/, and no cell or fast-path module sits at the top;
- imports between jaxrnn's modules form no cycle, and none is made inside a
  function (optional frameworks aside, and Pallas, which is imported when a
  kernel loop is traced);
- imports flow down the floors of docs/layout.md (FLOORS): a module imports
  only from its own floor or those below;
- every module stays under 400 lines and every __init__ only re-exports
  (eagerly, or lazily through a PEP 562 `__getattr__`);
- `import jaxrnn` loads neither Pallas nor an optional framework;
- no code branches on a cell's name outside the cell's own modules
  (jaxrnn/cells/ and its fast forms) and the converters and the peers'
  benchmarks, which map each framework's named cells: the rest reads the
  cell's `CellSpec`.
"""

import ast
import pathlib
import subprocess
import sys

import pytest

# Each case is a module, a page or a notebook: all run in the default tier.
pytestmark = pytest.mark.every_case

PACKAGE = pathlib.Path(__file__).parents[1] / "jaxrnn"
MODULES = {
    ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(
        ".__init__"
    ): p
    for p in sorted(PACKAGE.rglob("*.py"))
    if "data" not in p.relative_to(PACKAGE).parts
}
# What a function may import: the optional frameworks (each extra's package).
OPTIONAL = ("torch", "flax", "keras", "equinox", "matplotlib", "jax.experimental.rnn")
MAX_LINES = 400
# docs/layout.md's floors, lowest first; a module imports only from its own
# floor or below. The root package sits on top: it re-exports everything.
FLOORS = (
    ("jaxrnn._checks", "jaxrnn._version"),
    ("jaxrnn.cells",),
    ("jaxrnn._unroll",),
    ("jaxrnn.parallel",),
    ("jaxrnn.fast",),
    ("jaxrnn.layer",),
    ("jaxrnn.train", "jaxrnn.diagnostics", "jaxrnn.tasks", "jaxrnn.io"),
    ("jaxrnn.interop", "jaxrnn.runs", "jaxrnn.bench"),
    ("jaxrnn._cli", "jaxrnn.__main__", "jaxrnn"),
)


def _floor(module: str) -> int:
    """The floor of a module: that of the longest FLOORS entry it is in."""
    best = max(
        (len(prefix), level)
        for level, prefixes in enumerate(FLOORS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    )
    return best[1]


def _imports(path: pathlib.Path):
    """(module-level jaxrnn imports, function-level imports) of one file."""
    tree = ast.parse(path.read_text())
    top, inner = [], []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:  # a name from a module: the submodule if it is one of ours
            base = node.module or ""
            names = [f"{base}.{alias.name}" for alias in node.names]
            if base.split(".")[0] == "jaxrnn":
                names = [n if n in MODULES else base for n in names]
        (top if node in tree.body else inner).extend(names)
    return [n for n in top if n.split(".")[0] == "jaxrnn"], inner


def test_folders_say_what_a_file_is():
    top = sorted(p.name for p in PACKAGE.glob("_*.py"))
    assert top == [
        "__init__.py",
        "__main__.py",
        "_checks.py",
        "_unroll.py",
        "_version.py",
    ]
    cells = {p.stem for p in (PACKAGE / "cells").glob("_*.py")}
    assert {"_elman", "_lstm", "_gru", "_activations", "_registry"} <= cells
    assert {"_vjp", "_fused", "_pallas"} <= {
        p.stem for p in (PACKAGE / "fast").glob("_*.py")
    }


def test_no_import_cycles():
    graph = {
        name: set(_imports(path)[0]) & set(MODULES) for name, path in MODULES.items()
    }
    # A package's submodule imports the package's __init__ first; that edge is
    # Python's, not a dependency of ours.
    for name, deps in graph.items():
        deps -= {d for d in deps if name.startswith(d + ".")}
    state = {}

    def visit(name, path):
        state[name] = "open"
        for dep in sorted(graph[name]):
            if state.get(dep) == "open":
                pytest.fail(f"import cycle: {' -> '.join([*path, name, dep])}")
            if dep not in state:
                visit(dep, [*path, name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_imports_flow_down_the_floors():
    upward = []
    for name, path in MODULES.items():
        for dep in set(_imports(path)[0]) & set(MODULES):
            if _floor(dep) > _floor(name):
                upward.append(f"{name} -> {dep}")
    assert not upward, f"imports that run back up: {sorted(upward)}"


def _lazy(node) -> bool:
    """A PEP 562 `__getattr__`, or the private names it reads."""
    if isinstance(node, ast.FunctionDef):
        return node.name == "__getattr__"
    if isinstance(node, ast.Import):  # a standard module under a private name
        return all(a.asname and a.asname.startswith("_") for a in node.names)
    targets = getattr(node, "targets", [])
    return isinstance(node, ast.Assign) and all(
        isinstance(t, ast.Name) and t.id.startswith("_") and t.id != "__all__"
        for t in targets
    )


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_rules(name):
    path = MODULES[name]
    lines = path.read_text().splitlines()
    assert len(lines) < MAX_LINES, f"{name} has {len(lines)} lines"
    _, inner = _imports(path)
    local = [n for n in inner if not n.startswith(OPTIONAL)]
    assert not local, f"{name} imports {local} inside a function"
    if path.name == "__init__.py":
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom):  # a re-export, named or renamed
                star = [a.name for a in node.names] == ["*"]  # all of its __all__
                assert star or all(a.asname for a in node.names), ast.dump(node)
                continue
            if (
                isinstance(node, ast.AugAssign)
                and ast.unparse(node.target) == "__all__"
            ):
                continue  # __all__ += a subpackage's __all__
            if _lazy(node):
                continue
            value = node.value if isinstance(node, (ast.Expr, ast.Assign)) else None
            targets = [t.id for t in getattr(node, "targets", [])]
            docstring = isinstance(node, ast.Expr) and isinstance(value, ast.Constant)
            assert docstring or targets in (["__all__"], ["__version__"]), (
                f"{name}: {ast.unparse(node)[:60]}"
            )


def test_import_loads_no_kernel_backend_or_framework():
    code = (
        "import sys, jaxrnn; print(sorted(m for m in sys.modules if m.startswith("
        "('jax.experimental.pallas', 'jax._src.pallas', 'torch', 'flax', 'keras', "
        "'equinox', 'matplotlib'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def _name_branches(source: str, names: set[str]) -> list[int]:
    """The lines where `source` compares with a cell's name, keys a dict by
    one, or matches one."""

    def named(node) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in names
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return any(named(e) for e in node.elts)
        return False

    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
        elif isinstance(node, ast.Dict):
            sides = [k for k in node.keys if k is not None]
        elif isinstance(node, ast.MatchValue):
            sides = [node.value]
        else:
            continue
        if any(named(side) for side in sides):
            lines.append(node.lineno)
    return lines


def test_no_branch_on_a_cell_name_outside_its_own_modules():
    from jaxrnn.cells import _registry

    names = set(_registry.CELLS)
    own = {f"jaxrnn.fast.{spec.fast}" for spec in _registry.CELLS.values() if spec.fast}
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for name, path in MODULES.items()
        if not name.startswith(("jaxrnn.cells", "jaxrnn.interop"))
        and name not in own | {"jaxrnn.bench._impls"}  # the peers' cells
        for line in _name_branches(path.read_text(), names)
    ]
    assert not found, f"branches on a cell's name (read its CellSpec): {found}"


@pytest.mark.parametrize(
    "code, hits",
    [
        ("if cell == 'lstm': pass", 1),
        ("ok = cell in ('gru', 'mgu')", 1),
        ("t = {'rnn': 1}", 1),
        ("match cell:\n    case 'gru':\n        pass", 1),
        ("if spec.lstm_carry: pass", 0),
        ("for cell in ('lstm', 'gru'): pass", 0),
    ],
)
def test_the_name_branch_check_sees_each_form(code, hits):
    """The check above finds a comparison, a membership test, a dict key and
    a match case, and passes code that reads the spec or lists names."""
    assert len(_name_branches(code, {"lstm", "gru", "mgu", "rnn"})) == hits
