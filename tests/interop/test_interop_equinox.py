"""jaxrnn.interop against Equinox's own LSTMCell and GRUCell."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from helpers import TOLERANCES, randomise, record_error, x64
from jaxrnn import interop

eqx = pytest.importorskip("equinox")
pytestmark = pytest.mark.usefixtures("permissive_promotion")
D, H, T = 3, 5, 7


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_cells_match_equinox(kind, use_bias, dtype):
    with x64():
        cls = eqx.nn.LSTMCell if kind == "lstm" else eqx.nn.GRUCell
        cell = randomise(
            cls(D, H, use_bias=use_bias, dtype=dtype, key=jax.random.key(0)),
            jax.random.key(1),
        )
        xs = jax.random.normal(jax.random.key(2), (T, D), dtype)
        h0 = jax.random.normal(jax.random.key(3), (H,), dtype)
        c0 = jax.random.normal(jax.random.key(4), (H,), dtype)
        params = interop.from_equinox(cell).cells[0][0]
        step = jaxrnn.lstm_step if kind == "lstm" else jaxrnn.gru_step

        def eqx_loss(xs, h0, c0):
            state = (h0, c0) if kind == "lstm" else h0

            def body(s, x):
                s = cell(x, s)
                return s, (s[0] if kind == "lstm" else s)

            final, ys = jax.lax.scan(body, state, xs)
            return jnp.sum(jnp.sin(ys)) + sum(
                jnp.sum(f**2) for f in jax.tree.leaves(final)
            ), ys

        def our_loss(xs, h0, c0):
            carry = jaxrnn.LSTMCarry(h0, c0) if kind == "lstm" else h0
            final, ys = jaxrnn.unroll(step, params, carry, xs)
            return jnp.sum(jnp.sin(ys)) + sum(
                jnp.sum(f**2) for f in jax.tree.leaves(final)
            ), ys

        tol = TOLERANCES["peer"][dtype]
        (_, ys1), g1 = jax.value_and_grad(eqx_loss, (0, 1, 2), has_aux=True)(xs, h0, c0)
        (_, ys2), g2 = jax.value_and_grad(our_loss, (0, 1, 2), has_aux=True)(xs, h0, c0)
        record_error("equinox", dtype, (ys2, g2), (ys1, g1))
        for a, b in zip(jax.tree.leaves((ys2, g2)), jax.tree.leaves((ys1, g1))):
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
        back = interop.to_equinox(params)
        for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(cell)):
            np.testing.assert_array_equal(a, b)
        assert back.use_bias == use_bias


def test_refusals(getkey):
    with pytest.raises(
        TypeError,
        match=r"to_equinox: params must be LSTMParams or "
        r"GRUParams \(Equinox has no Elman cell\)",
    ):
        interop.to_equinox(jaxrnn.init_rnn(getkey(), D, H))
    with pytest.raises(
        TypeError, match=r"from_equinox: cell must be an eqx.nn.LSTMCell"
    ):
        interop.from_equinox(eqx.nn.Linear(3, 4, key=getkey()))
