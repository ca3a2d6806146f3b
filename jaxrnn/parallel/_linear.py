"""Linear recurrences in O(log T) depth: what each Newton step solves.

    h_t = A_t h_{t-1} + b_t,   t = 1..T,   h_0 = 0

Two steps compose into one, (A_2, b_2) after (A_1, b_1) being
(A_2 A_1, A_2 b_1 + b_2). The composition is associative, so
`jax.lax.associative_scan` computes every prefix, and hence every h_t, in
about 2 log2(T) rounds of T/2^k compositions each. A starting state h_0 is
folded in by the caller as b_1 + A_1 h_0.

`dense` takes the Jacobians whole, A_t [n, n] (DEER): each composition is an
n x n matmul, so a solve costs O(T n^3) work and O(T n^2) memory. `diagonal`
takes only their diagonals, A_t [n] (quasi-DEER): O(T n). With
`reverse=True` the recurrence runs from t = T down to 1, h_t = A_t h_{t+1} +
b_t, which is the adjoint (backward) solve.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _dense_compose(first, second):
    a1, b1 = first
    a2, b2 = second
    return a2 @ a1, jnp.einsum("...ij,...j->...i", a2, b1) + b2


def _diagonal_compose(first, second):
    a1, b1 = first
    a2, b2 = second
    return a2 * a1, a2 * b1 + b2


def dense(a: jax.Array, b: jax.Array, *, reverse: bool = False) -> jax.Array:
    """h [..., T, n] from a [..., T, n, n] and b [..., T, n] (time on axis -3/-2)."""
    axis = b.ndim - 2
    return jax.lax.associative_scan(_dense_compose, (a, b), reverse=reverse, axis=axis)[
        1
    ]


def diagonal(
    a: jax.Array, b: jax.Array, *, reverse: bool = False, axis: int | None = None
) -> jax.Array:
    """h [..., T, n] from a [..., T, n] (the diagonals) and b [..., T, n];
    `axis` names another time axis (the minimal cells' layers use it)."""
    axis = b.ndim - 2 if axis is None else axis
    return jax.lax.associative_scan(
        _diagonal_compose, (a, b), reverse=reverse, axis=axis
    )[1]


def apply(a: jax.Array, v: jax.Array) -> jax.Array:
    """A_t v_t for every t: a dense [..., n, n] or diagonal [..., n] A."""
    if a.ndim == v.ndim:
        return a * v
    return jnp.einsum("...ij,...j->...i", a, v)
