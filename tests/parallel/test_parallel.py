"""parallel_unroll against unroll: values, gradients, info, and errors.

The reference is `unroll` (the step under lax.scan). Values must agree
within c * eps * T (relative to max(1, |reference|)); gradients against
jax.grad through unroll, and against finite differences in float64.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxrnn
from helpers import x64
from jaxrnn.cells._registry import CELLS, output_size
from jaxrnn.parallel import _api

C = 30  # the c of c * eps * T
METHODS = jaxrnn.parallel.METHODS


def _cell(name, key, dtype=jnp.float32, size=4, inputs=3):
    """A cell's step, params and a random initial carry (so that the
    gradient with respect to it is not trivially at zero)."""
    spec = CELLS[name]
    extra = (3,) if name == "proj_lstm" else ()
    params = spec.init(key, inputs, size, *extra, dtype=dtype)
    h = 0.3 * jax.random.normal(
        jax.random.fold_in(key, 1), (output_size(params),), dtype
    )
    if spec.lstm_carry:
        c = 0.3 * jax.random.normal(jax.random.fold_in(key, 2), (size,), dtype)
        return spec.step, params, jaxrnn.LSTMCarry(h, c)
    return spec.step, params, h


def _close(got, want, seq_len, dtype):
    bound = C * float(jnp.finfo(dtype).eps) * max(seq_len, 1)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert g.shape == w.shape and g.dtype == w.dtype
        scale = max(1.0, float(jnp.abs(w).max(initial=0)))
        err = float(jnp.abs(g - w).max(initial=0))
        assert err <= bound * scale, (err, bound * scale)


def _solve(step, params, carry, xs, **kw):
    """parallel_unroll under jit (solver options and unroll's alike)."""
    return jax.jit(lambda p, c, x: _api.parallel_unroll(step, p, c, x, **kw))(
        params, carry, xs
    )


def _both(step, params, carry, xs, **kw):
    """(parallel_unroll's answer, unroll's) on the same arguments."""
    got = _solve(step, params, carry, xs, **kw)
    for option in ("method", "max_iters", "tol"):
        kw.pop(option, None)
    return got, jaxrnn.unroll(step, params, carry, xs, **kw)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(CELLS))
def test_equals_unroll_for_every_cell(name, dtype, getkey):
    with x64():
        step, params, carry = _cell(name, getkey(), dtype)
        xs = jax.random.normal(getkey(), (60, 3), dtype)
        (final, ys, info), want = _both(step, params, carry, xs)
        assert bool(info.converged) and not bool(info.fell_back)
        _close((final, ys), want, 60, dtype)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seq_len", [0, 1, 2, 37])
