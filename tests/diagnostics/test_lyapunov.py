"""The Lyapunov exponents and the parallel-solve predictor, against brute
force and closed forms."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from helpers import x64
from jaxrnn import diagnostics as dg

LINEAR = functools.partial(jaxrnn.rnn_step, activation="identity")


def _tanh_rnn(key, gain, size=32):
    params = jaxrnn.init_rnn(key, 3, size)
    w = jax.random.normal(jax.random.fold_in(key, 1), (size, size)) / size**0.5
    return params._replace(w_hh=gain * w)


def test_a_linear_rnn_has_the_log_of_its_spectral_radius(getkey):
    with x64():
        eigenvalues = jnp.array([1.3, -0.9, 0.6, 0.2, -0.05])
        q = jnp.linalg.qr(jax.random.normal(getkey(), (5, 5), jnp.float64))[0]
        params = jaxrnn.init_rnn(getkey(), 2, 5, dtype=jnp.float64)
        params = params._replace(w_hh=q @ jnp.diag(eigenvalues) @ q.T)
        xs = jax.random.normal(getkey(), (400, 2), jnp.float64)
        lle = dg.lyapunov_exponent(LINEAR, params, jnp.zeros(5), xs)
        assert abs(float(lle) - np.log(1.3)) < 0.02
        spectrum = dg.lyapunov_spectrum(LINEAR, params, jnp.zeros(5), xs)
        want = np.sort(np.log(np.abs(np.asarray(eigenvalues))))[::-1]
        np.testing.assert_allclose(spectrum, want, atol=0.03)


def test_contractive_is_negative_and_chaotic_positive(getkey):
    xs = jnp.zeros((600, 3))
    calm = dg.lyapunov_exponent(
        jaxrnn.rnn_step, _tanh_rnn(getkey(), 0.5), jnp.zeros(32), xs
    )
    wild = dg.lyapunov_exponent(
        jaxrnn.rnn_step, _tanh_rnn(getkey(), 3.0), 0.5 * jnp.ones(32), xs
    )
    assert float(calm) < -0.3 and float(wild) > 0.1


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_it_equals_the_brute_force_product_over_short_spans(name, getkey):
    with x64():
        step = {
            "rnn": jaxrnn.rnn_step,
            "lstm": jaxrnn.lstm_step,
            "gru": jaxrnn.gru_step,
        }[name]
        init = {
            "rnn": jaxrnn.init_rnn,
            "lstm": jaxrnn.init_lstm,
            "gru": jaxrnn.init_gru,
        }[name]
        params = init(getkey(), 2, 4, dtype=jnp.float64)
        carry = (
            jaxrnn.init_lstm_carry(4, dtype=jnp.float64)
            if name == "lstm"
            else jnp.zeros(4, jnp.float64)
        )
        xs = jax.random.normal(getkey(), (12, 2), jnp.float64)
        jac = dg.transition_jacobians(
            functools.partial(step, params), carry, xs
        ).jacobians
        product = functools.reduce(lambda acc, j: j @ acc, list(jac))
        n = product.shape[0]
        v = jax.random.normal(getkey(), (n,), jnp.float64)
        lle = dg.lyapunov_exponent(step, params, carry, xs, start=v)
        brute = np.log(np.linalg.norm(product @ v) / np.linalg.norm(v)) / 12
        np.testing.assert_allclose(float(lle), brute, rtol=1e-10, atol=1e-12)
        total = dg.lyapunov_spectrum(step, params, carry, xs).sum()
        # The sum of all exponents is the mean log |det J_t| (the determinant
        # of each factor: the product's own is lost to rounding).
        dets = np.log(np.abs(np.linalg.det(np.asarray(jac)))).sum() / 12
        np.testing.assert_allclose(float(total), dets, rtol=1e-8)


def test_masked_steps_are_left_out(getkey):
    params = _tanh_rnn(getkey(), 0.9, size=8)
    xs = jax.random.normal(getkey(), (50, 3))
    start = jax.random.normal(getkey(), (8,))
    short = dg.lyapunov_exponent(
        jaxrnn.rnn_step, params, jnp.zeros(8), xs[:30], start=start
    )
    padded = dg.lyapunov_exponent(
        jaxrnn.rnn_step,
        params,
        jnp.zeros(8),
        xs.at[30:].set(jnp.nan),
        length=30,
        start=start,
    )
    np.testing.assert_allclose(padded, short, rtol=1e-6)


def test_the_outlook_predicts_the_iterations(getkey):
    xs = 0.5 * jax.random.normal(getkey(), (1200, 3))
    for gain, fast in ((0.5, True), (3.0, False)):
        params = _tanh_rnn(getkey(), gain, size=16)
        outlook = dg.parallel_outlook(jaxrnn.rnn_step, params, jnp.zeros(16), xs)
        assert bool(outlook.fast) == fast and outlook.steps == 512
        info = jaxrnn.parallel_unroll(jaxrnn.rnn_step, params, jnp.zeros(16), xs)[2]
        assert bool(info.converged) == fast


def test_bad_input_is_named(getkey):
    params = _tanh_rnn(getkey(), 0.5, size=4)
    xs = jnp.ones((5, 3))
    with pytest.raises(ValueError, match="k must be at most n = 4"):
        dg.lyapunov_spectrum(jaxrnn.rnn_step, params, jnp.zeros(4), xs, k=5)
    with pytest.raises(ValueError, match=r"start must be \[n, k\]"):
        dg.lyapunov_exponent(
            jaxrnn.rnn_step, params, jnp.zeros(4), xs, start=jnp.ones(3)
        )
    with pytest.raises(ValueError, match="probe must be a positive int"):
        dg.parallel_outlook(jaxrnn.rnn_step, params, jnp.zeros(4), xs, probe=0)
    with pytest.raises(TypeError, match="step must be a step function"):
        dg.lyapunov_exponent("rnn", params, jnp.zeros(4), xs)
