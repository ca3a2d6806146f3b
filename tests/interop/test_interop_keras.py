"""jaxrnn.interop against Keras 3's own SimpleRNN, LSTM and GRU layers (JAX backend)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":  # pragma: no cover - another backend was chosen
    pytest.skip(
        "Keras was imported with a backend other than JAX", allow_module_level=True
    )

import jaxrnn  # noqa: E402
from helpers import record_error, x64  # noqa: E402
from jaxrnn import interop  # noqa: E402

pytestmark = pytest.mark.usefixtures("permissive_promotion")
D, H, T, B = 3, 5, 7, 4
LAYERS = {
    "SimpleRNN-tanh": lambda **kw: keras.layers.SimpleRNN(H, **kw),
    "SimpleRNN-relu": lambda **kw: keras.layers.SimpleRNN(H, activation="relu", **kw),
    "SimpleRNN-linear": lambda **kw: keras.layers.SimpleRNN(
        H, activation="linear", **kw
    ),
    "LSTM": lambda **kw: keras.layers.LSTM(H, **kw),
    "GRU": lambda **kw: keras.layers.GRU(H, **kw),
    "GRU-reset-before": lambda **kw: keras.layers.GRU(H, reset_after=False, **kw),
}
OPTIONS = [
    dict(return_sequences=True, return_state=True),
    dict(return_sequences=False, return_state=False),
    dict(return_sequences=True, go_backwards=True, use_bias=False),
    dict(return_sequences=True, return_state=True, go_backwards=True),
]


def _built(name, seed=0, **kwargs):
    layer = LAYERS[name](**kwargs)
    layer.build((None, None, D))
    rng = np.random.default_rng(seed)
    for v in layer.weights:  # nonzero biases, so a lost bias shows
        v.assign(0.5 * rng.normal(size=v.shape).astype(v.dtype))
    return layer


def _leaves(out):
    return out if isinstance(out, (list, tuple)) else [out]


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(sorted(o)))
@pytest.mark.parametrize("masked", [False, True])
def test_layers_match_keras(name, options, masked):
    _check_layer(name, options, masked, jnp.float32, 1e-5)


# Keras 3.15 computes tanh of float64 tensors in float32 (keras.ops.tanh casts to
# result_type(x.dtype, float), which is float32), so only its layers without tanh
# are float64 throughout; with tanh they agree with jaxrnn to float32 rounding.
@pytest.mark.parametrize(
    "name,tol",
    [
        ("SimpleRNN-relu", 1e-10),
        ("SimpleRNN-linear", 1e-10),
        ("SimpleRNN-tanh", 1e-6),
        ("LSTM", 1e-6),
        ("GRU", 1e-6),
    ],
)
def test_layers_match_keras_in_float64(name, tol):
    with x64():
        _check_layer(name, OPTIONS[3], True, jnp.float64, tol)


def _check_layer(name, options, masked, dtype, tol):
    layer = _built(name, dtype=jnp.dtype(dtype).name, **options)
    xs = jax.random.normal(jax.random.key(1), (B, T, D), dtype)
    states = [
        jax.random.normal(jax.random.key(k), (B, H), dtype)
        for k in range(2 if name == "LSTM" else 1)
    ]
    mask = (
        jnp.array([[1] * 7, [1] * 4 + [0] * 3, [0, 1, 1, 0, 1, 0, 0], [0] * 7], bool)
        if masked
        else None
    )
    params, apply = interop.from_keras(layer)

    def keras_loss(xs, states):
        out = _leaves(layer(xs, initial_state=list(states), mask=mask))
        return sum(jnp.sum(jnp.sin(o)) for o in out), out

    def our_loss(xs, states):
        out = _leaves(apply(params, xs, list(states), mask=mask))
        return sum(jnp.sum(jnp.sin(o)) for o in out), out

    (_, expected), expected_grads = jax.value_and_grad(
        keras_loss, (0, 1), has_aux=True
    )(xs, states)
    (_, got), grads = jax.value_and_grad(our_loss, (0, 1), has_aux=True)(xs, states)
    assert len(got) == len(expected)
    record_error("keras", xs.dtype, (got, grads), (expected, expected_grads))
    for a, b in zip(
        jax.tree.leaves((got, grads)), jax.tree.leaves((expected, expected_grads))
    ):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("use_bias", [True, False])
def test_round_trips_are_exact(name, use_bias):
    layer = _built(name, use_bias=use_bias, return_sequences=True)
    params, _ = interop.from_keras(layer)
    back = interop.to_keras(params, return_sequences=True)
    assert type(back) is type(layer)
    for a, b in zip(back.weights, layer.weights):
        if name == "GRU" and a.path.endswith("bias"):
            # Keras' GRU keeps two biases; jaxrnn their sum on the r, z blocks, so
            # the round trip is exact on the n block and on the sums.
            a, b = np.asarray(a.value), np.asarray(b.value)
            np.testing.assert_array_equal(a[0, 2 * H :], b[0, 2 * H :])
            np.testing.assert_array_equal(a[1, 2 * H :], b[1, 2 * H :])
            np.testing.assert_array_equal(a.sum(0)[: 2 * H], b.sum(0)[: 2 * H])
        else:
            np.testing.assert_array_equal(a.value, b.value)
    again, _ = interop.from_keras(back)
    for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(params)):
        np.testing.assert_array_equal(a, b)
    xs = jax.random.normal(jax.random.key(1), (B, T, D))
    np.testing.assert_allclose(back(xs), layer(xs), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell, reset_after", [("gru", True), ("cho_gru", False)])
def test_jaxrnn_params_to_keras(cell, reset_after, getkey):
    params = jaxrnn.init_layer(getkey(), cell, D, H, init="torch")
    layer = interop.to_keras(params, return_sequences=True)
    assert layer.get_config()["reset_after"] is reset_after
    xs = jax.random.normal(getkey(), (B, T, D))
    np.testing.assert_allclose(
        layer(xs), jaxrnn.apply_layer(params, xs)[0], rtol=1e-5, atol=1e-5
    )


def test_a_reset_before_gru_is_the_cho_gru_cell():
    gru = _built("GRU-reset-before")
    params, _ = interop.from_keras(gru)
    assert params.cell == "cho_gru"
    xs = jax.random.normal(jax.random.key(2), (B, T, D))
    ys = jaxrnn.apply_layer(params, xs)[0]  # through the layer, every impl's rule
    np.testing.assert_allclose(ys[:, -1], gru(xs), rtol=1e-5, atol=1e-5)


def test_refusals():
    lstm = keras.layers.LSTM(H, recurrent_activation="hard_sigmoid")
    lstm.build((None, None, D))
    with pytest.raises(ValueError, match=r"recurrent_activation='sigmoid'"):
        interop.from_keras(lstm)
    with pytest.raises(ValueError, match=r"from_keras: layer must be built"):
        interop.from_keras(keras.layers.LSTM(H))
    with pytest.raises(
        TypeError, match=r"must be a keras.layers.SimpleRNN, LSTM or GRU"
    ):
        interop.from_keras(keras.layers.Dense(H))
