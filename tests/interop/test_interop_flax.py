"""jaxrnn.interop against Flax's own cells (linen and nnx), run by Flax itself."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from helpers import TOLERANCES, randomise, record_error, x64
from jaxrnn import interop

flax = pytest.importorskip("flax")
from flax import linen, nnx  # noqa: E402

pytestmark = pytest.mark.usefixtures("permissive_promotion")
D, H, T, B = 3, 5, 7, 4

LINEN = {
    "LSTMCell": lambda dtype: linen.LSTMCell(H, param_dtype=dtype),
    "OptimizedLSTMCell": lambda dtype: linen.OptimizedLSTMCell(H, param_dtype=dtype),
    "GRUCell": lambda dtype: linen.GRUCell(H, param_dtype=dtype),
    "SimpleCell-tanh": lambda dtype: linen.SimpleCell(H, param_dtype=dtype),
    "SimpleCell-relu": lambda dtype: linen.SimpleCell(
        H, activation_fn=jax.nn.relu, param_dtype=dtype
    ),
    "SimpleCell-residual": lambda dtype: linen.SimpleCell(
        H, residual=True, param_dtype=dtype
    ),
}
NNX = {
    "LSTMCell": lambda dtype: nnx.LSTMCell(D, H, rngs=nnx.Rngs(0), param_dtype=dtype),
    "OptimizedLSTMCell": lambda dtype: nnx.OptimizedLSTMCell(
        D, H, rngs=nnx.Rngs(0), param_dtype=dtype
    ),
    "GRUCell": lambda dtype: nnx.GRUCell(D, H, rngs=nnx.Rngs(0), param_dtype=dtype),
    # nnx's SimpleCell computes in float32 unless given a dtype.
    "SimpleCell-tanh": lambda dtype: nnx.SimpleCell(
        D, H, rngs=nnx.Rngs(0), param_dtype=dtype, dtype=dtype
    ),
    "SimpleCell-residual": lambda dtype: nnx.SimpleCell(
        D, H, rngs=nnx.Rngs(0), residual=True, param_dtype=dtype, dtype=dtype
    ),
}


def _initial(is_lstm, dtype):
    h = jax.random.normal(jax.random.key(5), (B, H), dtype)
    c = jax.random.normal(jax.random.key(6), (B, H), dtype)
    return jaxrnn.LSTMCarry(h, c) if is_lstm else h


def _run_flax(step, carry, xs):
    """Flax's own step, scanned over time on a batch-first xs."""
    return jax.lax.scan(step, carry, jnp.swapaxes(xs, 0, 1))


def _check(step, params, xs, carry, is_lstm, tol):
    """Values, final carry and gradients (w.r.t. xs and the initial carry)."""

    def flax_loss(xs, carry):
        final, ys = _run_flax(step, interop.carry_to_flax(carry), xs)
        final = interop.carry_from_flax(final)
        return jnp.sum(jnp.sin(ys)) + sum(
            jnp.sum(f**2) for f in jax.tree.leaves(final)
        ), (jnp.swapaxes(ys, 0, 1), final)

    def our_loss(xs, carry):
        state = jax.tree.map(lambda a: a[None], carry)
        ys, final = jaxrnn.apply_layer(params, xs, initial_state=state)
        final = jax.tree.map(lambda a: a[0], final)
        return jnp.sum(jnp.sin(ys)) + sum(
            jnp.sum(f**2) for f in jax.tree.leaves(final)
        ), (ys, final)

    (v1, (ys1, f1)), g1 = jax.value_and_grad(flax_loss, (0, 1), has_aux=True)(xs, carry)
    (v2, (ys2, f2)), g2 = jax.value_and_grad(our_loss, (0, 1), has_aux=True)(xs, carry)
    record_error("flax", ys1.dtype, (ys2, f2, g2), (ys1, f1, g1))
    np.testing.assert_allclose(ys2, ys1, rtol=tol, atol=tol)
    for a, b in zip(jax.tree.leaves((f2, g2)), jax.tree.leaves((f1, g1))):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", list(LINEN))
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_linen_cells(name, dtype):
    with x64():
        cell = LINEN[name](dtype)
        xs = jax.random.normal(jax.random.key(1), (B, T, D), dtype)
        is_lstm = "LSTM" in name
        carry = _initial(is_lstm, dtype)
        variables = cell.init(
            jax.random.key(2),
            interop.carry_to_flax(jax.tree.map(lambda a: a[0], carry)),
            xs[0, 0],
        )
        variables = randomise(variables, jax.random.key(3))
        params = interop.from_flax(cell, variables)
        step = lambda c, x: cell.apply(variables, c, x)
        _check(
            step, params, xs, carry, is_lstm, 1e-5 if dtype == jnp.float32 else 1e-10
        )
        # Round trip to linen: the very same variables (a residual cell comes back
        # as a plain SimpleCell whose recurrent kernel carries the identity).
        back_cell, back = interop.to_flax_linen(
            params, optimized=name.startswith("Opt")
        )
        if name != "SimpleCell-residual":
            for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(variables)):
                np.testing.assert_array_equal(a, b)
        back_step = lambda c, x: back_cell.apply(back, c, x)
        _check(
            back_step,
            params,
            xs,
            carry,
            is_lstm,
            1e-5 if dtype == jnp.float32 else 1e-10,
        )


