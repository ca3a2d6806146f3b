"""Every docstring example runs and prints what it says (doctest)."""

import doctest
import importlib
import pkgutil

import jax
import pytest

import jaxrnn

MODULES = sorted(m.name for m in pkgutil.walk_packages(jaxrnn.__path__, "jaxrnn."))


# Modules whose examples use an optional framework.
NEEDS = {
    "jaxrnn.interop._torch": "torch",
    "jaxrnn.interop._flax": "flax",
    "jaxrnn.interop._equinox": "equinox",
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
