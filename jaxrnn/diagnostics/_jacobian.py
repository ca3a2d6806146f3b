"""The Jacobians of the recurrence, and the spectrum of W_hh.

BPTT multiplies the gradient by one Jacobian per step,

    dL/dh_t = (dh_{t+1}/dh_t)^T ... (dh_T/dh_{T-1})^T dL/dh_T,

so its size over a span of k steps is governed by the product of k
Jacobians. For the tanh RNN, dh_t/dh_{t-1} = diag(1 - h_t^2) W_hh: if the
largest singular value of W_hh is below 1/gamma, where gamma bounds |g1'|
(1 for tanh and ReLU, 1/4 for the sigmoid), every factor shrinks the
gradient and it vanishes geometrically. A spectral radius above 1 is
necessary for it to explode (Pascanu, Mikolov & Bengio 2013).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.typing import ArrayLike

from jaxrnn import _checks
from jaxrnn.diagnostics._grads import _check_step


class TransitionJacobians(NamedTuple):
    """What `transition_jacobians` returns.

    Index t refers to the state s_{t+1} after reading xs[t] (t = 0..T-1), as
    for the outputs; s is the whole carry, flattened (h, then c for the LSTM).

    Attributes:
        jacobians: [T, S, S], jacobians[t] = ds_{t+1}/ds_t.
        norms: [T], the spectral norm (largest singular value) of each.
        to_end: [T], ||ds_T/ds_{t+1}||, the spectral norm of the product of
            the Jacobians of the T-1-t steps after t (to_end[T-1] = 1): how
            much a gradient at the end can grow or shrink on its way back
            to step t. `span_jacobian` gives the product over any span.
    """

    jacobians: jax.Array
    norms: jax.Array
    to_end: jax.Array


def transition_jacobians(
    step_fn: Callable[[Any, jax.Array], tuple[Any, Any]],
    carry: Any,
    xs: ArrayLike,
) -> TransitionJacobians:
    """The Jacobian of every step along a trajectory, and their products.

    Args:
        step_fn: a scan body `(carry, x) -> (carry, y)`, such as
            `functools.partial(jaxrnn.rnn_step, params)`.
        carry: the initial state.
        xs: inputs [T, D] (one sequence; use `jax.vmap` for a batch).

    Returns:
        TransitionJacobians(jacobians [T, S, S], norms [T], to_end [T]), with
        S the size of the flattened carry (H, or 2H for the LSTM).

    Examples:
        >>> import functools, jax, jax.numpy as jnp
        >>> p = init_rnn(jax.random.key(0), 2, 3)
        >>> out = transition_jacobians(functools.partial(rnn_step, p),
        ...                            jnp.zeros(3), jnp.ones((4, 2)))
        >>> out.jacobians.shape, float(out.to_end[-1])
        ((4, 3, 3), 1.0)
    """
    fn = "transition_jacobians"
    xs = _check_step(fn, step_fn, carry, xs)
    flat, unravel = ravel_pytree(carry)

    def flat_step(s, x):
        return ravel_pytree(step_fn(unravel(s), x)[0])[0]

    def body(s, x):
        return flat_step(s, x), s

    _, before = jax.lax.scan(body, flat, xs)
    jacobians = jax.vmap(jax.jacfwd(flat_step))(before, xs)

    def back(product, jacobian):
        # product = ds_T/ds_{t+1}; the next one back is product @ jacobian.
        return product @ jacobian, product

    eye = jnp.eye(flat.shape[0], dtype=flat.dtype)
    _, products = jax.lax.scan(back, eye, jacobians, reverse=True)
    return TransitionJacobians(
        jacobians, spectral_norm(jacobians), spectral_norm(products)
    )


def span_jacobian(jacobians: Any, start: int, stop: int) -> jax.Array:
    """ds_stop/ds_start, the product of the Jacobians of steps start..stop-1.

    With `jacobians` from `transition_jacobians` (jacobians[t] = ds_{t+1}/ds_t,
    s_0 the initial state), this is jacobians[stop-1] @ ... @ jacobians[start]
    for 0 <= start <= stop <= T; the identity when start == stop. Its
    `spectral_norm` is how much a gradient can grow or shrink over that span.

    Examples:
        >>> import functools, jax, jax.numpy as jnp
        >>> p = init_rnn(jax.random.key(0), 2, 3)
        >>> jac = transition_jacobians(functools.partial(rnn_step, p),
        ...                            jnp.zeros(3), jnp.ones((6, 2))).jacobians
        >>> span_jacobian(jac, 1, 4).shape
        (3, 3)
    """
    fn = "span_jacobian"
    jacobians = _checks.float_array(fn, "jacobians", jacobians, ndim=3)
    steps = jacobians.shape[0]
    for name, value in (("start", start), ("stop", stop)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 0 <= value <= steps
        ):
            _checks.fail(fn, name, f"must be an int in [0, T = {steps}]", repr(value))
    if start > stop:
        _checks.fail(fn, "start", f"must be <= stop = {stop}", repr(start))
    product = jnp.eye(jacobians.shape[-1], dtype=jacobians.dtype)
    for t in range(start, stop):
        product = jacobians[t] @ product
    return product


def _matrix(fn: str, w: Any, square: bool = True) -> jax.Array:
    w = _checks.float_array(fn, "w", w)
    if w.ndim < 2 or (square and w.shape[-1] != w.shape[-2]):
        _checks.fail(
            fn,
            "w",
            "must be a square matrix [H, H] (or a stack [..., H, H])"
            if square
            else "must be a matrix [M, N] (or a stack [..., M, N])",
            _checks.describe(w),
            "For a gated cell, w_hh stacks the gate blocks [G*H, H]; pass one "
            "block, such as w_hh[:H]."
            if square and w.ndim == 2
            else "",
        )
    return w


def spectral_norm(w: Any) -> jax.Array:
    """The largest singular value of a matrix, or of each in a stack [..., M, N].

    It bounds how much one multiplication by w can stretch a vector.

    Examples:
        >>> import jax.numpy as jnp
        >>> float(spectral_norm(jnp.array([[3.0, 0.0], [0.0, -4.0]])))
        4.0
    """
    w = _matrix("spectral_norm", w, square=False)
    return jnp.linalg.svd(w, compute_uv=False)[..., 0]


def spectral_radius(w: Any) -> jax.Array:
    """max |eigenvalue| of a square matrix (or of each in a stack [..., H, H]).

    It sets the growth of w^k for large k: ||w^k||^(1/k) -> radius. On
    concrete weights, wherever they are, the eigenvalues are computed by
    NumPy on the host in float64; under `jit` it falls back to
    `jnp.linalg.eigvals`, which not every backend implements.

    Examples:
        >>> import jax.numpy as jnp
        >>> float(spectral_radius(jnp.array([[0.0, 2.0], [-2.0, 0.0]])))
        2.0
    """
    w = _matrix("spectral_radius", w)
    try:
        host = np.asarray(w, np.float64)
    except jax.errors.TracerArrayConversionError:  # under jit
        return jnp.max(jnp.abs(jnp.linalg.eigvals(w)), axis=-1).astype(w.dtype)
    return jnp.asarray(np.max(np.abs(np.linalg.eigvals(host)), axis=-1), w.dtype)


def rescale_spectral_radius(w: Any, radius: float) -> jax.Array:
    """w scaled by a constant so that its spectral radius is `radius`.

    The standard way to set up a vanishing (radius < 1) or exploding
    (radius > 1) recurrence: `params._replace(w_hh=rescale_spectral_radius(
    params.w_hh, 3.0))`.

    Raises:
        ValueError: w not square, radius not a positive number, or w with a
            spectral radius of 0 (nilpotent), which no scaling can change.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> w = jax.random.normal(jax.random.key(0), (8, 8))
        >>> round(float(spectral_radius(rescale_spectral_radius(w, 0.9))), 4)
        0.9
    """
    fn = "rescale_spectral_radius"
    w = _matrix(fn, w)
    if w.ndim != 2:
        _checks.fail(fn, "w", "must be one matrix [H, H]", _checks.describe(w))
    radius = _checks.positive_float(fn, "radius", radius)
    current = spectral_radius(w)
    if not float(current) > 0:
        _checks.fail(
            fn,
            "w",
            "must have a nonzero spectral radius",
            f"a radius of {float(current)}",
            "A nilpotent or zero matrix cannot be rescaled to a radius.",
        )
    return w * (radius / current).astype(w.dtype)


_GAMMA = {"tanh": 1.0, "relu": 1.0, "sigmoid": 0.25, "identity": 1.0}


def derivative_bound(activation: str) -> float:
    """gamma = sup |g1'(z)| for a named activation: 1 (tanh, relu), 1/4 (sigmoid).

    With ||diag(g1'(z))|| <= gamma, each step's Jacobian has norm at most
    gamma * ||W_hh||, so spectral_norm(W_hh) < 1 / gamma guarantees that
    gradients vanish (Pascanu et al. 2013).

    Examples:
        >>> 1 / derivative_bound("sigmoid")
        4.0
    """
    return _GAMMA[
        _checks.choice("derivative_bound", "activation", activation, tuple(_GAMMA))
    ]
