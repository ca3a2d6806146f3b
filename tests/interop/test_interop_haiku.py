"""Haiku's GRU against jaxrnn's reset-before GRU ("cho_gru"), by the recipe
of docs/interop.md: outputs, final states and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

hk = pytest.importorskip("haiku")

import jaxrnn  # noqa: E402
from helpers import x64  # noqa: E402

D, H, T, B = 3, 5, 7, 4


def from_haiku_gru(gru):
    """The recipe of docs/interop.md: Haiku's z, r, a blocks -> r, -z, n."""

    def blocks(w):
        z, r, a = jnp.split(w, 3, axis=-1)
        return jnp.concatenate([r, -z, a], axis=-1)

    return jaxrnn.ChoGRUParams(
        blocks(gru["w_i"]).T, blocks(gru["w_h"]).T, blocks(gru["b"])
    )


@pytest.mark.parametrize("dtype, tol", [(jnp.float32, 1e-5), (jnp.float64, 1e-12)])
@pytest.mark.parametrize("impl", ["scan", "fused"])
def test_haiku_gru_is_the_cho_gru(dtype, tol, impl):
    with x64():
        net = hk.without_apply_rng(
            hk.transform(
                lambda xs, h: hk.dynamic_unroll(hk.GRU(H), xs, h, time_major=False)
            )
        )
        keys = jax.random.split(jax.random.key(0), 4)
        xs = jax.random.normal(keys[0], (B, T, D), dtype)
        h0 = jax.random.normal(keys[1], (B, H), dtype)
        variables = net.init(keys[2], xs, h0)
        # Non-zero biases, so that a lost or misplaced bias shows.
        variables = jax.tree.map(
            lambda a: a + 0.3 * jax.random.normal(keys[3], a.shape, dtype), variables
        )

        def theirs(variables, xs, h0):
            ys, h = net.apply(variables, xs, h0)
            return jnp.sum(ys * jnp.cos(ys)) + jnp.sum(h**2)

        def ours(variables, xs, h0):
            layer = jaxrnn.layer.LayerParams(((from_haiku_gru(variables["gru"]),),))
            ys, h = jaxrnn.apply_layer(layer, xs, initial_state=h0[None], impl=impl)
            return jnp.sum(ys * jnp.cos(ys)) + jnp.sum(h**2)

        want = jax.value_and_grad(theirs, (0, 1, 2))(variables, xs, h0)
        got = jax.value_and_grad(ours, (0, 1, 2))(variables, xs, h0)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
