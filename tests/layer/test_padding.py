"""Padding and masked steps contribute exact zeros to every gradient.

A masked step's carry and output are discarded by a `where`, but the
backward pass still multiplies that step's Jacobian by a zero cotangent: if
the padding holds a NaN or an infinity, the product is NaN and reaches every
weight. These tests fill the padding with NaN, inf and huge finite garbage,
and check that every gradient is finite and bit-for-bit the gradient with
zero padding, and that the gradient with respect to a padded input is
exactly zero. They cover `unroll`, every `apply_layer` implementation and
option, and the losses.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn.cells import _registry
from jaxrnn.fast import _cpu

D, H, B, T = 3, 4, 3, 6
# What the padding holds, besides zeros (the reference answer).
FILLS = (np.nan, np.inf, -np.inf, 1e30)
LENGTHS = np.array([6, 4, 0])
# A mask with holes: steps 1 and 2 of row 0, and all of row 2 but step 3.
HOLES = np.array(
    [
        [1, 0, 0, 1, 1, 1],
        [1, 1, 1, 1, 0, 0],
        [0, 0, 0, 1, 0, 0],
    ],
    bool,
)


def _inputs(key, mask, fill):
    xs = jax.random.normal(key, (B, T, D))
    return jnp.where(jnp.asarray(mask)[..., None], xs, fill)


def _assert_padding_is_inert(grad_fn, key, mask, xs_index=1):
    """grad_fn(xs) -> a pytree of gradients whose entry `xs_index` is d/dxs."""
    clean = grad_fn(_inputs(key, mask, 0.0))
    for leaf in jax.tree.leaves(clean):
        assert np.all(np.isfinite(np.asarray(leaf)))
    padded_rows = ~np.asarray(mask)
    assert np.all(np.asarray(clean[xs_index])[padded_rows] == 0)
    for fill in FILLS:
        grads = grad_fn(_inputs(key, mask, fill))
        for got, want in zip(
            jax.tree.leaves(grads), jax.tree.leaves(clean), strict=True
        ):
            np.testing.assert_array_equal(
                np.asarray(got), np.asarray(want), err_msg=f"padding {fill}"
            )


def _sizes(cell):
    return {"proj_size": 2} if cell == "proj_lstm" else {}


def _weighted_sum(tree):
    total = 0.0
    for i, leaf in enumerate(jax.tree.leaves(tree)):
        w = jnp.cos(jnp.arange(leaf.size, dtype=leaf.dtype) + i).reshape(leaf.shape)
        total = total + jnp.sum(leaf * w)
    return total


@pytest.mark.parametrize("cell", list(_registry.CELLS))
@pytest.mark.parametrize("reverse", [False, True])
def test_unroll_padding_gives_zero_gradients(getkey, cell, reverse):
    spec = _registry.CELLS[cell]
    layer = jaxrnn.init_layer(getkey(), cell, D, H, **_sizes(cell))
    params = layer.cells[0][0]
    carry = jax.tree.map(
        lambda a: a[0, 0], jaxrnn.apply_layer(layer, jnp.ones((1, 1, D)))[1]
    )

    def loss(params, xs, mask):
        run = jax.vmap(
            lambda x, m: jaxrnn.unroll(
                spec.step, params, carry, x, mask=m, reverse=reverse
            )
        )
        return _weighted_sum(run(xs, mask))

    grad_fn = jax.jit(jax.grad(loss, argnums=(0, 1)))
    for mask in (np.arange(T) < LENGTHS[:, None], HOLES):
        _assert_padding_is_inert(lambda xs: grad_fn(params, xs, mask), getkey(), mask)


def _impls():
    cases = [("scan", cell) for cell in _registry.CELLS]
    cases += [("fused", cell) for cell in ("lstm", "gru", "rnn")]
    cases += [("pallas", cell) for cell in ("lstm", "gru", "rnn")]
    cases += [("parallel", cell) for cell in ("lstm", "gru", "rnn")]
    if not _cpu.usable(jnp.float32):
        cases += [("cpu", cell) for cell in ("lstm", "gru", "rnn")]
    return cases


@pytest.mark.parametrize("impl,cell", _impls())
def test_layer_padding_gives_zero_gradients(getkey, impl, cell):
    """Two bidirectional layers, lengths and a mask with holes."""
    layer = jaxrnn.init_layer(
        getkey(), cell, D, H, num_layers=2, bidirectional=True, **_sizes(cell)
    )
    state = jax.tree.map(
        lambda a: jax.random.normal(getkey(), a.shape),
        jaxrnn.apply_layer(layer, jnp.ones((B, 1, D)))[1],
    )

    def loss(params, xs, state, mask):
        out = jaxrnn.apply_layer(params, xs, mask=mask, initial_state=state, impl=impl)
        return _weighted_sum(out)

    grad_fn = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
    for mask in (np.arange(T) < LENGTHS[:, None], HOLES):
        _assert_padding_is_inert(
            lambda xs: grad_fn(layer, xs, state, mask), getkey(), mask
        )


OPTIONS = {
    "residual": ({"residual": True, "num_layers": 2}, {}),
    "include_initial": ({}, {"include_initial": True}),
    "last_only": ({"num_layers": 2}, {"return_sequences": False}),
    "learned_initial_state": ({"learn_initial_state": True}, {}),
    "merge_sum": ({"bidirectional": True, "merge": "sum"}, {}),
    "dropout": ({"num_layers": 2}, {"dropout": 0.3}),
    "recurrent_dropout": ({}, {"recurrent_dropout": 0.3}),
    "zoneout": ({}, {"zoneout": 0.3}),
    "zoneout_eval": ({}, {"zoneout": 0.3, "training": False}),
    "checkpoint": ({}, {"checkpoint": 2}),
    "reset": ({"bidirectional": True}, {"reset": np.eye(B, T, 2, dtype=bool)}),
    "matmul_dtype": ({}, {"matmul_dtype": jnp.bfloat16}),
    "unroll": ({}, {"unroll": 3}),
}


@pytest.mark.parametrize("option", list(OPTIONS))
def test_every_layer_option_keeps_padding_inert(getkey, option, cell="lstm"):
    init_kw, apply_kw = OPTIONS[option]
    layer = jaxrnn.init_layer(getkey(), cell, D, H, **init_kw)
    key = getkey()

    def loss(params, xs, mask):
        out = jaxrnn.apply_layer(params, xs, mask=mask, key=key, **apply_kw)
        return _weighted_sum(out)

    grad_fn = jax.jit(jax.grad(loss, argnums=(0, 1)))
    for mask in (np.arange(T) < LENGTHS[:, None], HOLES):
        _assert_padding_is_inert(lambda xs: grad_fn(layer, xs, mask), key, mask)


def test_losses_ignore_what_the_padding_holds():
    mask = np.arange(T) < LENGTHS[:, None]
    predictions = jax.random.normal(jax.random.key(0), (B, T, 2))
    targets = jax.random.normal(jax.random.key(1), (B, T, 2))
    logits = jax.random.normal(jax.random.key(2), (B, T, 5))
    labels = jax.random.randint(jax.random.key(3), (B, T), 0, 5)

    def grads(pred, targ, logit, label):
        def loss(pred, logit):
            return jaxrnn.train.mse_loss(pred, targ, mask) + (
                jaxrnn.train.cross_entropy_loss(logit, label, mask)
            )

        return jax.value_and_grad(loss, argnums=(0, 1))(pred, logit)

    clean = grads(predictions, targets, logits, labels)
    pad = ~mask
    for fill in FILLS:
        got = grads(
            jnp.where(pad[..., None], fill, predictions),
            jnp.where(pad[..., None], fill, targets),
            jnp.where(pad[..., None], fill, logits),
            jnp.where(pad, -7, labels),  # out of range, as padding labels often are
        )
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(clean), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_hand_written_bptt_ignores_masked_targets(getkey, loss):
    params = jaxrnn.init_rnn(getkey(), D, H)
    head = jaxrnn.init_readout(getkey(), H, 2)
    xs = jax.random.normal(getkey(), (T, D))
    mask = np.arange(T) < 4
    if loss == "mse":
        targets = jax.random.normal(getkey(), (T, 2))
        padded = jnp.where(mask[:, None], targets, jnp.nan)
    else:
        targets = jax.random.randint(getkey(), (T,), 0, 2)
        padded = jnp.where(mask, targets, 99)
    h0 = jnp.zeros(H)
    clean = jaxrnn.train.rnn_bptt(params, head, h0, xs, targets, mask=mask, loss=loss)
    got = jaxrnn.train.rnn_bptt(params, head, h0, xs, padded, mask=mask, loss=loss)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(clean), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
