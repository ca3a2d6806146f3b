"""The minimal cells' linear impls ("assoc", "assoc_log", "linear_scan")
against the reference scan, values and gradients, with every option they take."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxrnn
from helpers import x64
from jaxrnn import layer
from jaxrnn.cells import _registry

MIN = [name for name, spec in _registry.CELLS.items() if spec.linear]
FORMS = ("assoc", "assoc_log", "linear_scan")
B, T, D, H = 4, 23, 3, 5


def _eps(dtype):
    return float(jnp.finfo(dtype).eps)


def _rel_error(got, want):
    """The largest error of any leaf, relative to that leaf's largest value."""
    errors = [
        float(jnp.max(jnp.abs(g - w)) / jnp.maximum(jnp.max(jnp.abs(w)), 1e-30))
        for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want))
    ]
    return max(errors)


def _forms(activation, **options):
    """The forms that run these options (the log form needs 'positive' and
    no reset)."""
    log = activation == "positive" and "reset" not in options
    return [f for f in FORMS if f != "assoc_log" or log]


def _loss_and_grads(params, xs, impl, **options):
    def loss(params, xs, h0):
        ys, state = jaxrnn.apply_layer(
            params, xs, initial_state=h0, impl=impl, **options
        )
        return jnp.sum(ys * jnp.cos(ys)) + jnp.sum(state**2), (ys, state)

    h0 = options.pop("h0")
    return jax.jit(jax.grad(loss, argnums=(0, 1, 2), has_aux=True))(params, xs, h0)


def _case(cell, activation, dtype, seed=0, **init):
    key = jax.random.key(seed)
    k1, k2, k3 = jax.random.split(key, 3)
    params = jaxrnn.init_layer(
        k1, cell, D, H, activation=activation, dtype=dtype, init="torch", **init
    )
    xs = jax.random.normal(k2, (B, T, D), dtype)
    count = params.num_layers * params.num_directions
    h0 = 0.5 * jax.random.normal(k3, (count, B, H), dtype)
    return params, xs, h0


OPTIONS = {
    "plain": {},
    "lengths": dict(lengths=jnp.array([T, 9, 1, 0])),
    "holes": dict(mask=jnp.arange(T)[None] % 3 != jnp.arange(B)[:, None]),
    "reset": dict(reset=(jnp.arange(T)[None] % 7 == jnp.arange(B)[:, None] + 1)),
    "segments": dict(checkpoint=4, lengths=jnp.array([T, 9, 1, 0])),
    "sqrt": dict(
        checkpoint="sqrt",
        reset=jnp.arange(T)[None] % 5 == 2 + 0 * jnp.arange(B)[:, None],
    ),
    "step": dict(checkpoint="step"),
    "time_major": dict(time_major=True),
}


# Every option once, the cells and activations taking turns, and every cell
# and activation without options: a grid of 11 rather than 32.
KINDS = [(c, a) for c in MIN for a in ("positive", "identity")]
GRID = [(*KINDS[i % len(KINDS)], option) for i, option in enumerate(OPTIONS)] + [
    (c, a, "plain") for c, a in KINDS[1:]
]


@pytest.mark.parametrize("cell, activation, option", GRID)
def test_every_form_is_the_reference_in_float64(cell, activation, option):
    """Stacked, bidirectional, with a random initial state: every form gives
    the reference scan's outputs, final state and gradients (params, xs and
    h0) to rounding in float64."""
    with x64():
        params, xs, h0 = _case(
            cell, activation, jnp.float64, num_layers=2, bidirectional=True
        )
        options = dict(OPTIONS[option])
        if options.pop("time_major", False):
            xs, options["time_major"] = jnp.swapaxes(xs, 0, 1), True
        want = _loss_and_grads(params, xs, "scan", h0=h0, **options)
        for form in _forms(activation, **options):
            got = _loss_and_grads(params, xs, form, h0=h0, **options)
            assert _rel_error(got, want) < 1e-10, form


@pytest.mark.parametrize("cell", MIN)
def test_float32_agrees_within_ten_eps_t(cell):
    """At T = 2048 in float32, every form agrees with the float64 reference
    within 10 eps T, relative (the issue's bound), values and gradients."""
    seq_len = 2048
    with x64():
        params, _, h0 = _case(cell, "positive", jnp.float64)
        xs = jax.random.normal(jax.random.key(7), (2, seq_len, D), jnp.float64)
        h0 = h0[:, :2]
        want = _loss_and_grads(params, xs, "scan", h0=h0)
        p32, x32, h32 = jax.tree.map(lambda a: a.astype(jnp.float32), (params, xs, h0))
        for form in FORMS:
            got = _loss_and_grads(p32, x32, form, h0=h32)
            got = jax.tree.map(lambda a: a.astype(jnp.float64), got)
            assert _rel_error(got, want) < 10 * _eps(jnp.float32) * seq_len, form


