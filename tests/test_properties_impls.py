"""Property-based tests of the compiled and parallel paths: every impl of
`apply_layer`, `stream_layer` and `parallel_unroll` fed random shapes,
dtypes (float16, bfloat16, float32, float64, int32), lengths (negative,
zero, past T, float), masks of the wrong dtype and NaN or inf inputs.

Each call either gives the reference's answer (impl="scan", or `unroll`),
NaN exactly where the reference has NaN, or raises ValueError / TypeError
in the house format, naming the argument (for an impl that lacks what the
reference has, naming the impl). Never a crash, a hang, or a silently wrong
answer. The examples are derandomised; conftest prints how many were tried,
refused and checked.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from helpers import count_example, x64

hypothesis = pytest.importorskip("hypothesis")
pytestmark = pytest.mark.slow
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
IMPLS = ["auto", "fused", "cpu", "parallel", "pallas"]
DTYPES = ["float32", "bfloat16", "float16", "float64", "int32"]
# How far an impl may be from the reference, by the inputs' dtype.
TOLERANCE = {"float32": 2e-4, "float64": 1e-9, "bfloat16": 0.1, "float16": 2e-2}


def _clear(error, fn):
    message = str(error)
    assert message.startswith(f"{fn}:"), message
    assert ", got " in message or "must not be" in message, message
    return message


@st.composite
def cases(draw):
    cell = draw(st.sampled_from(["lstm", "gru", "rnn"]))
    B, T = draw(st.integers(1, 3)), draw(st.integers(0, 5))
    D, H = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    dtype = draw(st.sampled_from(DTYPES))
    values = draw(
        st.lists(st.floats(-3, 3, width=32), min_size=B * T * D, max_size=B * T * D)
    )
    xs = np.asarray(values, np.float32).reshape(B, T, D)
    special = draw(st.sampled_from([None, np.nan, np.inf, -np.inf]))
    if special is not None and xs.size:
        xs.flat[draw(st.integers(0, xs.size - 1))] = special
    options = {}
    kind = draw(
        st.sampled_from(["none", "lengths", "float lengths", "mask", "int mask"])
    )
    if kind == "lengths":
        options["lengths"] = np.asarray(
            draw(st.lists(st.integers(-2, T + 2), min_size=B, max_size=B)), np.int32
        )
    elif kind == "float lengths":
        options["lengths"] = np.full((B,), 1.5, np.float32)
    elif kind in ("mask", "int mask"):
        bits = draw(st.lists(st.booleans(), min_size=B * T, max_size=B * T))
        mask = np.asarray(bits, bool).reshape(B, T)
        options["mask"] = mask if kind == "mask" else mask.astype(np.int32)
    return {
        "cell": cell,
        "shape": (B, T, D, H),
        "dtype": dtype,
        "xs": xs,
        "options": options,
        "impl": draw(st.sampled_from(IMPLS)),
        "seed": draw(st.integers(0, 3)),
    }


def _inputs(case):
    B, T, D, H = case["shape"]
    dtype = jnp.dtype(case["dtype"])
    params_dtype = dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.float32
    kw = {"activation": "relu"} if case["cell"] == "rnn" and case["seed"] % 2 else {}
    params = jaxrnn.init_layer(
        jax.random.key(case["seed"]), case["cell"], D, H, dtype=params_dtype, **kw
    )
    return params, jnp.asarray(case["xs"]).astype(dtype)


def _same(got, want, dtype):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    finite = np.isfinite(want)
    np.testing.assert_array_equal(np.isfinite(got), finite)
    scale = max(1.0, float(np.max(np.abs(want[finite]), initial=0)))
    err = float(np.max(np.abs(got[finite] - want[finite]), initial=0))
    assert err <= TOLERANCE[dtype] * scale, (err, dtype)


def _run(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs), None
    except (ValueError, TypeError) as error:
        return None, error


@SETTINGS
@given(cases())
def test_every_impl_gives_the_reference_s_answer_or_a_clear_error(case):
    context = x64() if case["dtype"] == "float64" else _nothing()
    with context:
        params, xs = _inputs(case)
        options, impl = case["options"], case["impl"]
        want, refused = _run(jaxrnn.apply_layer, params, xs, impl="scan", **options)
        got, error = _run(jaxrnn.apply_layer, params, xs, impl=impl, **options)
        name = f"apply_layer impl={impl}"
        if error is not None:
            message = _clear(error, "apply_layer")
            if refused is None:  # the impl lacks what the reference has
                assert "impl" in message, message
            count_example(name, "refused")
            return
        assert refused is None, f"{impl} accepted what the reference refused: {refused}"
        count_example(name, "checked")
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            _same(a, b, case["dtype"])


@SETTINGS
@given(cases())
def test_stream_layer_on_every_impl_equals_apply_layer_or_raises_clearly(case):
    context = x64() if case["dtype"] == "float64" else _nothing()
    with context:
        params, xs = _inputs(case)
        impl = case["impl"] if case["impl"] != "parallel" else "scan"
        mask = case["options"].get("mask")
        state = jaxrnn.init_state(params, xs.shape[0])
        got, error = _run(jaxrnn.stream_layer, params, state, xs, mask=mask, impl=impl)
        want, refused = _run(jaxrnn.apply_layer, params, xs, mask=mask, impl="scan")
        name = f"stream_layer impl={impl}"
        if error is not None:
            message = _clear(error, "stream_layer")
            if refused is None:
                assert "impl" in message, message
            count_example(name, "refused")
            return
        assert refused is None, (
            f"stream_layer accepted what apply_layer refused: {refused}"
        )
        count_example(name, "checked")
        _same(got[0], want[0], case["dtype"])


@SETTINGS
@given(cases())
def test_parallel_unroll_equals_unroll_or_raises_clearly(case):
    context = x64() if case["dtype"] == "float64" else _nothing()
    with context:
        B, T, D, H = case["shape"]
        dtype = jnp.dtype(case["dtype"])
        params_dtype = dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.float32
        cell = {"lstm": "lstm", "gru": "gru", "rnn": "rnn"}[case["cell"]]
        init = getattr(jaxrnn, f"init_{cell}")
        step = getattr(jaxrnn, f"{cell}_step")
        carry0 = getattr(jaxrnn, f"init_{cell}_carry")(H, dtype=params_dtype)
        params = init(jax.random.key(case["seed"]), D, H, dtype=params_dtype)
        xs = jnp.asarray(case["xs"][0]).astype(dtype)  # one sequence [T, D]
        got, error = _run(jaxrnn.parallel.parallel_unroll, step, params, carry0, xs)
        want, refused = _run(jaxrnn.unroll, step, params, carry0, xs)
        name = "parallel_unroll"
        if error is not None:
            _clear(error, "parallel_unroll")
            count_example(name, "refused")
            return
        assert refused is None, (
            f"parallel_unroll accepted what unroll refused: {refused}"
        )
        count_example(name, "checked")
        final, ys, info = got
        # Newton's fallback to the scan keeps NaN and inf where unroll has them.
        _same(ys, want[1], case["dtype"])


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
