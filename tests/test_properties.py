"""Property-based tests: random shapes, dtypes, lengths and wrong arguments.

Every call either works and matches its oracle (the Python-loop twin of the
scan, or per-example runs), or raises ValueError / TypeError in the house
format `fn: argument expected, got actual.` Never an XLA error, an
IndexError, or silent garbage. The examples are derandomised, so CI runs the
same ones every time; conftest prints how many ran.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from helpers import CELLS, assert_trees_close, count_example

hypothesis = pytest.importorskip("hypothesis")
pytestmark = pytest.mark.slow
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SETTINGS = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16, jnp.int32, jnp.complex64, jnp.bool_]
FLOATS = (jnp.float32, jnp.bfloat16, jnp.float16)


def _clear_error(error, fn):
    """The house format: names the function and the argument, and what was given."""
    message = str(error)
    assert message.startswith(f"{fn}:") or "_step:" in message, message
    assert ", got " in message, message


def _array(draw, shape, dtype):
    values = np.asarray(
        draw(
            st.lists(
                st.floats(-3, 3, width=32),
                min_size=int(np.prod(shape)),
                max_size=int(np.prod(shape)),
            )
        ),
        np.float32,
    ).reshape(shape)
    return jnp.asarray(values).astype(dtype)


@st.composite
def unroll_cases(draw):
    """Valid inputs half the time; otherwise exactly one fault, named."""
    cell = draw(st.sampled_from(CELLS))
    D, H = draw(st.integers(1, 4)), draw(st.integers(2, 4))
    T = draw(st.integers(0, 5))
    dtype = draw(st.sampled_from(FLOATS))
    fault = draw(
        st.sampled_from(
            [None] * 6
            + ["carry", "xs_shape", "xs_dtype", "mask", "length", "reset", "both"]
        )
    )
    params = cell.init(jax.random.key(draw(st.integers(0, 5))), D, H, dtype=dtype)
    carry = cell.init_carry(H, dtype=dtype)
    if fault == "carry":  # a carry of another cell, size or dtype
        other = draw(st.sampled_from(CELLS))
        size = draw(st.sampled_from([H, H + 1]))
        carry = other.init_carry(size, dtype=draw(st.sampled_from(FLOATS)))
    xs_shape = (T, D)
    if fault == "xs_shape":
        xs_shape = draw(st.sampled_from([(T, D + 1), (D,), (2, T, D), ()]))
    xs_dtype = dtype
    if fault == "xs_dtype":
        xs_dtype = draw(st.sampled_from(DTYPES))
    xs = _array(draw, xs_shape, xs_dtype)
    kwargs = {}
    masking = draw(st.sampled_from(["none", "mask", "length", "reset"]))
    if masking == "mask" or fault in ("mask", "both"):
        shape, mask_dtype = (T,), jnp.bool_
        if fault == "mask":
            shape = draw(st.sampled_from([(T,), (T + 1,), (1, T)]))
            mask_dtype = draw(st.sampled_from([jnp.int32, jnp.bool_]))
        kwargs["mask"] = (_array(draw, shape, jnp.float32) > 0).astype(mask_dtype)
    if masking == "length" or fault in ("length", "both"):
        kwargs["length"] = jnp.asarray(draw(st.integers(-2, T + 3)))
        if fault == "length":
            kwargs["length"] = draw(st.sampled_from([jnp.arange(2), 1.5, "3"]))
    if masking == "reset" or fault == "reset":
        kwargs["reset"] = _array(draw, (T,), jnp.float32) > 1
        if fault == "reset":
            kwargs["reset"] = kwargs["reset"][None]
    kwargs["reverse"] = draw(st.booleans())
    kwargs["checkpoint"] = draw(st.sampled_from([None, None, "step", 2, "sqrt"]))
    return cell, params, carry, xs, kwargs, fault


@SETTINGS
@given(unroll_cases())
def test_unroll_works_and_matches_the_loop_or_raises_clearly(case):
    cell, params, carry, xs, kwargs, fault = case
    try:
        result = jaxrnn.unroll(cell.step, params, carry, xs, **kwargs)
    except (ValueError, TypeError) as error:
        assert fault is not None, f"valid input refused: {error}"
        _clear_error(error, "unroll")
        count_example("unroll", "refused")
        return
    count_example("unroll", "worked")
    loop_kwargs = {k: v for k, v in kwargs.items() if k != "checkpoint"}
    expected = jaxrnn.unroll_loop(cell.step, params, carry, xs, **loop_kwargs)
    tol = 1e-5 if params.w_ih.dtype == jnp.float32 else 5e-2
    assert_trees_close(result, expected, tol)
    for leaf in jax.tree.leaves(result):
        assert bool(jnp.all(jnp.isfinite(leaf.astype(jnp.float32))))


@st.composite
def layer_cases(draw):
    """Valid inputs half the time; otherwise exactly one fault."""
    cell = draw(
        st.sampled_from(["rnn", "lstm", "gru", "layer_norm_lstm", "mgu", "proj"])
    )
    B, T = draw(st.integers(1, 3)), draw(st.integers(0, 5))
    D, H = draw(st.integers(1, 3)), draw(st.integers(2, 4))
    kwargs = dict(num_layers=draw(st.integers(1, 2)), bidirectional=draw(st.booleans()))
    if cell == "proj":
        cell, kwargs["proj_size"] = "lstm", 1
    params = jaxrnn.init_layer(jax.random.key(0), cell, D, H, **kwargs)
    fault = draw(
        st.sampled_from(
            [None] * 5 + ["xs_shape", "xs_dtype", "lengths", "mask", "state", "reset"]
        )
    )
    xs_shape = (B, T, D)
    if fault == "xs_shape":
        xs_shape = draw(st.sampled_from([(T, D), (B, T, D + 1), (B, T, D, 1)]))
    xs_dtype = jnp.float32
    if fault == "xs_dtype":
        xs_dtype = draw(st.sampled_from(DTYPES[1:]))
    xs = _array(draw, xs_shape, xs_dtype)
    options = {}
    choice = draw(st.sampled_from(["none", "lengths", "mask", "state", "reset"]))
    if fault in ("lengths", "mask", "state", "reset"):
        choice = fault
    if choice == "lengths":
        values = draw(st.lists(st.integers(-1, T + 2), min_size=B, max_size=B))
        options["lengths"] = jnp.asarray(values)
        if fault == "lengths":
            options["lengths"] = draw(
                st.sampled_from(
                    [jnp.zeros((B + 1,), jnp.int32), jnp.zeros((B,), jnp.float32)]
                )
            )
    if choice == "mask":
        shape = (B, T)
        if fault == "mask":
            shape = draw(st.sampled_from([(T + 1, B), (B,), (1, B, T)]))
        options["mask"] = _array(draw, shape, jnp.float32) > 0
    if choice == "reset":
        options["reset"] = _array(draw, (B, T), jnp.float32) > 1
        if fault == "reset":
            options["reset"] = options["reset"].astype(jnp.int32)
    if choice == "state":
        count = kwargs["num_layers"] * (2 if kwargs["bidirectional"] else 1)
        size = params.output_size + (fault == "state")
        h = jnp.ones((count, B, size))
        lstm = params.cell in ("lstm", "proj_lstm", "layer_norm_lstm")
        if lstm:
            options["initial_state"] = jaxrnn.LSTMCarry(
                h, jnp.ones((count, B, params.hidden_size))
            )
        else:
            options["initial_state"] = h
    return params, xs, options, fault


@SETTINGS
@given(layer_cases())
def test_apply_layer_works_and_matches_per_example_runs_or_raises_clearly(case):
    params, xs, options, fault = case
    try:
        ys, state = jaxrnn.apply_layer(params, xs, **options)
    except (ValueError, TypeError) as error:
        assert fault is not None, f"valid input refused: {error}"
        _clear_error(error, "apply_layer")
        count_example("apply_layer", "refused")
        return
    count_example("apply_layer", "worked")
    batch, seq_len, _ = xs.shape
    assert ys.shape == (batch, seq_len, params.features)
    assert bool(jnp.all(jnp.isfinite(ys)))
    # One example at a time through the same layer: batching changes nothing.
    for b in range(batch):
        one = {
            k: (
                v[b : b + 1]
                if k != "initial_state"
                else jax.tree.map(lambda a: a[:, b : b + 1], v)
            )
            for k, v in options.items()
        }
        ys_b, state_b = jaxrnn.apply_layer(params, xs[b : b + 1], **one)
        np.testing.assert_allclose(ys[b : b + 1], ys_b, atol=1e-5)
        assert_trees_close(
            jax.tree.map(lambda a: a[:, b : b + 1], state), state_b, 1e-5
        )
    # Padded steps give zero outputs; zero-length rows keep the initial state.
    if "lengths" in options:
        valid = jaxrnn.lengths_to_mask(options["lengths"], seq_len)
        assert float(jnp.abs(jnp.where(valid[..., None], 0, ys)).max(initial=0)) == 0


@SETTINGS
@given(
    st.sampled_from(CELLS),
    st.integers(1, 3),
    st.integers(2, 4),
    st.sampled_from([(), (2,), (1, 1), (3,)]),
)
def test_steps_refuse_batched_or_missing_axes_clearly(cell, D, H, extra):
    params = cell.init(jax.random.key(0), D, H)
    carry = cell.init_carry(H)
    x = jnp.ones(extra + (D,)) if extra else jnp.ones(())
    try:
        new, y = cell.step(params, carry, x)
    except (ValueError, TypeError) as error:
        _clear_error(error, getattr(cell.step, "func", cell.step).__name__)
        count_example("step", "refused")
        return
    raise AssertionError(f"{cell} accepted x of shape {x.shape}")


SIZES = st.one_of(
    st.integers(-2, 5), st.just(2.0), st.booleans(), st.just("3"), st.none()
)
INITS = [
    jaxrnn.init_rnn,
    jaxrnn.init_lstm,
    jaxrnn.init_gru,
    jaxrnn.init_peephole_lstm,
    jaxrnn.init_layer_norm_lstm,
    jaxrnn.init_layer_norm_gru,
    jaxrnn.init_cifg_lstm,
    jaxrnn.init_mgu,
    jaxrnn.init_readout,
]


@SETTINGS
@given(
    st.sampled_from(INITS),
    SIZES,
    SIZES,
    st.sampled_from(["default", "torch", "xavier", None]),
    st.sampled_from([jnp.float32, jnp.bfloat16, jnp.int32, "float16", "nonsense"]),
)
def test_initialisers_work_or_raise_clearly(init, first, second, scheme, dtype):
    try:
        params = init(jax.random.key(0), first, second, init=scheme, dtype=dtype)
    except (ValueError, TypeError) as error:
        _clear_error(error, init.__name__)
        count_example("initialisers", "refused")
        return
    count_example("initialisers", "worked")
    valid = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1
    assert valid(first) and valid(second) and scheme in ("default", "torch")
    for leaf in jax.tree.leaves(params):
        assert leaf.dtype == jnp.dtype(dtype)
        assert bool(jnp.all(jnp.isfinite(leaf.astype(jnp.float32))))


@SETTINGS
@given(
    st.integers(0, 3),
    st.integers(0, 4),
    st.integers(1, 4),
    st.sampled_from([None, "shape", "dtype", "mask", "labels"]),
    st.integers(0, 10),
)
def test_losses_mask_and_readout_match_numpy_or_raise_clearly(B, T, V, fault, seed):
    rng = np.random.default_rng(seed)
    predictions = rng.normal(size=(B, T, V)).astype(np.float32)
    targets = rng.normal(size=(B, T, V)).astype(np.float32)
    labels = rng.integers(0, V, size=(B, T)).astype(np.int32)
    lengths = rng.integers(-1, T + 2, size=(B,)).astype(np.int32)
    mask = np.arange(T)[None, :] < lengths[:, None]
    if fault == "shape":
        targets = targets[..., :-1]
    if fault == "dtype":
        predictions = predictions.astype(np.int32)
    if fault == "mask":
        mask = mask.astype(np.float32)
    if fault == "labels":
        labels = labels.astype(np.float32)
    calls = [
        ("mse_loss", lambda: jaxrnn.train.mse_loss(predictions, targets, mask)),
        (
            "cross_entropy_loss",
            lambda: jaxrnn.train.cross_entropy_loss(predictions, labels, mask),
        ),
    ]
    for name, call in calls:
        try:
            value = float(call())
        except (ValueError, TypeError) as error:
            assert fault is not None, f"valid input refused: {error}"
            _clear_error(error, name)
            count_example("losses", "refused")
            continue
        count_example("losses", "worked")
        valid = mask.astype(bool)
        if name == "mse_loss":
            squared = ((predictions - targets) ** 2).mean(-1) * V
            expected = squared[valid].sum() / max(valid.sum() * V, 1)
        else:
            shifted = predictions - predictions.max(-1, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
            picked = np.take_along_axis(log_p, labels[..., None], -1)[..., 0]
            expected = -picked[valid].sum() / max(valid.sum(), 1)
        np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-6)
    # lengths_to_mask and readout on the same draws.
    np.testing.assert_array_equal(
        jaxrnn.lengths_to_mask(jnp.asarray(lengths), T),
        np.arange(T)[None, :] < lengths[:, None],
    )
    head = jaxrnn.init_readout(jax.random.key(seed), V, 2)
    try:
        y = jaxrnn.readout(head, predictions)
    except (ValueError, TypeError) as error:
        assert fault == "dtype", error
        _clear_error(error, "readout")
        return
    expected = predictions @ np.asarray(head.w_ya).T + np.asarray(head.b_y)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
