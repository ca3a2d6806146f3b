"""`to_nnx_module`: a jaxrnn layer inside Flax NNX, trained by nnx.Optimizer.

The module's weights must be nnx.Params (so that NNX trains them), its
forward pass must be `apply_layer`'s, and a training step under
`nnx.Optimizer` must be the optax step of the functional API, recurrent
weights included, for several steps in a row.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxrnn
from jaxrnn.interop import _common

nnx = pytest.importorskip("flax.nnx")

pytestmark = pytest.mark.usefixtures("permissive_promotion")

D, H, B, T = 3, 5, 4, 6


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_every_array_is_an_nnx_param_and_the_forward_is_apply_layer(getkey, cell):
    params = jaxrnn.init_layer(
        getkey(), cell, D, H, num_layers=2, learn_initial_state=True
    )
    module = jaxrnn.interop.to_nnx_module(params)
    trained = jax.tree.leaves(nnx.state(module, nnx.Param))
    assert len(trained) == len(jax.tree.leaves(params))
    assert "cells_0_0_w_hh" in module.param_names
    xs = jax.random.normal(getkey(), (B, T, D))
    lengths = jnp.array([6, 3, 1, 0])
    got = module(xs, lengths=lengths)
    want = jaxrnn.apply_layer(params, xs, lengths=lengths)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    state = module.init_state(B)
    ys, _ = module.stream(state, xs[:, :2])
    whole, _ = jaxrnn.apply_layer(params, xs)
    np.testing.assert_allclose(ys, whole[:, :2], atol=1e-6)


def test_nnx_optimizer_trains_the_recurrent_weights_like_optax(getkey):
    params = jaxrnn.init_layer(getkey(), "lstm", D, H)
    head_w = jax.random.normal(getkey(), (H, 1))
    xs = jax.random.normal(getkey(), (B, T, D))
    targets = jax.random.normal(getkey(), (B, T, 1))

    class Model(nnx.Module):
        def __init__(self):
            self.rnn = jaxrnn.interop.to_nnx_module(params)
            self.head = nnx.Param(head_w)

        def __call__(self, xs):
            ys, _ = self.rnn(xs)
            return ys @ self.head[...]

    model = Model()
    optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)

    @nnx.jit
    def nnx_step(model, optimizer):
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(xs) - targets) ** 2))(
            model
        )
        optimizer.update(model, grads)
        return loss

    # The same steps in the functional API, with plain optax.
    def loss_fn(tree):
        ys, _ = jaxrnn.apply_layer(tree["rnn"], xs)
        return jnp.mean((ys @ tree["head"] - targets) ** 2)

    tree = {"rnn": params, "head": head_w}
    tx = optax.adam(1e-2)
    opt_state = tx.init(tree)

    @jax.jit
    def plain_step(tree, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(tree)
        updates, opt_state = tx.update(grads, opt_state, tree)
        return optax.apply_updates(tree, updates), opt_state, loss

    before = np.asarray(params.cells[0][0].w_hh)
    for _ in range(3):  # the second step is where nnx.Param(params) broke
        nnx_loss = nnx_step(model, optimizer)
        tree, opt_state, plain_loss = plain_step(tree, opt_state)
        np.testing.assert_allclose(nnx_loss, plain_loss, rtol=1e-6)
    after = model.rnn.params
    assert np.abs(np.asarray(after.cells[0][0].w_hh) - before).max() > 1e-3
    for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(tree["rnn"]), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_to_nnx_module_names_what_it_needs(monkeypatch):
    with pytest.raises(TypeError, match="to_nnx_module: params must be LayerParams"):
        jaxrnn.interop.to_nnx_module({"w": jnp.ones(2)})
    from jaxrnn.interop import _nnx

    real = _common.importlib.import_module

    def without_flax(name, *args):
        if name.startswith("flax"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real(name, *args)

    # Flax missing: the real lazy import fails, and its message names the extra.
    monkeypatch.setattr(_common.importlib, "import_module", without_flax)
    _nnx._module_class.cache_clear()
    try:
        with pytest.raises(
            ImportError, match=r"to_nnx_module needs flax.*pip install 'jaxrnn\[flax\]'"
        ):
            jaxrnn.interop.to_nnx_module(
                jaxrnn.init_layer(jax.random.key(0), "gru", D, H)
            )
    finally:
        monkeypatch.undo()
        _nnx._module_class.cache_clear()
