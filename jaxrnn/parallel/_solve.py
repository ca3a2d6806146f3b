"""The parallel solve of a batch, its fallback, and its implicit gradient.

A step `step(params, carry, x) -> (carry, y)` is seen through its flattened
carry s (the leaves of the carry, raveled: h, or h then c for the LSTM):

    s_t = f(s_{t-1}, x_t)    (held, s_t = s_{t-1}, where the mask is False)
    y_t = the step's output at (s_{t-1}, x_t)   (zero where masked)

`_newton` finds S = s_1..s_T; the outputs are then one evaluation of the
step at every (s_{t-1}, x_t), all at once, differentiated as usual.

The map (params, s_0, xs) -> S has a custom VJP: S solves S = F(S) with
F_t(S) = f(s_{t-1}, x_t), so by the implicit function theorem its cotangent
S_bar pulls back through lambda = (I - dF/dS)^-T S_bar, which is the linear
adjoint recurrence

    lambda_T = S_bar_T,   lambda_t = S_bar_t + J_{t+1}^T lambda_{t+1},

one reverse associative scan of the transposed Jacobians at the solution
(recomputed there, dense, whichever method found S, so that the gradient is
exact), followed by one VJP of F with lambda. This is BPTT with its
sequential loop replaced by a scan in O(log T) depth.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxrnn import _unroll
from jaxrnn.parallel import _linear, _newton


class Info(NamedTuple):
    """How the parallel solve went, per sequence.

    Attributes:
        iterations: the Newton iterations run (int32).
        converged: whether Newton reached the tolerance (bool).
        residual: the residual of Newton's last iterate, max over t and
            units of |s_t - f(s_{t-1}, x_t)| / (1 + |f(s_{t-1}, x_t)|).
        fell_back: whether the sequential scan computed the answer instead
            (bool), because Newton had not converged within max_iters.
    """

    iterations: jax.Array
    converged: jax.Array
    residual: jax.Array
    fell_back: jax.Array


class Config(NamedTuple):
    """The static half of a solve."""

    cell: Callable
    method: str
    tol: float
    max_iters: int
    fallback: bool


def run(
    step: Callable,
    params: Any,
    carry: Any,
    xs: jax.Array,
    mask: jax.Array | None,
    *,
    method: str,
    tol: float,
    max_iters: int,
    reverse: bool,
    fallback: bool,
) -> tuple[Any, Any, Info]:
    """Solve a batch: carry leaves [B, ...], xs [B, T, D], mask [B, T] or None.

    Arguments are checked already, and masked inputs zeroed (`parallel_unroll`
    and `apply_layer` do it), so that padding never reaches the step. Returns
    (final carry, ys [B, T, ...], Info with [B] fields), with `unroll`'s
    meaning for the first two.
    """
    batch, seq_len = xs.shape[:2]
    example = jax.tree.map(lambda a: a[0], carry)
    _, unravel = ravel_pytree(example)
    if seq_len == 0:
        y = jax.eval_shape(
            lambda c, x: step(params, c, x)[1],
            example,
            jax.ShapeDtypeStruct(xs.shape[2:], xs.dtype),
        )
        ys = jax.tree.map(lambda s: jnp.zeros((batch, 0, *s.shape), s.dtype), y)
        zero = jnp.zeros((batch,))
        return carry, ys, Info(zero.astype(jnp.int32), zero == 0, zero, zero != 0)
    if reverse:
        xs = jnp.flip(xs, 1)
        mask = None if mask is None else jnp.flip(mask, 1)
    s0 = jax.vmap(lambda c: ravel_pytree(c)[0])(carry)

    def cell(theta, s, x, m):
        new, y = step(theta, unravel(s), x)
        new = ravel_pytree(new)[0]
        return _unroll.hold(m, new, s), _unroll.zero_masked(y, m)

    config = Config(cell, method, tol, max_iters, fallback)
    states, info = _states(config, params, s0, xs, mask)
    prev = _newton.shift(states, s0)
    _, ys = _over_batch_and_time(cell)(params, prev, xs, mask)
    final = jax.vmap(unravel)(states[:, -1])
    if reverse:
        ys = jax.tree.map(lambda a: jnp.flip(a, 1), ys)
    return final, ys, info


def _over_batch_and_time(fn):
    """fn(theta, s, x, m) mapped over [B, T] (m may be None)."""
    over_time = jax.vmap(fn, in_axes=(None, 0, 0, 0))
    return jax.vmap(over_time, in_axes=(None, 0, 0, 0))


def _state_part(config: Config):
    """F: (theta, P [B, T, n], xs, mask) -> f(P_t, x_t) for every t."""
    return _over_batch_and_time(lambda *args: config.cell(*args)[0])


def _functions(config: Config, theta, xs, mask):
    """linearise(P) -> (f, J or its diagonal) in one pass, evaluate(P) -> f,
    and dense(P) -> the dense Jacobians J [B, T, n, n]."""

    def both(theta, s, x, m):
        f = config.cell(theta, s, x, m)[0]
        return f, f

    jacobians = _over_batch_and_time(jax.jacfwd(both, argnums=1, has_aux=True))

    def evaluate(prev):
        return _state_part(config)(theta, prev, xs, mask)

    def linearise(prev):
        j, f = jacobians(theta, prev, xs, mask)
        if config.method == "quasi":
            j = jnp.diagonal(j, axis1=-2, axis2=-1)
        return f, j

    def dense(prev):
        return jacobians(theta, prev, xs, mask)[0]

    return linearise, evaluate, dense


def _sequential(config: Config, theta, s0, xs, mask):
    """The reference answer: the states by a sequential scan, [B, T, n]."""
    step = jax.vmap(config.cell, in_axes=(None, 0, 0, 0))

    def body(s, inputs):
        x, m = inputs
        s = step(theta, s, x, m)[0]
        return s, s

    time_major = (jnp.swapaxes(xs, 0, 1), None if mask is None else mask.T)
    _, states = jax.lax.scan(body, s0, time_major)
    return jnp.swapaxes(states, 0, 1)


def _forward(config: Config, theta, s0, xs, mask):
    linearise, evaluate, _ = _functions(config, theta, xs, mask)
    out = _newton.newton(
        linearise,
        evaluate,
        s0,
        xs.shape[1],
        method=config.method,
        tol=config.tol,
        max_iters=config.max_iters,
    )
    states = out.states
    # A small last step is not enough: the iterate must also satisfy every
    # step's equation (beyond the exact prefix, a chaotic trajectory can hold
    # huge values that a Newton step no longer changes).
    left = _newton.largest(
        _newton.residual(states, evaluate(_newton.shift(states, s0)))
    )
    converged = out.converged & (left <= config.tol)
    fell_back = jnp.zeros_like(converged)
    if config.fallback:
        fell_back = ~converged

        def finish():
            exact = _sequential(config, theta, s0, xs, mask)
            return jnp.where(converged[:, None, None], states, exact)

        states = jax.lax.cond(converged.all(), lambda: states, finish)
    info = Info(out.iterations, converged, left, fell_back)
    return states, info


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _states(config: Config, theta, s0, xs, mask):
    return _forward(config, theta, s0, xs, mask)


def _states_fwd(config, theta, s0, xs, mask):
    states, info = _forward(config, theta, s0, xs, mask)
    return (states, info), (theta, s0, xs, mask, states)


def _states_bwd(config, saved, cotangents):
    theta, s0, xs, mask, states = saved
    s_bar = cotangents[0]
    _, _, dense = _functions(config, theta, xs, mask)
    j = dense(_newton.shift(states, s0))  # J_t = ds_t/ds_{t-1}, [B, T, n, n]
    # lambda_t = s_bar_t + J_{t+1}^T lambda_{t+1}: the coefficient of step t
    # is J_{t+1}^T, and nothing follows step T.
    a = jnp.concatenate([jnp.swapaxes(j[:, 1:], -1, -2), jnp.zeros_like(j[:, :1])], 1)
    lam = _linear.dense(a, s_bar, reverse=True)

    def pull(theta, s0, xs):
        return _state_part(config)(theta, _newton.shift(states, s0), xs, mask)

    _, vjp = jax.vjp(pull, theta, s0, xs)
    theta_bar, s0_bar, xs_bar = vjp(lam)
    return theta_bar, s0_bar, xs_bar, None


_states.defvjp(_states_fwd, _states_bwd)
