"""The fast path (impl="fused", and impl="pallas", the same path with its
loops as Pallas kernels) against the reference (impl="scan").

The reference is the step under `lax.scan`, vmapped over the batch, and
differentiated by `jax.grad`. The fast path has its own forward loop and a
hand-written backward pass, so every value and every gradient (params, inputs
and initial state) is compared, for every cell it covers and every layer
option it supports, in float64 to 1e-12, in float32 to 1e-5 and in bfloat16
to 0.05. Finite differences check its gradients once more, independently of
both.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxrnn
from fast_paths import CELLS, ONE_EACH, B, D, H, _compare, _layer, _loss, _state
from helpers import assert_trees_close, x64
from jaxrnn.fast import _fused

# The fused path, and the same path with its loops as Pallas kernels (run in
# interpret mode on a CPU: see test_pallas.py). The kernels' cases are marked
# slow, so they run in the README's command and CI's Python 3.11 pass; the
# Python 3.12 pass checks the kernels under the newest jax with the tests of
# test_pallas.py (odd sizes, every loop, the lowering for GPU and TPU).
IMPLS = ["fused", pytest.param("pallas", marks=pytest.mark.slow)]
# The grids of options and precisions: every cell on the fused path, and the
# LSTM alone on the kernels (interpret mode is slow; the kernels' loop is the
# same for every cell, and the grids above run every cell through it).
OPTION_GRID = [
    pytest.param(*cell, impl, marks=[pytest.mark.slow] if impl == "pallas" else [])
    for impl in ("fused", "pallas")
    for cell in ONE_EACH
    if impl == "fused" or cell[0] == "lstm"
]


@pytest.mark.parametrize(
    "cell, activation, bias",
    [(*c, True) for c in CELLS] + [(*c, False) for c in ONE_EACH],
)
@pytest.mark.parametrize("impl", IMPLS)
def test_values_and_gradients_match_the_reference_float64(cell, activation, bias, impl):
    with x64():
        _compare(
            jax.random.key(0),
            cell,
            activation,
            jnp.float64,
            layer={"bias": bias},
            impl=impl,
        )


@pytest.mark.slow
@pytest.mark.parametrize("cell, activation, impl", OPTION_GRID)
def test_every_supported_option_at_once_float64(cell, activation, impl):
    """Two layers, both directions, lengths, a learned initial state, a
    residual connection, a merge and dropout between the layers."""
    with x64():
        for merge, residual in [("concat", False), ("sum", True)]:
            _compare(
                jax.random.key(1),
                cell,
                activation,
                jnp.float64,
                layer={
                    "num_layers": 2,
                    "bidirectional": True,
                    "merge": merge,
                    "residual": residual,
                },
                lengths=jnp.array([7, 4, 1, 0]),
                dropout=0.3,
                key=jax.random.key(5),
                impl=impl,
            )


@pytest.mark.slow
@pytest.mark.parametrize("cell, activation, impl", OPTION_GRID)
def test_masks_with_holes_and_many_to_one(cell, activation, impl):
    """A mask that is not a prefix, outputs with h_0 in front, and the final
    h alone (return_sequences=False), in float64."""
    mask = jnp.array(
        [[1, 0, 1, 1, 0, 0, 1], [0, 0, 0, 1, 1, 1, 1], [1] * 7, [0] * 7], bool
    )
    with x64():
        layer = {"bidirectional": True}
        _compare(
            jax.random.key(2),
            cell,
            activation,
            jnp.float64,
            layer=layer,
            mask=mask,
            impl=impl,
        )
        _compare(
            jax.random.key(3),
            cell,
            activation,
            jnp.float64,
            layer=layer,
            include_initial=True,
            impl=impl,
        )
        _compare(
            jax.random.key(4),
            cell,
            activation,
            jnp.float64,
            layer={"num_layers": 2},
            return_sequences=False,
            impl=impl,
        )


@pytest.mark.slow
@pytest.mark.parametrize("cell, activation", ONE_EACH)
def test_projection_inside_the_loop(cell, activation, monkeypatch):
    """Large problems on a CPU compute x_t @ w_ih^T inside the loop instead
    of hoisting it; forced here at a small size."""
    monkeypatch.setattr(_fused, "HOIST_BYTES", 0)
    if jax.default_backend() == "cpu":
        assert not _fused.hoists(7, B, H, jnp.float64)
    with x64():
        _compare(
            jax.random.key(20),
            cell,
            activation,
            jnp.float64,
            layer={"bidirectional": True},
            lengths=jnp.array([7, 4, 1, 0]),
        )


@pytest.mark.parametrize("cell, activation", ONE_EACH)
@pytest.mark.parametrize("seq_len", [0, 1, 2])
@pytest.mark.parametrize("impl", IMPLS)
def test_short_sequences(cell, activation, seq_len, impl):
    with x64():
        _compare(
            jax.random.key(6),
            cell,
            activation,
            jnp.float64,
            seq_len=seq_len,
            layer={"bidirectional": True},
            impl=impl,
        )


@pytest.mark.slow
@pytest.mark.parametrize("cell, activation, impl", OPTION_GRID)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_lower_precisions(cell, activation, dtype, impl):
    _compare(
        jax.random.key(7),
        cell,
        activation,
        dtype,
        seq_len=12,
        layer={"bidirectional": True},
        lengths=jnp.array([12, 9, 3, 0]),
        impl=impl,
    )


@pytest.mark.slow
@pytest.mark.parametrize("cell, activation", ONE_EACH)
def test_gradients_against_finite_differences(cell, activation):
    """jax.test_util.check_grads compares the reverse-mode derivative with
    central differences of the fast path itself, in float64."""
    with x64():
        params = _layer(jax.random.key(8), cell, activation, jnp.float64)
        xs = jax.random.normal(jax.random.key(9), (2, 6, D), jnp.float64)

        def f(params, xs):
            ys, _ = jaxrnn.apply_layer(
                params, xs, lengths=jnp.array([6, 3]), impl="fused"
            )
            return ys

        check_grads(f, (params, xs), order=1, modes=["rev"], eps=1e-6)


@pytest.mark.slow
def test_second_derivatives_match_the_reference():
    """The hand-written backward pass is JAX code, so it differentiates
    again: a Hessian-vector product agrees with the reference's."""
    with x64():
        params = _layer(jax.random.key(10), "lstm", "tanh", jnp.float64)
        xs = jax.random.normal(jax.random.key(11), (B, 5, D), jnp.float64)
        state = _state(jax.random.key(12), params, jnp.float64)

        def hvp(impl):
            grad = jax.grad(_loss(impl), argnums=1)
            return jax.jvp(lambda x: grad(params, x, state), (xs,), (xs,))[1]

        # Forward-over-reverse needs jvp of the backward pass, which a
        # custom VJP does not give; reverse-over-reverse does.
        def hvp_rev(impl):
            grad = jax.grad(_loss(impl), argnums=1)
            return jax.grad(lambda x: jnp.vdot(grad(params, x, state), xs))(xs)

        assert_trees_close(hvp_rev("fused"), hvp("scan"), 1e-10)


