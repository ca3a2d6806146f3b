"""The lecture's activations g1 and g2, chosen by name or given as callables."""

from __future__ import annotations

from typing import Callable, Union

import jax
import jax.numpy as jnp

from jaxrnn import _checks

Activation = Union[str, Callable[[jax.Array], jax.Array]]


def _identity(z: jax.Array) -> jax.Array:
    return z


# Elementwise activations, usable as g1 (the hidden state) and g2 (the readout).
ELEMENTWISE = {
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "relu": jax.nn.relu,
    "identity": _identity,
}
# The readout may also normalise across its last axis.
READOUT = {**ELEMENTWISE, "softmax": jax.nn.softmax}


def resolve(
    fn: str, arg: str, activation: Activation, table: dict = ELEMENTWISE
) -> Callable[[jax.Array], jax.Array]:
    """Turn a name from `table`, or any callable, into a function."""
    if callable(activation):
        return activation
    if isinstance(activation, str) and activation in table:
        return table[activation]
    _checks.fail(
        fn,
        arg,
        f"must be one of {', '.join(map(repr, table))} or a callable",
        repr(activation),
        kind=ValueError if isinstance(activation, str) else TypeError,
    )


def derivative(fn: str, activation: Activation) -> Callable[[jax.Array], jax.Array]:
    """g'(z) for an elementwise activation, as a function of the pre-activation z.

    Closed forms for the named activations; `jax.grad` of the scalar function
    for a callable, which must then be elementwise.
    """
    g = resolve(fn, "activation", activation)
    if g is jnp.tanh:
        return lambda z: 1 - jnp.tanh(z) ** 2
    if g is jax.nn.sigmoid:
        return lambda z: jax.nn.sigmoid(z) * (1 - jax.nn.sigmoid(z))
    if g is jax.nn.relu:
        return lambda z: (z > 0).astype(z.dtype)
    if g is _identity:
        return jnp.ones_like
    return jnp.vectorize(jax.grad(g))