@pytest.mark.parametrize("form", ["assoc", "assoc_log"])
def test_gradients_against_finite_differences(form):
    """jax.grad through the associative scans equals finite differences in
    float64. The paper's g has a kink at 0 (g' jumps from 1/4 to 1), so the
    differences use steps of 1e-6, which straddle no kink here."""
    with x64():
        params, xs, h0 = _case("min_gru", "positive", jnp.float64, bidirectional=True)
        mask = OPTIONS["holes"]["mask"]

        def f(params, xs, h0):
            ys, state = jaxrnn.apply_layer(
                params, xs, initial_state=h0, mask=mask, impl=form
            )
            return jnp.sum(jnp.sin(ys)) + jnp.sum(state)

        check_grads(
            f, (params, xs, h0), order=1, modes=["rev"], atol=1e-6, rtol=1e-6, eps=1e-6
        )


@pytest.mark.parametrize("cell", MIN)
def test_nan_padding_never_reaches_a_gradient(cell):
    params, xs, h0 = _case(cell, "positive", jnp.float32, num_layers=2)
    lengths = jnp.array([T, 9, 1, 0])
    padded = jnp.where(
        jnp.arange(T)[None, :, None] < lengths[:, None, None], xs, jnp.nan
    )
    for form, checkpoint in [(f, None) for f in (*FORMS, "scan")] + [("assoc", 4)]:

        def loss(p, form=form, checkpoint=checkpoint):
            ys, _ = jaxrnn.apply_layer(
                p, padded, lengths=lengths, impl=form, checkpoint=checkpoint
            )
            return jnp.sum(ys)

        grads = jax.jit(jax.grad(loss))(params)
        assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads)), form


def test_dropout_between_layers_and_mixed_precision_match_the_reference():
    params, xs, h0 = _case("min_lstm", "identity", jnp.float32, num_layers=3)
    key = jax.random.key(3)
    for options in (dict(dropout=0.3, key=key), dict(matmul_dtype=jnp.bfloat16)):
        want, _ = jaxrnn.apply_layer(params, xs, impl="scan", **options)
        for form in ("assoc", "linear_scan"):
            got, _ = jaxrnn.apply_layer(params, xs, impl=form, **options)
            np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_what_a_form_cannot_run_is_refused_by_name():
    params, xs, _ = _case("min_gru", "identity", jnp.float32)
    with pytest.raises(
        ValueError,
        match=r"activation='identity' \(it has 'positive'\) \(the assoc_log path",
    ):
        jaxrnn.apply_layer(params, xs, impl="assoc_log")
    positive = jaxrnn.init_layer(
        jax.random.key(0), "min_gru", D, H, activation="positive"
    )
    with pytest.raises(ValueError, match=r"with reset \(the assoc_log path lacks it\)"):
        jaxrnn.apply_layer(
            positive, xs, impl="assoc_log", reset=jnp.zeros((B, T), bool)
        )
    for form in FORMS:
        with pytest.raises(ValueError, match=rf"zoneout \(the {form} path lacks it\)"):
            jaxrnn.apply_layer(
                positive, xs, impl=form, zoneout=0.1, key=jax.random.key(0)
            )
        with pytest.raises(
            ValueError, match=rf"recurrent_dropout \(the {form} path lacks it\)"
        ):
            layer.choose(form, "min_lstm", "positive", recurrent_dropout=True)
    lstm = jaxrnn.init_layer(jax.random.key(0), "lstm", D, H)
    with pytest.raises(
        ValueError, match=r"cell='lstm' \(it has 'min_gru', 'min_lstm'\)"
    ):
        jaxrnn.apply_layer(lstm, xs, impl="assoc")


def test_auto_runs_the_sequential_form_on_a_cpu_and_the_associative_elsewhere(
    monkeypatch,
):
    assert layer.choose("auto", "min_gru") == "linear_scan"
    assert layer.choose("auto", "min_lstm", recurrent_dropout=True) == "scan"
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert layer.choose("auto", "min_gru") == "assoc"
    assert layer.choose("auto", "lstm") == "fused"


def test_the_log_coefficients_are_the_logs_of_the_plain_ones():
    """Each cell's log-space equations are the log of its plain ones."""
    with x64():
        for name in MIN:
            spec = _registry.CELLS[name]
            params = spec.init(jax.random.key(1), D, H, dtype=jnp.float64, init="torch")
            xs = 3 * jax.random.normal(jax.random.key(2), (50, D), jnp.float64)
            a, b = spec.linear(params, xs, activation="positive")
            log_a, log_b = spec.linear(params, xs, activation="positive", log=True)
            np.testing.assert_allclose(jnp.exp(log_a), a, rtol=1e-12)
            np.testing.assert_allclose(jnp.exp(log_b), b, rtol=1e-12)
            assert bool((b > 0).all())
            with pytest.raises(ValueError, match="must be 'positive' in the log-space"):
                spec.linear(params, xs, activation="identity", log=True)


def test_streaming_a_min_cell_in_chunks_is_one_call():
    params, xs, _ = _case("min_gru", "positive", jnp.float32, num_layers=2)
    whole, final = jaxrnn.apply_layer(params, xs)
    state = jaxrnn.init_state(params, B)
    parts = []
    for chunk in (xs[:, :10], xs[:, 10:11], xs[:, 11:]):
        ys, state = jaxrnn.stream_layer(params, state, chunk, impl="assoc")
        parts.append(ys)
    np.testing.assert_allclose(jnp.concatenate(parts, 1), whole, atol=1e-6)
    np.testing.assert_allclose(state, final, atol=1e-6)
