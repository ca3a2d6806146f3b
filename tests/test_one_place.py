"""Each cell's gate equations are written once: the steps, their variants and
the diagnostics all call the one gate function (so none can drift)."""

import jax
import jax.numpy as jnp
import pytest

import jaxrnn
from jaxrnn import diagnostics
from jaxrnn.cells import _activations, _gru, _lstm


def _counting(monkeypatch, module, name):
    calls = []
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


@pytest.mark.parametrize(
    "use",
    [
        lambda k: jaxrnn.lstm_step(
            jaxrnn.init_lstm(k, 3, 5), jaxrnn.init_lstm_carry(5), jnp.ones(3)
        ),
        lambda k: jaxrnn.proj_lstm_step(
            jaxrnn.init_proj_lstm(k, 3, 5, 2),
            jaxrnn.init_proj_lstm_carry(5, 2),
            jnp.ones(3),
        ),
        lambda k: jaxrnn.layer_norm_lstm_step(
            jaxrnn.init_layer_norm_lstm(k, 3, 5), jaxrnn.init_lstm_carry(5), jnp.ones(3)
        ),
        lambda k: diagnostics.lstm_gates(jaxrnn.init_lstm(k, 3, 5), jnp.ones((4, 3))),
    ],
    ids=["lstm_step", "proj_lstm_step", "layer_norm_lstm_step", "diagnostics"],
)
def test_the_lstm_gates_are_computed_by_one_function(monkeypatch, use):
    calls = _counting(monkeypatch, _lstm, "lstm_gates")
    use(jax.random.key(0))
    assert calls


@pytest.mark.parametrize(
    "use",
    [
        lambda k: jaxrnn.gru_step(
            jaxrnn.init_gru(k, 3, 5), jaxrnn.init_gru_carry(5), jnp.ones(3)
        ),
        lambda k: jaxrnn.layer_norm_gru_step(
            jaxrnn.init_layer_norm_gru(k, 3, 5), jnp.zeros(5), jnp.ones(3)
        ),
        lambda k: diagnostics.gru_gates(jaxrnn.init_gru(k, 3, 5), jnp.ones((4, 3))),
    ],
    ids=["gru_step", "layer_norm_gru_step", "diagnostics"],
)
def test_the_gru_gates_are_computed_by_one_function(monkeypatch, use):
    calls = _counting(monkeypatch, _gru, "gru_gates")
    use(jax.random.key(0))
    assert calls


@pytest.mark.parametrize("name", sorted(_activations.ACTIVATIONS))
def test_each_derivative_in_the_table_is_the_derivative(name):
    """g'(z), written as a function of y = g(z), equals jax.grad of g."""
    row = _activations.ACTIVATIONS[name]
    z = jnp.linspace(-3.0, 3.0, 13, dtype=jnp.float32) + 0.01  # not at relu's kink
    expected = jax.vmap(jax.grad(row.fn))(z)
    assert jnp.allclose(row.grad(row.fn(z)), expected, atol=1e-6)
