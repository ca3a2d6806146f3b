"""Test configuration: the two tiers, and strict promotion throughout.

`python -m pytest` runs the default tier: the first case of every test that
is not marked slow, which touches every module. `python -m pytest --full`
runs everything; `-m slow` runs only the rest (see pytest_collection_modifyitems).

Strict promotion, so that the library never relies on implicit casts: rank
promotion raises and dtype promotion is "strict" for every test. Tests
that run optax's Adam opt out with the `standard_promotion` fixture: optax
itself mixes Python floats with int32 step counts (in its bias correction),
which strict mode refuses. The library's own code is strict-clean.
"""

import os

# The tests check values, not speed: compile them without LLVM's optimisation
# passes, which takes a third off the suite's time on a 2-core CPU. A value
# that differs under optimisation would be a compiler bug, and the
# benchmarks (benchmarks/, jaxrnn bench), which do not read this file, run
# fully optimised code. Set JAXRNN_TEST_OPTIMIZE=1 to test optimised code.
if os.environ.get("JAXRNN_TEST_OPTIMIZE") != "1":
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_backend_optimization_level" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_backend_optimization_level=0".strip()

import jax  # noqa: E402 (after XLA_FLAGS, which the backend reads once)
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture(autouse=True, scope="module")
def _fresh_compilation_caches():
    """Free the compiled executables of each test module when it ends, so that
    one process running the whole suite does not accumulate thousands."""
    yield
    jax.clear_caches()


@pytest.fixture
def getkey():
    """A fresh, deterministic PRNG key on every call."""
    counter = iter(range(10**6))
    return lambda: jax.random.key(next(counter))


@pytest.fixture
def standard_promotion():
    """Standard dtype promotion for the duration of a test (for optax.adam)."""
    with jax.numpy_dtype_promotion("standard"):
        yield


@pytest.fixture
def permissive_promotion():
    """Standard dtype and rank promotion, for other libraries' code (flax, keras)."""
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        yield


# The longest tests, by file: each notebook runs for 20 to 80 s and each
# property test for 10 to 20 s on two cores. They are started first, so that
# the two workers do not end with one of them alone on a long test.
LONGEST_FIRST = ("test_notebooks.py::test_notebook_runs", "test_properties.py")


def pytest_addoption(parser):
    parser.addoption(
        "--full",
        action="store_true",
        help="run the full suite: the default tier and every test marked slow "
        "(slow grids, peer-parity grids, hypothesis, notebooks)",
    )


@pytest.hookimpl(tryfirst=True)  # before -m selects on the markers added here
def pytest_collection_modifyitems(config, items):
    """The tiers, then the order.

    A parametrized test runs its first case in the default tier and every
    case in the full tier: the later cases are marked slow here, so that
    `-m slow` selects them too. A test marked `every_case` runs every case
    in both (for cases that are modules or pages, each cheap). The default
    tier leaves out everything marked slow, unless --full or a -m expression
    is given. The longest tests run first (a stable sort).
    """
    first = set()
    for item in items:
        if getattr(item, "callspec", None) is None:
            continue
        if item.get_closest_marker("every_case"):
            continue
        key = (item.parent.nodeid, item.originalname)
        if key in first:
            item.add_marker(pytest.mark.slow)
        first.add(key)
    if not config.getoption("--full") and not config.option.markexpr:
        slow = [item for item in items if item.get_closest_marker("slow")]
        if slow:
            config.hook.pytest_deselected(items=slow)
            items[:] = [item for item in items if not item.get_closest_marker("slow")]

    def rank(item):
        return next(
            (i for i, key in enumerate(LONGEST_FIRST) if key in item.nodeid),
            len(LONGEST_FIRST),
        )

    items.sort(key=rank)


def pytest_sessionfinish(session):
    """Under pytest-xdist, a worker hands its tallies to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        from helpers import HYPOTHESIS_EXAMPLES, MAX_ERRORS

        workeroutput["jaxrnn_max_errors"] = [
            [library, dtype, value] for (library, dtype), value in MAX_ERRORS.items()
        ]
        workeroutput["jaxrnn_examples"] = dict(HYPOTHESIS_EXAMPLES)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """The controller merges each worker's tallies (an xdist hook)."""
    from helpers import HYPOTHESIS_EXAMPLES, MAX_ERRORS

    output = getattr(node, "workeroutput", {})
    for library, dtype, value in output.get("jaxrnn_max_errors", []):
        MAX_ERRORS[library, dtype] = max(MAX_ERRORS.get((library, dtype), 0.0), value)
    for name, count in output.get("jaxrnn_examples", {}).items():
        HYPOTHESIS_EXAMPLES[name] = HYPOTHESIS_EXAMPLES.get(name, 0) + count


def pytest_terminal_summary(terminalreporter):
    """Report the largest differences seen against PyTorch, Flax, Keras, Equinox."""
    from helpers import HYPOTHESIS_EXAMPLES, MAX_ERRORS

    if HYPOTHESIS_EXAMPLES:
        terminalreporter.section("property tests (hypothesis)")
        for name, count in sorted(HYPOTHESIS_EXAMPLES.items()):
            terminalreporter.write_line(f"{name:12} {count} examples")
    if MAX_ERRORS:
        terminalreporter.section("largest differences from the peer libraries")
        for (library, dtype), value in sorted(MAX_ERRORS.items()):
            terminalreporter.write_line(
                f"{library:8} {dtype:8} {value:.3g} (values, states and gradients)"
            )
