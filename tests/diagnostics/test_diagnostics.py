"""jaxrnn.diagnostics against brute force: loops, explicit Jacobians, NumPy."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxrnn
from helpers import np_gru, np_lstm, np_rnn, sigmoid, x64
from jaxrnn import diagnostics as dg

T, D, H = 7, 3, 5


def _cell(name, key, activation="tanh"):
    """A float64 cell and its scan body."""
    if name == "rnn":
        p = jaxrnn.init_rnn(key, D, H, dtype=jnp.float64)
        p = p._replace(b=jax.random.normal(key, (H,), jnp.float64) * 0.3)
        step = functools.partial(jaxrnn.rnn_step, p, activation=activation)
        return p, step, jnp.zeros(H, jnp.float64) + 0.1
    if name == "lstm":
        p = jaxrnn.init_lstm(key, D, H, dtype=jnp.float64, init="torch")
        carry = jaxrnn.LSTMCarry(jnp.full(H, 0.2), jnp.full(H, -0.3))
        return p, functools.partial(jaxrnn.lstm_step, p), carry
    p = jaxrnn.init_gru(key, D, H, dtype=jnp.float64, init="torch")
    return p, functools.partial(jaxrnn.gru_step, p), jnp.full(H, 0.1, jnp.float64)


def _flat(tree):
    return np.concatenate([np.ravel(a) for a in jax.tree.leaves(tree)])


LOSSES = {
    "end": lambda hs: jnp.sum(jnp.sin(hs[-1])) + jnp.sum(hs[-1] ** 2),
    "every step": lambda hs: jnp.sum(jnp.cos(hs) * jnp.arange(1.0, T + 1)[:, None]),
}


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_state_gradients_match_one_backward_pass_per_step(cell, loss, getkey):
    """Brute force: for each t, split the sequence at t and differentiate the
    loss as a function of the state there, one jax.grad per t."""
    loss_fn = LOSSES[loss]
    with x64():
        _, step, carry = _cell(cell, getkey())
        xs = jax.random.normal(getkey(), (T, D), jnp.float64)
        out = dg.state_gradients(step, carry, xs, loss_fn)
        _, hs = jax.lax.scan(step, carry, xs)
        assert float(out.loss) == pytest.approx(float(loss_fn(hs)), rel=1e-12)
        state = carry
        for t in range(T):
            state, _ = step(state, xs[t])

            def tail(s, t=t):
                h = dg._grads.hidden_of(s)
                _, rest = jax.lax.scan(step, s, xs[t + 1 :])
                return loss_fn(jnp.concatenate([hs[:t], h[None], rest]))

            expected = jax.grad(tail)(state)
            got = jax.tree.map(lambda g, t=t: g[t], out.grads)
            np.testing.assert_allclose(_flat(got), _flat(expected), atol=1e-12)
            assert float(out.norms[t]) == pytest.approx(
                np.linalg.norm(_flat(expected)), rel=1e-10
            )


def test_state_gradients_match_finite_differences(getkey):
    with x64():
        _, step, carry = _cell("rnn", getkey())
        xs = jax.random.normal(getkey(), (T, D), jnp.float64)
        loss_fn = LOSSES["end"]
        out = dg.state_gradients(step, carry, xs, loss_fn)
        t, unit, eps = 2, 1, 1e-6

        def loss_with(delta):
            def body(s, inputs):
                k, x = inputs
                s, _ = step(s, x)
                s = s + jnp.where(k == t, delta, 0.0) * jax.nn.one_hot(unit, H)
                return s, s

            return loss_fn(jax.lax.scan(body, carry, (jnp.arange(T), xs))[1])

        fd = (loss_with(eps) - loss_with(-eps)) / (2 * eps)
        assert float(out.grads[t, unit]) == pytest.approx(float(fd), rel=1e-6)


def test_tanh_rnn_jacobian_is_the_lecture_formula(getkey):
    """dh_t/dh_{t-1} = diag(1 - h_t^2) W_hh, from NumPy states."""
    with x64():
        p, step, carry = _cell("rnn", getkey())
        xs = jax.random.normal(getkey(), (T, D), jnp.float64)
        out = dg.transition_jacobians(step, carry, xs)
        _, hs = np_rnn(p, np.asarray(carry), np.asarray(xs))
        w_hh = np.asarray(p.w_hh)
        for t in range(T):
            expected = np.diag(1 - hs[t] ** 2) @ w_hh
            np.testing.assert_allclose(out.jacobians[t], expected, atol=1e-12)
            assert float(out.norms[t]) == pytest.approx(
                np.linalg.norm(expected, 2), rel=1e-10
            )


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_jacobian_products_match_the_jacobian_of_the_whole_tail(cell, getkey):
    """to_end[t] = ||ds_T/ds_{t+1}||, from jacfwd of the unroll from t+1 to T."""
    with x64():
        _, step, carry = _cell(cell, getkey())
        xs = jax.random.normal(getkey(), (T, D), jnp.float64)
        out = dg.transition_jacobians(step, carry, xs)
        flat, unravel = jax.flatten_util.ravel_pytree(carry)
        assert out.jacobians.shape == (T, flat.size, flat.size)
        state = carry
        for t in range(T):
            before = state
            state, _ = step(state, xs[t])

            def one(s, t=t):
                return jax.flatten_util.ravel_pytree(step(unravel(s), xs[t])[0])[0]

            def tail(s, t=t):
                end, _ = jax.lax.scan(step, unravel(s), xs[t + 1 :])
                return jax.flatten_util.ravel_pytree(end)[0]

            start = jax.flatten_util.ravel_pytree(before)[0]
            np.testing.assert_allclose(
                out.jacobians[t], jax.jacfwd(one)(start), atol=1e-12
            )
            whole = jax.jacfwd(tail)(jax.flatten_util.ravel_pytree(state)[0])
            assert float(out.to_end[t]) == pytest.approx(
                np.linalg.norm(np.asarray(whole), 2), rel=1e-9
            )
        assert float(out.to_end[-1]) == pytest.approx(1.0)


def test_gradients_at_the_end_obey_the_jacobian_chain(getkey):
    """For L = v . h_T, dL/dh_t = (ds_T/ds_t)^T v, so ||dL/dh_t|| <= to_end[t] ||v||."""
    with x64():
        _, step, carry = _cell("rnn", getkey())
        xs = jax.random.normal(getkey(), (T, D), jnp.float64)
        v = jax.random.normal(getkey(), (H,), jnp.float64)
        grads = dg.state_gradients(step, carry, xs, lambda hs: hs[-1] @ v)
        jac = dg.transition_jacobians(step, carry, xs)
        product = np.eye(H)
        for t in reversed(range(T)):
            np.testing.assert_allclose(grads.grads[t], product.T @ v, atol=1e-12)
            assert (
                float(grads.norms[t])
                <= float(jac.to_end[t]) * np.linalg.norm(v) + 1e-12
            )
            product = product @ np.asarray(jac.jacobians[t])


def test_spectral_radius_and_norm_by_brute_force(getkey):
    with x64():
        rng = np.random.default_rng(0)
        q = rng.normal(size=(6, 6))
        eigenvalues = np.array([0.3, -1.7, 0.5, 0.9, -0.2, 1.1])
        w = jnp.asarray(q @ np.diag(eigenvalues) @ np.linalg.inv(q))
        assert float(dg.spectral_radius(w)) == pytest.approx(1.7, rel=1e-9)
        # Gelfand: ||w^k||^(1/k) -> radius.
        power = np.linalg.matrix_power(np.asarray(w) / 1.7, 400)
        assert np.linalg.norm(power, 2) ** (1 / 400) == pytest.approx(1.0, abs=0.02)
        # The largest singular value: the top of power iteration on w^T w.
        v = rng.normal(size=6)
        for _ in range(2000):
            v = np.asarray(w).T @ (np.asarray(w) @ v)
            v /= np.linalg.norm(v)
        assert float(dg.spectral_norm(w)) == pytest.approx(
            np.linalg.norm(np.asarray(w) @ v), rel=1e-9
        )
        stack = jnp.stack([w, 2 * w])
        np.testing.assert_allclose(dg.spectral_radius(stack), [1.7, 3.4], rtol=1e-9)
    w = jax.random.normal(getkey(), (16, 16))
    for radius in (0.5, 0.9, 3.0):
        scaled = dg.rescale_spectral_radius(w, radius)
        assert scaled.dtype == w.dtype
        eig = np.linalg.eigvals(np.asarray(scaled, np.float64))
        assert np.max(np.abs(eig)) == pytest.approx(radius, rel=1e-5)
    jitted = jax.jit(dg.spectral_radius)(w)
    assert float(jitted) == pytest.approx(float(dg.spectral_radius(w)), rel=1e-5)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
def test_derivative_bound_is_the_sup_of_the_derivative(activation):
    g = {"tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu}[activation]
    z = jnp.linspace(-8.0, 8.0, 100_001)
    sup = float(jnp.max(jnp.abs(jax.vmap(jax.grad(g))(z))))
    assert dg.derivative_bound(activation) == pytest.approx(sup, rel=1e-6)


@pytest.mark.parametrize("max_norm", [None, 0.5, 3.0])
def test_clip_trace_matches_a_python_loop_with_optax(max_norm, getkey):
    # In float64: after 12 steps a float32 trace and an eager float32 loop
    # differ in their last digits by how XLA fuses and rounds on each CPU
    # (3.34888 against 3.34896 on one machine), which is not what this checks.
    with x64():
        w = jax.random.normal(getkey(), (4, 3), jnp.float64)
        batches = jax.random.normal(getkey(), (12, 8, 3), jnp.float64) * 2.0

        def loss_fn(p, x):
            return jnp.mean(jnp.tanh(x @ p.T) ** 2) * 10.0

        optimizer = optax.sgd(0.3)
        trace = dg.clip_trace(loss_fn, w, batches, optimizer, max_norm)
        assert trace.params.dtype == jnp.float64
        chain = optax.chain(
            optax.clip_by_global_norm(max_norm) if max_norm else optax.identity(),
            optimizer,
        )
        params, state = w, chain.init(w)
        for k in range(12):
            loss, grads = jax.value_and_grad(loss_fn)(params, batches[k])
            before = float(jnp.linalg.norm(grads))
            updates, state = chain.update(grads, state, params)
            params = optax.apply_updates(params, updates)
            assert float(trace.loss[k]) == pytest.approx(float(loss), rel=1e-10)
            assert float(trace.norm_before[k]) == pytest.approx(before, rel=1e-10)
            after = min(before, max_norm) if max_norm else before
            assert float(trace.norm_after[k]) == pytest.approx(after, rel=1e-10)
            assert bool(trace.clipped[k]) == bool(max_norm and before >= max_norm)
        np.testing.assert_allclose(trace.params, params, rtol=1e-10, atol=1e-12)
    if max_norm == 0.5:
        assert trace.clipped.any()


def test_lstm_gates_by_hand_and_against_the_reference(getkey):
    with x64():
        p, step, carry = _cell("lstm", getkey())
        xs = jax.random.normal(getkey(), (T, D), jnp.float64)
        gates = dg.lstm_gates(p, xs, carry)
        _, hs = jax.lax.scan(step, carry, xs)
        np.testing.assert_allclose(gates.h, hs, atol=1e-14)
        (_, c_end), np_hs = np_lstm(p, np.asarray(carry.h), np.asarray(carry.c), xs)
        np.testing.assert_allclose(gates.h, np_hs, atol=1e-12)
        np.testing.assert_allclose(gates.c[-1], c_end, atol=1e-12)
        # Gate by gate, from the textbook form W [h_{t-1}, x_t] + b.
        w = np.concatenate([np.asarray(p.w_hh), np.asarray(p.w_ih)], 1)
        h, c = np.asarray(carry.h), np.asarray(carry.c)
        for t in range(T):
            z = w @ np.concatenate([h, np.asarray(xs[t])]) + np.asarray(p.b)
            i, f, g, o = np.split(z, 4)
            i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
            for name, value in zip("ifgo", (i, f, g, o)):
                np.testing.assert_allclose(getattr(gates, name)[t], value, atol=1e-12)
            c = f * c + i * g
            h = o * np.tanh(c)
            np.testing.assert_allclose(gates.c[t], c, atol=1e-12)


def test_gru_gates_by_hand_and_against_the_reference(getkey):
    with x64():
        p, step, carry = _cell("gru", getkey())
        xs = jax.random.normal(getkey(), (T, D), jnp.float64)
        gates = dg.gru_gates(p, xs, carry)
        _, hs = jax.lax.scan(step, carry, xs)
        np.testing.assert_allclose(gates.h, hs, atol=1e-14)
        np.testing.assert_allclose(
            gates.h, np_gru(p, np.asarray(carry), xs)[1], atol=1e-12
        )
        # h_t = (1 - z) n + z h_{t-1} from the reported gates alone.
        previous = np.concatenate([np.asarray(carry)[None], np.asarray(gates.h)[:-1]])
        mixed = (1 - gates.z) * gates.n + gates.z * previous
        np.testing.assert_allclose(gates.h, mixed, atol=1e-12)
        nobias = p._replace(b=None, b_hn=None)
        _, hs = jax.lax.scan(functools.partial(jaxrnn.gru_step, nobias), carry, xs)
        np.testing.assert_allclose(dg.gru_gates(nobias, xs, carry).h, hs, atol=1e-14)


def test_gate_statistics_count_like_numpy(getkey):
    p = jaxrnn.init_lstm(getkey(), D, H, init="torch")
    xs = jax.random.normal(getkey(), (4, 30, D)) * 3.0
    gates = jax.vmap(lambda x: dg.lstm_gates(p, x))(xs)
    stats = dg.gate_statistics(gates, margin=0.2)
    for name in "ifo":
        a = np.asarray(getattr(gates, name))
        assert float(stats.mean[name]) == pytest.approx(a.mean(), rel=1e-5)
        assert float(stats.low[name]) == pytest.approx((a < 0.2).mean())
        assert float(stats.high[name]) == pytest.approx((a > 0.8).mean())
    g = np.asarray(gates.g)
    assert float(stats.saturated["g"]) == pytest.approx((np.abs(g) > 0.6).mean())
    gru = jaxrnn.init_gru(getkey(), D, H)
    stats = dg.gate_statistics(dg.gru_gates(gru, xs[0]))
    assert sorted(stats.saturated) == ["n", "r", "z"]


def test_a_saturated_forget_gate_is_reported(getkey):
    p = jaxrnn.init_lstm(getkey(), D, H)
    rows = slice(H, 2 * H)
    p = p._replace(b=p.b.at[rows].set(8.0))
    stats = dg.gate_statistics(dg.lstm_gates(p, jnp.zeros((10, D))))
    assert float(stats.high["f"]) == 1.0 and float(stats.saturated["f"]) == 1.0


def test_errors_name_what_was_expected(getkey):
    p = jaxrnn.init_rnn(getkey(), D, H)
    step = functools.partial(jaxrnn.rnn_step, p)
    xs = jnp.ones((T, D))
    with pytest.raises(ValueError, match="must return a scalar"):
        dg.state_gradients(step, jnp.zeros(H), xs, lambda hs: hs)
    with pytest.raises(TypeError, match="step_fn must be a step function"):
        dg.state_gradients(p, jnp.zeros(H), xs, jnp.sum)
    with pytest.raises(TypeError, match="xs must have a real floating dtype"):
        dg.transition_jacobians(step, jnp.zeros(H), jnp.ones((T, D), jnp.int32))
    lstm = jaxrnn.init_lstm(getkey(), D, H)
    with pytest.raises(ValueError, match=r"square matrix.*w_hh\[:H\]"):
        dg.spectral_radius(lstm.w_hh)
    with pytest.raises(ValueError, match="nonzero spectral radius"):
        dg.rescale_spectral_radius(jnp.triu(jnp.ones((4, 4)), 1), 0.9)
    with pytest.raises(ValueError, match="radius must be a positive finite number"):
        dg.rescale_spectral_radius(p.w_hh, -1.0)
    with pytest.raises(TypeError, match="params must be LSTMParams"):
        dg.lstm_gates(p, xs)
    with pytest.raises(ValueError, match=r"xs must have shape \[T, D\]"):
        dg.lstm_gates(lstm, jnp.ones((T, D + 1)))
    with pytest.raises(ValueError, match=r"carry must have shape \[H\]"):
        dg.lstm_gates(lstm, xs, jaxrnn.LSTMCarry(jnp.zeros((2, H)), jnp.zeros((2, H))))
    with pytest.raises(ValueError, match=r"carry must have shape \[H\]"):
        dg.gru_gates(jaxrnn.init_gru(getkey(), D, H), xs, jnp.zeros(H + 1))
    gru = jaxrnn.init_gru(getkey(), D, H)
    with pytest.raises(ValueError, match="b and params.b_hn must both be arrays"):
        dg.gru_gates(gru._replace(b_hn=None), xs)
    with pytest.raises(TypeError, match="gates must be LSTMGates or GRUGates"):
        dg.gate_statistics({"f": xs})
    with pytest.raises(ValueError, match="margin must be below 0.5"):
        dg.gate_statistics(dg.lstm_gates(lstm, xs), margin=0.6)
    with pytest.raises(ValueError, match="activation must be one of"):
        dg.derivative_bound("gelu")
    with pytest.raises(ValueError, match="max_norm must be a positive finite number"):
        dg.clip_trace(jnp.sum, xs, xs, optax.sgd(0.1), max_norm=0.0)
    with pytest.raises(ValueError, match="share one leading steps axis"):
        dg.clip_trace(lambda p, b: jnp.sum(p), xs, (xs, xs[:2]), optax.sgd(0.1))


def test_span_jacobian_is_the_jacobian_of_the_span(getkey):
    with x64():
        _, step, carry = _cell("gru", getkey())
        xs = jax.random.normal(getkey(), (T, D), jnp.float64)
        jac = dg.transition_jacobians(step, carry, xs).jacobians
        states = [carry]
        for t in range(T):
            states.append(step(states[-1], xs[t])[0])
        for start, stop in [(0, T), (2, 5), (3, 3), (T - 1, T)]:

            def span(s, start=start, stop=stop):
                return jax.lax.scan(step, s, xs[start:stop])[0]

            expected = jax.jacfwd(span)(states[start])
            got = dg.span_jacobian(jac, start, stop)
            np.testing.assert_allclose(got, expected, atol=1e-12)
        with pytest.raises(ValueError, match=r"stop must be an int in \[0, T = 7\]"):
            dg.span_jacobian(jac, 0, T + 1)
        with pytest.raises(ValueError, match="start must be <= stop"):
            dg.span_jacobian(jac, 4, 2)
