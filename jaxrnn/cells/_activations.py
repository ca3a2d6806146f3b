"""The lecture's activations g1 and g2: the one table, with each derivative.

Every activation jaxrnn knows by name is one row of `ACTIVATIONS`: the
function g and its derivative g', written as a function of the output
y = g(z), which is what a backward pass has kept:

    tanh       g(z) = tanh(z)            g'(z) = 1 - y^2
    sigmoid    g(z) = 1 / (1 + e^-z)     g'(z) = y (1 - y)
    relu       g(z) = max(z, 0)          g'(z) = 1 where y > 0, else 0
    identity   g(z) = z                  g'(z) = 1
    positive   g(z) = z + 1/2 (z >= 0),  g'(z) = 1 where y >= 1/2,
                      sigmoid(z) (z < 0)          else y (1 - y)

"positive" is Feng et al.'s g (2024): continuous, increasing and above 0,
so the minGRU's and minLSTM's candidates are positive and their recurrence
can run in log space (`log_positive` is log g, computed without g).

The steps resolve g from here, `train.rnn_bptt` and the fast path's
hand-written backward passes ask it for g'. The readout may also use
softmax, which normalises across its last axis and so has no row.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Union

import jax
import jax.numpy as jnp

from jaxrnn import _checks

Activation = Union[str, Callable[[jax.Array], jax.Array]]


class Elementwise(NamedTuple):
    """An elementwise activation and its derivative.

    Attributes:
        fn: g(z).
        grad: g'(z) as a function of the output y = g(z).
    """

    fn: Callable[[jax.Array], jax.Array]
    grad: Callable[[jax.Array], jax.Array]


def _identity(z: jax.Array) -> jax.Array:
    return z


def positive(z: jax.Array) -> jax.Array:
    """g(z) = z + 1/2 for z >= 0 and sigmoid(z) below: positive everywhere."""
    return jnp.where(z >= 0, jax.nn.relu(z) + 0.5, jax.nn.sigmoid(z))


def log_positive(z: jax.Array) -> jax.Array:
    """log g(z) for "positive": log(z + 1/2) for z >= 0, -softplus(-z) below
    (each branch finite where the other is not taken, so gradients are too)."""
    return jnp.where(z >= 0, jnp.log(jax.nn.relu(z) + 0.5), -jax.nn.softplus(-z))


ACTIVATIONS = {
    "tanh": Elementwise(jnp.tanh, lambda y: 1 - y * y),
    "sigmoid": Elementwise(jax.nn.sigmoid, lambda y: y * (1 - y)),
    "relu": Elementwise(jax.nn.relu, lambda y: (y > 0).astype(y.dtype)),
    "identity": Elementwise(_identity, jnp.ones_like),
    "positive": Elementwise(
        positive, lambda y: jnp.where(y >= 0.5, jnp.ones_like(y), y * (1 - y))
    ),
}
# The names g1 and g2 take, and the readout's softmax besides.
ELEMENTWISE = {name: row.fn for name, row in ACTIVATIONS.items()}
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

    The table's closed form for a named activation (or a callable that is
    one of the table's functions); `jax.grad` of the scalar function for any
    other callable, which must then be elementwise.
    """
    g = resolve(fn, "activation", activation)
    for row in ACTIVATIONS.values():
        if g is row.fn:
            return lambda z, row=row: row.grad(row.fn(z))
    return jnp.vectorize(jax.grad(g))
