"""The Pallas kernels (impl="pallas") against the reference, in interpret mode.

`jaxrnn._pallas.scan` runs a time loop as one Pallas kernel; impl="pallas"
runs both of the fused path's loops (the forward recurrence and the backward
recurrence of its VJP) through it. On a CPU the kernels run in Pallas'
interpret mode. Every value and gradient is compared with the reference
(impl="scan"): in float64 to 1e-12, float32 to 1e-5, bfloat16 to 0.05,
float16 to 0.01.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from fast_paths import _compare
from helpers import x64
from jaxrnn import _pallas

CELLS = [
    ("lstm", "tanh"),
    ("gru", "tanh"),
    ("rnn", "tanh"),
    ("rnn", "sigmoid"),
    ("rnn", "relu"),
]


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


@pytest.mark.parametrize(
    "cell, activation, bias",
    [(*c, True) for c in CELLS] + [(*c, False) for c in CELLS[:3]],
)
def test_values_and_gradients_match_the_reference_float64(cell, activation, bias):
    with x64():
        _compare(
            jax.random.key(0),
            cell,
            activation,
            jnp.float64,
            layer={"bias": bias},
            impl="pallas",
        )


@pytest.mark.slow
@pytest.mark.parametrize("cell, activation", CELLS[:3])
def test_layers_directions_lengths_and_masks_float64(cell, activation):
    """Two layers, both directions (reverse), lengths, a mask with holes,
    and the final h alone."""
    mask = jnp.array(
        [[1, 0, 1, 1, 0, 0, 1], [0, 0, 0, 1, 1, 1, 1], [1] * 7, [0] * 7], bool
    )
    with x64():
        layer = {"num_layers": 2, "bidirectional": True}
        _compare(
            jax.random.key(1),
            cell,
            activation,
            jnp.float64,
            layer=layer,
            lengths=jnp.array([7, 4, 1, 0]),
            impl="pallas",
        )
        _compare(
            jax.random.key(2),
            cell,
            activation,
            jnp.float64,
            layer=layer,
            mask=mask,
            return_sequences=False,
            impl="pallas",
        )


@pytest.mark.parametrize("cell, activation", CELLS[:3])
@pytest.mark.parametrize("seq_len", [0, 1])
def test_short_sequences(cell, activation, seq_len):
    with x64():
        _compare(
            jax.random.key(6),
            cell,
            activation,
            jnp.float64,
            seq_len=seq_len,
            layer={"bidirectional": True},
            impl="pallas",
        )


@pytest.mark.slow
@pytest.mark.parametrize("cell, activation", CELLS[:3])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_lower_precisions(cell, activation, dtype):
    """float32 to 1e-5, bfloat16 to 0.05 and float16 to 0.01 (in the values)
    of the reference run in the same dtype."""
    _compare(
        jax.random.key(7),
        cell,
        activation,
        dtype,
        seq_len=12,
        layer={"bidirectional": True},
        lengths=jnp.array([12, 9, 3, 0]),
        impl="pallas",
    )


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