@pytest.mark.parametrize("name", list(NNX))
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_nnx_cells(name, dtype):
    with x64():
        cell = NNX[name](dtype)
        graphdef, state = nnx.split(cell)
        cell = nnx.merge(graphdef, randomise(state, jax.random.key(3)))
        is_lstm = "LSTM" in name
        xs = jax.random.normal(jax.random.key(1), (B, T, D), dtype)
        carry = _initial(is_lstm, dtype)
        params = interop.from_flax(cell)
        tol = TOLERANCES["peer"][dtype]
        _check(lambda c, x: cell(c, x), params, xs, carry, is_lstm, tol)
        if name == "SimpleCell-residual":
            return
        back = interop.to_flax_nnx(params, optimized=name.startswith("Opt"))
        for a, b in zip(
            jax.tree.leaves(nnx.state(back, nnx.Param)),
            jax.tree.leaves(nnx.state(cell, nnx.Param)),
        ):
            np.testing.assert_array_equal(a, b)


def test_nnx_gru_has_no_b_hn():
    cell = nnx.GRUCell(D, H, rngs=nnx.Rngs(0))
    params = interop.from_flax(cell)
    np.testing.assert_array_equal(params.cells[0][0].b_hn, np.zeros(H))
    torch_like = jaxrnn.init_gru(jax.random.key(0), D, H, init="torch")
    with pytest.raises(
        ValueError,
        match=r"to_flax_nnx: params.b_hn must be zero: "
        r"nnx.GRUCell has no b_hn.*Use to_flax_linen",
    ):
        interop.to_flax_nnx(torch_like)
    # linen's GRUCell has b_hn: that conversion is exact.
    _, variables = interop.to_flax_linen(torch_like)
    np.testing.assert_array_equal(variables["params"]["hn"]["bias"], torch_like.b_hn)


def test_bias_free_params_become_zero_biases():
    params = jaxrnn.init_lstm(jax.random.key(0), D, H, bias=False)
    cell, variables = interop.to_flax_linen(params)
    xs = jax.random.normal(jax.random.key(1), (T, D))
    carry0 = jaxrnn.init_lstm_carry(H)
    _, ys = jax.lax.scan(
        lambda c, x: cell.apply(variables, c, x), interop.carry_to_flax(carry0), xs
    )
    np.testing.assert_allclose(
        ys, jaxrnn.unroll(jaxrnn.lstm_step, params, carry0, xs)[1], atol=1e-6
    )


def test_refusals():
    with pytest.raises(ValueError, match=r"from_flax: cell must use gate_fn=sigmoid"):
        cell = linen.LSTMCell(H, gate_fn=jax.nn.hard_sigmoid)
        interop.from_flax(cell, {"params": {}})
    with pytest.raises(
        ValueError, match=r"from_flax: variables are needed for a linen"
    ):
        interop.from_flax(linen.GRUCell(H))
    with pytest.raises(
        TypeError,
        match=r"from_flax: cell must be a linen or nnx "
        r"LSTMCell.*got a MGUCell",
    ):
        interop.from_flax(linen.MGUCell(H), {"params": {}})
    two = jaxrnn.init_layer(jax.random.key(0), "lstm", D, H, num_layers=2)
    with pytest.raises(ValueError, match=r"must hold one layer and one direction"):
        interop.to_flax_linen(two)


@pytest.mark.parametrize(
    "convert",
    [interop.to_flax_linen, interop.to_flax_nnx, interop.to_equinox],
    ids=lambda f: f.__name__,
)
def test_variants_and_layer_options_are_refused_clearly(convert, getkey):
    """Cells and options the peer lacks get a TypeError or ValueError that says so."""
    pytest.importorskip("equinox")
    for cell in ("layer_norm_lstm", "peephole_lstm", "cifg_lstm", "mgu"):
        layer = jaxrnn.init_layer(getkey(), cell, D, H)
        for params in (layer, layer.cells[0][0]):
            with pytest.raises(TypeError, match=rf"{cell} cell has no counterpart"):
                convert(params)
    learned = jaxrnn.init_layer(getkey(), "gru", D, H, learn_initial_state=True)
    with pytest.raises(ValueError, match=r"params.initial_state must be None"):
        convert(learned)