def test_lengths_masks_and_reverse(seq_len, method, getkey):
    step, params, carry = _cell("lstm", getkey())
    xs = jax.random.normal(getkey(), (seq_len, 3))
    holes = jax.random.bernoulli(getkey(), 0.7, (seq_len,))
    for kw in (
        dict(mask=holes),
        dict(length=jnp.int32(seq_len // 2)),
        dict(mask=holes, reverse=True),
    ):
        valid = holes if "mask" in kw else jnp.arange(seq_len) < seq_len // 2
        # Padding may hold anything: it never reaches the step.
        padded = jnp.where(valid[:, None], xs, jnp.nan)
        clean = jnp.where(valid[:, None], xs, 0.0)
        final, ys, info = _solve(step, params, carry, padded, method=method, **kw)
        want = jaxrnn.unroll(step, params, carry, clean, **kw)
        _close((final, ys), want, seq_len, jnp.float32)
        assert bool(info.converged) and bool(jnp.isfinite(ys).all())


def _tanh_rnn(key, gain, size=16, inputs=3):
    params = jaxrnn.init_rnn(key, inputs, size)
    w = jax.random.normal(jax.random.fold_in(key, 1), (size, size)) / size**0.5
    return params._replace(w_hh=gain * w)


@pytest.mark.parametrize("method", METHODS)
def test_contractive_converges_fast_and_chaotic_falls_back(method, getkey):
    xs = 0.5 * jax.random.normal(getkey(), (300, 3))
    calm = _tanh_rnn(getkey(), 0.5)
    (final, ys, info), want = _both(
        jaxrnn.rnn_step, calm, jnp.zeros(16), xs, method=method
    )
    assert bool(info.converged) and not bool(info.fell_back)
    assert int(info.iterations) <= (25 if method == "quasi" else 6)
    _close((final, ys), want, 300, jnp.float32)
    # A chaotic network (LLE > 0): Newton cannot converge in 100 iterations
    # over 300 steps, and the sequential scan gives the answer.
    wild = _tanh_rnn(getkey(), 3.0)
    assert (
        float(
            jaxrnn.diagnostics.lyapunov_exponent(
                jaxrnn.rnn_step, wild, jnp.zeros(16), xs
            )
        )
        > 0
    )
    (final, ys, info), want = _both(
        jaxrnn.rnn_step, wild, jnp.zeros(16), xs, method=method
    )
    assert not bool(info.converged) and bool(info.fell_back)
    assert int(info.iterations) == 100
    _close((final, ys), want, 300, jnp.float32)


def test_newton_and_damped_detect_chaos_within_t_iterations(getkey):
    """With max_iters past T, Newton's step test (not its residual) keeps a
    chaotic trajectory from being reported converged."""
    xs = 0.5 * jax.random.normal(getkey(), (80, 3))
    wild = _tanh_rnn(getkey(), 3.0)
    for method in ("newton", "damped"):
        (final, ys, info), want = _both(
            jaxrnn.rnn_step, wild, jnp.zeros(16), xs, method=method, max_iters=200
        )
        assert bool(info.fell_back)
        _close((final, ys), want, 80, jnp.float32)


def test_damped_keeps_every_iterate_finite(getkey):
    xs = 0.5 * jax.random.normal(getkey(), (1000, 3))
    wild = _tanh_rnn(getkey(), 3.0)
    run = lambda method: _api.parallel_unroll(  # noqa: E731
        jaxrnn.rnn_step,
        wild,
        jnp.zeros(16),
        xs,
        method=method,
        max_iters=30,
        fallback=False,
    )
    _, ys_newton, _ = jax.jit(lambda: run("newton"))()
    _, ys_damped, info = jax.jit(lambda: run("damped"))()
    assert not bool(jnp.isfinite(ys_newton).all())
    assert bool(jnp.isfinite(ys_damped).all()) and bool(jnp.isfinite(info.residual))


def test_info_tells_the_truth(getkey):
    step, params, carry = _cell("gru", getkey())
    xs = jax.random.normal(getkey(), (50, 3))
    (final, ys, info), want = _both(step, params, carry, xs, max_iters=1)
    assert int(info.iterations) == 1 and not bool(info.converged)
    assert bool(info.fell_back) and float(info.residual) > 1e-5
    _close((final, ys), want, 50, jnp.float32)
    final, ys, info = _api.parallel_unroll(
        step, params, carry, xs, max_iters=1, fallback=False
    )
    assert not bool(info.converged) and not bool(info.fell_back)
    assert float(jnp.abs(ys - want[1]).max()) > 1e-3  # Newton's first iterate


def test_a_batch_falls_back_only_where_it_must(getkey):
    """One solve of a batch: the saturated sequence converges, the chaotic one
    (the same weights, zero inputs) falls back, and both are right."""
    wild = _tanh_rnn(getkey(), 3.0)
    xs = jnp.stack([20 * jnp.ones((200, 3)), jnp.zeros((200, 3))])
    xs = xs + 0.1 * jax.random.normal(getkey(), xs.shape)
    options = _api.resolve("test", "newton", None, None, True, xs.dtype)
    final, ys, info = _api.run(
        jaxrnn.rnn_step, wild, jnp.zeros((2, 16)), xs, None, reverse=False, **options
    )
    assert info.converged.tolist() == [True, False]
    assert info.fell_back.tolist() == [False, True]
    for b in range(2):
        want = jaxrnn.unroll(jaxrnn.rnn_step, wild, jnp.zeros(16), xs[b])
        _close((final[b], ys[b]), want, 200, jnp.float32)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", ["lstm", "gru", "rnn", "layer_norm_gru", "proj_lstm"])
def test_gradients_equal_bptt(name, method, getkey):
    with x64():
        step, params, carry = _cell(name, getkey(), jnp.float64)
        xs = jax.random.normal(getkey(), (30, 3), jnp.float64)
        mask = jnp.arange(30) < 23
        padded = jnp.where(mask[:, None], xs, jnp.inf)

        def loss(run, params, carry, xs):
            final, ys = run(params, carry, xs)[:2]
            tail = sum((leaf**3).sum() for leaf in jax.tree.leaves(final))
            return (jnp.sin(ys) ** 2).sum() + tail

        par = functools.partial(_api.parallel_unroll, step, method=method, mask=mask)
        ref = functools.partial(jaxrnn.unroll, step, mask=mask)
        got = jax.jit(jax.grad(functools.partial(loss, par), argnums=(0, 1, 2)))(
            params, carry, padded
        )
        clean = jnp.where(mask[:, None], xs, 0.0)
        want = jax.grad(functools.partial(loss, ref), argnums=(0, 1, 2))(
            params, carry, clean
        )
        for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-10)
        assert float(jnp.abs(got[2][23:]).max()) == 0.0  # padding: exact zeros


@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_gradients_equal_finite_differences(name, getkey):
    with x64():
        step, params, carry = _cell(name, getkey(), jnp.float64, size=3, inputs=2)
        xs = jax.random.normal(getkey(), (12, 2), jnp.float64)

        def loss(params, carry, xs):
            final, ys, _ = _api.parallel_unroll(step, params, carry, xs)
            return (ys**2).sum() + sum(leaf.sum() for leaf in jax.tree.leaves(final))

        check_grads(loss, (params, carry, xs), order=1, modes=("rev",), eps=1e-6)


def test_vmap_and_bfloat16(getkey):
    step, params, carry = _cell("gru", getkey())
    xs = jax.random.normal(getkey(), (4, 50, 3))
    _, ys, info = jax.vmap(lambda x: _api.parallel_unroll(step, params, carry, x))(xs)
    want = jax.vmap(lambda x: jaxrnn.unroll(step, params, carry, x)[1])(xs)
    _close(ys, want, 50, jnp.float32)
    assert info.converged.shape == (4,)
    half = jax.tree.map(lambda a: a.astype(jnp.bfloat16), (params, carry, xs[0]))
    _, ys16, info16 = _api.parallel_unroll(step, *half)
    assert ys16.dtype == jnp.bfloat16 and bool(info16.converged)
    want16 = jaxrnn.unroll(step, *half)[1].astype(jnp.float32)
    assert float(jnp.abs(ys16.astype(jnp.float32) - want16).max()) < 0.1


def test_forward_mode_is_refused(getkey):
    step, params, carry = _cell("gru", getkey())
    xs = jnp.ones((5, 3))
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(lambda x: _api.parallel_unroll(step, params, carry, x)[1], (xs,), (xs,))


def test_bad_input_is_named_at_trace_time(getkey):
    step, params, carry = _cell("gru", getkey())
    xs = jnp.ones((5, 3))
    run = lambda *a, **kw: jax.jit(  # noqa: E731
        lambda: _api.parallel_unroll(*a, **kw)
    )()
    cases = [
        ((None, params, carry, xs), {}, TypeError, "step must be a step function"),
        ((lambda p, c, x: c, params, carry, xs), {}, ValueError, "must return a pair"),
        (
            (lambda p, c, x: (c[:2], c), params, carry, xs),
            {},
            ValueError,
            "carry's structure",
        ),
        (
            (step, params, carry, xs),
            dict(method="jacobi"),
            ValueError,
            "method must be one of",
        ),
        (
            (step, params, carry, xs),
            dict(tol=0.0),
            ValueError,
            "tol must be a positive",
        ),
        ((step, params, carry, xs), dict(tol=float("nan")), ValueError, "tol must be"),
        ((step, params, carry, xs), dict(tol="small"), TypeError, "tol must be"),
        ((step, params, carry, xs), dict(max_iters=0), ValueError, "max_iters must be"),
        (
            (step, params, carry, xs),
            dict(max_iters=2.5),
            TypeError,
            "max_iters must be",
        ),
        ((step, params, carry, xs[None]), {}, ValueError, "xs must be 2-D"),
        ((step, params, carry, xs), dict(mask=jnp.ones(4, bool)), ValueError, "mask"),
    ]
    for args, kw, kind, message in cases:
        with pytest.raises(kind, match=message):
            run(*args, **kw)


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn", "proj_lstm"])
def test_the_layer_runs_in_parallel(name, getkey):
    """apply_layer(impl="parallel"): stacked, bidirectional, with lengths and
    padding holding NaN, values and gradients against impl="scan". One cell
    per kind of carry (an LSTMCarry, one array, a projected h); every cell's
    step is solved against `unroll` in test_equals_unroll_for_every_cell."""
    with x64():
        kw = dict(proj_size=3) if name == "proj_lstm" else {}
        params = jaxrnn.init_layer(
            getkey(),
            name,
            3,
            4,
            num_layers=2,
            bidirectional=True,
            dtype=jnp.float64,
            **kw,
        )
        xs = jax.random.normal(getkey(), (3, 15, 3), jnp.float64)
        lengths = jnp.array([15, 6, 0])
        valid = (jnp.arange(15)[None] < lengths[:, None])[..., None]

        def loss(params, xs, impl):
            ys, state = jaxrnn.apply_layer(params, xs, lengths=lengths, impl=impl)
            return (ys**2).sum() + sum(
                (leaf**2).sum() for leaf in jax.tree.leaves(state)
            )

        got = jax.jit(jax.value_and_grad(loss), static_argnums=2)(
            params, jnp.where(valid, xs, jnp.nan), "parallel"
        )
        want = jax.value_and_grad(loss)(params, jnp.where(valid, xs, 0.0), "scan")
        for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(g, w, rtol=1e-8, atol=1e-10)


def test_the_layer_refuses_what_parallel_lacks(getkey):
    params = jaxrnn.init_layer(getkey(), "gru", 3, 4)
    xs = jnp.ones((2, 5, 3))
    with pytest.raises(ValueError, match=r"with reset \(the parallel path lacks it\)"):
        jaxrnn.apply_layer(params, xs, reset=jnp.zeros((2, 5), bool), impl="parallel")
    with pytest.raises(ValueError, match="zoneout"):
        jaxrnn.apply_layer(params, xs, zoneout=0.1, training=False, impl="parallel")
    assert jaxrnn.layer.choose("auto", "gru") != "parallel"
