"""The Pallas kernels (impl="pallas"), in interpret mode.

`jaxrnn._pallas.scan` runs a time loop as one Pallas kernel; impl="pallas"
runs both of the fused path's loops (the forward recurrence and the backward
recurrence of its VJP) through it. On a CPU the kernels run in Pallas'
interpret mode. test_fused.py runs its comparisons with the reference for
both impl="fused" and impl="pallas": every cell, T = 0, 1 and 2, masks with
holes, lengths, both directions, two layers, every supported layer option,
and float64 (to 1e-12), float32, bfloat16 and float16. This file tests the
kernel loop itself, sizes that no tile divides, and the fallback.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from helpers import x64
from jaxrnn import _pallas


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("tile", [None, 1, 2, 3])
def test_kernel_scan_is_lax_scan(reverse, tile):
    """Any body, pytree carries and inputs (with None leaves), batch tiles
    that do not divide B = 5, either direction."""
    steps, batch, width = 6, 5, 4
    keys = jax.random.split(jax.random.key(0), 4)
    xs = jax.random.normal(keys[0], (steps, batch, width))
    keep = jax.random.bernoulli(keys[1], 0.7, (steps, batch))
    w = jax.random.normal(keys[2], (width, width))
    b = jax.random.normal(keys[3], (width,))

    def body(carry, inputs):
        (x, m), nothing = inputs
        assert nothing is None
        h, count = carry
        new = jnp.tanh(x + h @ w + b[None])
        new = jnp.where(m[:, None], new, h)
        return (new, count + m.astype(jnp.float32)), {"h": new, "twice": 2 * new}

    carry = (jnp.full((batch, width), 0.1), jnp.zeros(batch))
    inputs = ((xs, keep), None)
    got = jax.jit(
        lambda: _pallas.scan(body, carry, inputs, reverse=reverse, tile=tile)
    )()
    expected = jax.lax.scan(body, carry, inputs, reverse=reverse)
    assert jax.tree.structure(got) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
        assert a.shape == e.shape and a.dtype == e.dtype
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), atol=1e-6)


def test_odd_sizes():
    """Sizes that no tile divides: B = 3, T = 5, D = 7, H = 11."""
    with x64():
        layer = jaxrnn.init_layer(
            jax.random.key(3), "lstm", 7, 11, dtype=jnp.float64, bidirectional=True
        )
        xs = jax.random.normal(jax.random.key(4), (3, 5, 7), jnp.float64)

        def loss(layer, impl):
            ys, final = jaxrnn.apply_layer(
                layer, xs, lengths=jnp.array([5, 2, 4]), impl=impl
            )
            return jnp.sum(jnp.sin(ys)) + jnp.sum(final.c**2)

        value, grads = jax.value_and_grad(loss)(layer, "pallas")
        ref_value, ref_grads = jax.value_and_grad(loss)(layer, "scan")
        assert float(value) == pytest.approx(float(ref_value), rel=1e-12)
        for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
            np.testing.assert_allclose(a, b, atol=1e-12)


def test_pallas_names_the_option_it_lacks():
    layer = jaxrnn.init_layer(jax.random.key(0), "lstm", 3, 4)
    xs = jnp.ones((2, 5, 3))
    reset = jnp.zeros((2, 5), bool)
    with pytest.raises(ValueError, match=r"with reset \(the pallas path lacks it\)"):
        jaxrnn.apply_layer(layer, xs, reset=reset, impl="pallas")
    with pytest.raises(ValueError, match="impl must be one of"):
        jaxrnn.apply_layer(layer, xs, impl="triton")


def test_weights_too_large_for_the_chip_fall_back_to_lax_scan(monkeypatch):
    """Compiled (not interpreted), a loop whose constants exceed
    ONCHIP_BYTES is a plain lax.scan; interpreted, it is always the kernel."""
    w = jnp.eye(4) * 0.5
    carry, xs = jnp.ones((2, 4)), jnp.ones((3, 2, 4))

    def body(h, x):
        h = jnp.tanh(x + h @ w)
        return h, h

    def program(interpret):
        return jax.make_jaxpr(
            lambda: _pallas.scan(body, carry, xs, interpret=interpret)
        )()

    monkeypatch.setattr(_pallas, "ONCHIP_BYTES", w.size * w.dtype.itemsize - 1)
    assert "pallas_call" not in str(program(False))
    assert "pallas_call" in str(program(True))
    expected = jax.lax.scan(body, carry, xs)
    got = _pallas.scan(body, carry, xs, interpret=False)
    for a, e in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, e, atol=1e-6)