def test_auto_picks_fused_where_it_applies():
    params = _layer(jax.random.key(13), "lstm", "tanh")
    xs = jnp.ones((B, 5, D))

    def jaxpr(**options):
        return str(
            jax.make_jaxpr(lambda p: jaxrnn.apply_layer(p, xs, **options))(params)
        )

    assert "custom_vjp" in jaxpr()
    assert "custom_vjp" not in jaxpr(impl="scan")
    assert "custom_vjp" not in jaxpr(checkpoint="step")
    assert "custom_vjp" not in jaxpr(reset=jnp.zeros((B, 5), bool))
    variant = jaxrnn.init_layer(jax.random.key(0), "mgu", D, H)
    assert "custom_vjp" not in str(
        jax.make_jaxpr(lambda p: jaxrnn.apply_layer(p, xs))(variant)
    )


@pytest.mark.parametrize(
    "options, named",
    [
        ({"checkpoint": "sqrt"}, "checkpoint"),
        ({"reset": jnp.zeros((B, 5), bool)}, "reset"),
        ({"recurrent_dropout": 0.2, "key": jax.random.key(0)}, "recurrent_dropout"),
        ({"zoneout": 0.1, "training": False}, "zoneout"),
        ({"matmul_dtype": jnp.bfloat16}, "matmul_dtype"),
    ],
)
def test_fused_names_the_option_it_lacks(options, named):
    params = _layer(jax.random.key(14), "gru", "tanh")
    with pytest.raises(ValueError, match=f"impl must be 'auto' or 'scan' with {named}"):
        jaxrnn.apply_layer(params, jnp.ones((B, 5, D)), impl="fused", **options)
    # "auto" falls back to the reference and runs.
    ys, _ = jaxrnn.apply_layer(params, jnp.ones((B, 5, D)), **options)
    assert ys.shape == (B, 5, H)


def test_fused_refuses_cells_and_activations_it_lacks():
    xs = jnp.ones((B, 5, D))
    for cell, kwargs, named in [
        ("layer_norm_lstm", {}, "cell='layer_norm_lstm'"),
        ("lstm", {"proj_size": 2}, "cell='proj_lstm'"),
        ("rnn", {"activation": "identity"}, "activation='identity'"),
    ]:
        params = jaxrnn.init_layer(jax.random.key(0), cell, D, H, **kwargs)
        with pytest.raises(ValueError, match=f"with {named}"):
            jaxrnn.apply_layer(params, xs, impl="fused")
    params = jaxrnn.init_layer(jax.random.key(0), "lstm", D, H)
    with pytest.raises(ValueError, match=r"impl must be one of .*got 'cudnn'"):
        jaxrnn.apply_layer(params, xs, impl="cudnn")


def test_forward_mode_is_refused_by_fused_and_works_with_scan():
    params = _layer(jax.random.key(15), "rnn", "tanh")
    xs = jnp.ones((B, 4, D))

    def f(impl):
        return lambda x: jaxrnn.apply_layer(params, x, impl=impl)[0]

    jac = jax.jacfwd(f("scan"))(xs)
    np.testing.assert_allclose(jac, jax.jacrev(f("fused"))(xs), atol=1e-5)
    with pytest.raises(TypeError, match="forward-mode"):
        jax.jacfwd(f("fused"))(xs)


@pytest.mark.slow
def test_vmap_over_a_batch_of_layers():
    """The custom VJP composes with vmap (ensembles of layers)."""
    keys = jax.random.split(jax.random.key(16), 3)
    stacked = jax.vmap(lambda k: _layer(k, "gru", "tanh"))(keys)
    xs = jax.random.normal(jax.random.key(17), (B, 6, D))

    def loss(impl):
        return lambda p: jnp.sum(jaxrnn.apply_layer(p, xs, impl=impl)[0] ** 2)

    fused = jax.vmap(jax.grad(loss("fused")))(stacked)
    assert_trees_close(fused, jax.vmap(jax.grad(loss("scan")))(stacked), 1e-5)
