"""Every docstring example runs and prints what it says (doctest)."""

import doctest
import importlib
import importlib.util
import pathlib
import pkgutil

import jax
import pytest

import jaxrnn

# Each case is a module, a page or a notebook: all run in the default tier.
pytestmark = pytest.mark.every_case

MODULES = sorted(m.name for m in pkgutil.walk_packages(jaxrnn.__path__, "jaxrnn."))


# Modules whose examples use an optional framework.
NEEDS = {
    "jaxrnn.interop._torch": "torch",
    "jaxrnn.interop._flax": "flax",
    "jaxrnn.interop._equinox": "equinox",
    "jaxrnn.interop._mingru": "minGRU_pytorch",
}


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    if name in NEEDS:
        pytest.importorskip(NEEDS[name])
    module = importlib.import_module(name)
    globs = {**vars(jaxrnn), **vars(module)}
    with jax.numpy_dtype_promotion("standard"):
        result = doctest.testmod(
            module, extraglobs=globs, optionflags=doctest.ELLIPSIS, verbose=False
        )
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"


def test_every_public_name_is_in_the_api_reference():
    """The check the docs build runs (docs/hooks/api_coverage.py), as haiku's
    coverage_check does: a public name missing from docs/api fails."""
    spec = importlib.util.spec_from_file_location(
        "api_coverage", pathlib.Path(__file__).parents[1] / "docs/hooks/api_coverage.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.missing() == []
