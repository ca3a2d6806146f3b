"""Each cell against the NumPy float64 transcription of the lecture's equations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from helpers import CELL_IDS, CELLS, assert_trees_close, x64

D, H, T = 3, 5, 7  # unequal, so that a transposed weight fails loudly


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("init", ["default", "torch"])
@pytest.mark.parametrize("bias", [True, False])
def test_unroll_matches_numpy_equations(cell, init, bias, getkey):
    with x64():
        params = cell.init(getkey(), D, H, init=init, bias=bias, dtype=jnp.float64)
        carry = cell.random_carry(getkey(), H, jnp.float64)
        xs = jax.random.normal(getkey(), (T, D), jnp.float64)
        final, ys = jaxrnn.unroll(cell.step, params, carry, xs)
        expected_final, expected_ys = cell.numpy(params, carry, xs)
        assert_trees_close(ys, expected_ys, 1e-12)
        assert_trees_close(final, expected_final, 1e-12)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_one_step_matches_numpy(cell, getkey):
    with x64():
        params = cell.init(getkey(), D, H, init="torch", dtype=jnp.float64)
        carry = cell.random_carry(getkey(), H, jnp.float64)
        x = jax.random.normal(getkey(), (D,), jnp.float64)
        new_carry, y = cell.step(params, carry, x)
        expected_carry, expected_ys = cell.numpy(params, carry, x[None])
        assert_trees_close(new_carry, expected_carry, 1e-12)
        assert_trees_close(y, expected_ys[0], 1e-12)
        # The step's output is the new hidden state.
        h = new_carry.h if isinstance(new_carry, jaxrnn.LSTMCarry) else new_carry
        np.testing.assert_array_equal(y, h)


def test_lstm_gates_by_name(getkey):
    """The gate blocks are i, f, g, o: saturating one block has the named effect."""
    params = jaxrnn.init_lstm(getkey(), D, H, bias=True)
    zero = jnp.zeros_like(params.b)
    carry = jaxrnn.LSTMCarry(jnp.zeros(H), jnp.ones(H))
    x = jnp.zeros(D)
    block = lambda k, v: zero.at[k * H : (k + 1) * H].set(v)
    # Forget gate open (f block large), input closed: c is kept.
    p = params._replace(b=block(1, 30.0) + block(0, -30.0))
    new, _ = jaxrnn.lstm_step(p, carry, x)
    np.testing.assert_allclose(new.c, 1.0, atol=1e-6)
    # Forget gate shut: c is erased.
    p = params._replace(b=block(1, -30.0) + block(0, -30.0))
    new, _ = jaxrnn.lstm_step(p, carry, x)
    np.testing.assert_allclose(new.c, 0.0, atol=1e-6)
    # Output gate shut: h is 0 whatever c is.
    p = params._replace(b=block(1, 30.0) + block(3, -30.0))
    new, _ = jaxrnn.lstm_step(p, carry, x)
    np.testing.assert_allclose(new.h, 0.0, atol=1e-6)


def test_gru_b_hn_sits_inside_the_reset_product(getkey):
    """With the reset gate shut, b_hn has no effect; with it open, it does."""
    params = jaxrnn.init_gru(getkey(), D, H)
    h, x = jnp.ones(H), jnp.zeros(D)
    b_r_shut = params.b.at[:H].set(-40.0)
    b_r_open = params.b.at[:H].set(40.0)
    for b, changes in [(b_r_shut, False), (b_r_open, True)]:
        a, _ = jaxrnn.gru_step(params._replace(b=b), h, x)
        c, _ = jaxrnn.gru_step(params._replace(b=b, b_hn=params.b_hn + 1.0), h, x)
        assert bool(jnp.any(jnp.abs(a - c) > 1e-3)) == changes


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_default_init_scheme(name, getkey):
    init = {"rnn": jaxrnn.init_rnn, "lstm": jaxrnn.init_lstm, "gru": jaxrnn.init_gru}[
        name
    ]
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[name]
    d, h = 48, 32
    p = init(getkey(), d, h)
    # Orthogonal recurrent blocks.
    for k in range(gates):
        block = np.asarray(p.w_hh[k * h : (k + 1) * h])
        np.testing.assert_allclose(block @ block.T, np.eye(h), atol=1e-5)
    # Glorot-uniform input weights.
    limit = np.sqrt(6 / (d + h))
    assert float(jnp.abs(p.w_ih).max()) <= limit
    assert float(jnp.abs(p.w_ih).max()) > 0.9 * limit
    expected_b = np.zeros(gates * h)
    if name == "lstm":
        expected_b[h : 2 * h] = 1.0  # forget_bias defaults to 1.0
    np.testing.assert_array_equal(p.b, expected_b)


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_torch_init_scheme_matches_pytorch_distribution(name, getkey):
    """U(-k, k), k = 1/sqrt(H); b = b_ih + b_hh has the sum-of-uniforms variance."""
    init = {"rnn": jaxrnn.init_rnn, "lstm": jaxrnn.init_lstm, "gru": jaxrnn.init_gru}[
        name
    ]
    h = 64
    p = init(getkey(), 32, h, init="torch")
    k = 1 / np.sqrt(h)
    for w in (p.w_ih, p.w_hh):
        w = np.asarray(w)
        assert np.abs(w).max() <= k
        # Var of U(-k, k) is k^2 / 3: within 10% on thousands of samples.
        np.testing.assert_allclose(w.var(), k * k / 3, rtol=0.1)
    b = np.asarray(p.b)
    # Pool the biases of 40 draws so the variance estimate is tight.
    pooled = np.concatenate(
        [np.asarray(init(jax.random.key(s), 32, h, init="torch").b) for s in range(40)]
    )
    if name == "gru":
        pooled = pooled.reshape(40, 3 * h)[:, : 2 * h].ravel()
    np.testing.assert_allclose(pooled.var(), 2 * k * k / 3, rtol=0.1)
    summed = b if name != "gru" else b[: 2 * h]
    assert np.abs(summed).max() <= 2 * k
    if name == "gru":
        assert np.abs(b[2 * h :]).max() <= k and np.abs(np.asarray(p.b_hn)).max() <= k
    if name == "lstm":  # no forget offset with init="torch" unless asked
        assert abs(b[h : 2 * h].mean()) < 0.1
        shifted = jaxrnn.init_lstm(
            jax.random.key(3), 32, h, init="torch", forget_bias=2.0
        )
        plain = jaxrnn.init_lstm(jax.random.key(3), 32, h, init="torch")
        np.testing.assert_allclose(
            shifted.b - plain.b,
            np.r_[np.zeros(h), 2 * np.ones(h), np.zeros(2 * h)],
            atol=1e-6,
        )


def test_forget_bias_option(getkey):
    p = jaxrnn.init_lstm(getkey(), 3, 4, forget_bias=2.5)
    np.testing.assert_array_equal(
        p.b, np.r_[np.zeros(4), 2.5 * np.ones(4), np.zeros(8)]
    )
    p = jaxrnn.init_lstm(getkey(), 3, 4, forget_bias=0.0)
    np.testing.assert_array_equal(p.b, np.zeros(16))


def test_init_is_deterministic_per_key():
    a = jaxrnn.init_lstm(jax.random.key(7), 3, 5)
    b = jaxrnn.init_lstm(jax.random.key(7), 3, 5)
    c = jaxrnn.init_lstm(jax.random.key(8), 3, 5)
    assert_trees_close(a, b, 0)
    assert not np.allclose(a.w_ih, c.w_ih)


def test_readout_is_the_lecture_output_layer(getkey):
    r = jaxrnn.init_readout(getkey(), H, 2)
    hs = jax.random.normal(getkey(), (T, H))
    expected = np.asarray(hs) @ np.asarray(r.w_ya).T + np.asarray(r.b_y)
    np.testing.assert_allclose(jaxrnn.readout(r, hs), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        jaxrnn.readout(r, hs, activation="tanh"),
        np.tanh(expected),
        rtol=1e-6,
        atol=1e-6,
    )
    softmax = np.exp(expected) / np.exp(expected).sum(-1, keepdims=True)
    np.testing.assert_allclose(
        jaxrnn.readout(r, hs, activation="softmax"), softmax, rtol=1e-5, atol=1e-6
    )
    # Many-to-one: the last output alone.
    np.testing.assert_allclose(
        jaxrnn.readout(r, hs[-1]), expected[-1], rtol=1e-6, atol=1e-6
    )


def test_custom_activation_callable(getkey):
    params = jaxrnn.init_rnn(getkey(), D, H)
    xs = jax.random.normal(getkey(), (T, D))
    softsign = lambda z: z / (1 + jnp.abs(z))
    _, ys = jaxrnn.unroll(
        lambda p, c, x: jaxrnn.rnn_step(p, c, x, activation=softsign),
        params,
        jaxrnn.init_rnn_carry(H),
        xs,
    )
    h = np.zeros(H)
    for t in range(T):
        z = np.asarray(params.w_ih) @ np.asarray(xs[t]) + np.asarray(params.w_hh) @ h
        h = z / (1 + np.abs(z))
        np.testing.assert_allclose(ys[t], h, rtol=1e-5, atol=1e-6)
