"""Compare a fast implementation of `apply_layer` with the reference.

Shared by the tests of the fused path (test_fused.py) and of the Pallas
kernels (test_pallas.py): values, and gradients with respect to the params,
the inputs and the initial state.
"""

import functools

import jax
import jax.numpy as jnp

import jaxrnn
from helpers import TOLERANCES, assert_trees_close
from jaxrnn.cells import _registry
from jaxrnn.fast import _fused

D, H, B = 3, 5, 4
# (cell, activation): every cell the fast paths run, from the registry; every
# activation of those that take one.
CELLS = [
    (spec.name, g)
    for spec in _registry.CELLS.values()
    if spec.fast
    for g in (_fused.activations(spec) if spec.activation else ("tanh",))
]
# One (cell, activation) per cell with fast forms; those the kernels have.
ONE_EACH = [c for i, c in enumerate(CELLS) if c[0] not in dict(CELLS[:i])]
KERNEL_CELLS = [c for c in CELLS if _registry.CELLS[c[0]].kernel is not None]
TOL = TOLERANCES["fast"]


def _layer(key, cell, activation, dtype=jnp.float32, **kwargs):
    if _registry.CELLS[cell].activation:
        kwargs["activation"] = activation
    params = jaxrnn.init_layer(key, cell, D, H, init="torch", dtype=dtype, **kwargs)
    # Move every parameter away from its initial value (biases included).
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.fold_in(key, 1), len(leaves))
    leaves = [
        a + 0.3 * jax.random.normal(k, a.shape, a.dtype) for a, k in zip(leaves, keys)
    ]
    return jax.tree.unflatten(treedef, leaves)


def _state(key, params, dtype):
    count = params.num_layers * params.num_directions
    k_h, k_c = jax.random.split(key)
    h = jax.random.normal(k_h, (count, B, params.output_size), dtype)
    if params.cell != "lstm":
        return h
    return jaxrnn.LSTMCarry(h, jax.random.normal(k_c, (count, B, H), dtype))


def _loss(impl, **options):
    """A loss that weighs every output and every final carry differently."""

    def loss(params, xs, state):
        ys, final = jaxrnn.apply_layer(
            params, xs, initial_state=state, impl=impl, **options
        )
        total = 0.0
        for i, leaf in enumerate(jax.tree.leaves((ys, final))):
            weights = jnp.cos(jnp.arange(leaf.size, dtype=leaf.dtype) + i)
            total = total + jnp.sum(leaf * weights.reshape(leaf.shape))
        return total.astype(jnp.float32 if leaf.dtype == jnp.bfloat16 else leaf.dtype)

    return loss


def _compare(
    rng, cell, activation, dtype, seq_len=7, layer=None, impl="fused", **options
):
    """Values, and gradients w.r.t. params, xs and the initial state, agree."""
    layer = layer or {}
    params = _layer(rng, cell, activation, dtype, **layer)
    xs = jax.random.normal(jax.random.fold_in(rng, 2), (B, seq_len, D), dtype)
    state = _state(jax.random.fold_in(rng, 3), params, dtype)
    run = functools.partial(
        jaxrnn.apply_layer, params, xs, initial_state=state, **options
    )
    tol = TOL[dtype]
    assert_trees_close(jax.jit(lambda: run(impl=impl))(), run(impl="scan"), tol)
    fused = jax.jit(jax.grad(_loss(impl, **options), argnums=(0, 1, 2)))
    scan = jax.grad(_loss("scan", **options), argnums=(0, 1, 2))
    grads = fused(params, xs, state)
    assert_trees_close(grads, scan(params, xs, state), tol * 10)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
