"""Lyapunov exponents along a trajectory, and what they say about solving it
in parallel.

The product of the step Jacobians J_T ... J_1 is what BPTT multiplies a
gradient by (the lecture's vanishing and exploding gradients) and what
amplifies an error in a guess of the trajectory. Its growth rate per step is
the largest Lyapunov exponent (LLE),

    lambda_1 = lim (1/T) log || J_T ... J_1 q ||,

negative for a contractive (predictable) network, positive for a chaotic
one. The product over- or underflows long before T is large, so the
estimate propagates an orthonormal frame instead: Q_t R_t = J_t Q_{t-1}
(a QR factorisation at every step) and lambda_i is the mean of log |R_t[i, i]|.

Newton's method on the whole trajectory (`jaxrnn.parallel`) needs few
iterations when lambda_1 < 0 and up to T when it is > 0 (Gonzalez et al.
2025, "Predictability enables parallelization of nonlinear state space
models"): `parallel_outlook` estimates lambda_1 on a prefix of the sequence
before solving.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jax.typing import ArrayLike

from jaxrnn import _checks, _unroll
from jaxrnn.parallel import _api as _parallel

# An LLE below this predicts a fast parallel solve (see `parallel_outlook`).
FAST_BELOW = -0.15


def lyapunov_spectrum(
    step: _unroll.Step,
    params: Any,
    carry: Any,
    xs: ArrayLike,
    *,
    k: int | None = None,
    mask: ArrayLike | None = None,
    length: ArrayLike | None = None,
    start: ArrayLike | None = None,
) -> jax.Array:
    """The k largest Lyapunov exponents along one trajectory, per step.

    Args:
        step: a reference step `step(params, carry, x) -> (carry, y)`.
        params: its parameters.
        carry: the initial carry.
        xs: one sequence [T, D].
        k: how many exponents (default: all n, the size of the flattened
            carry: H, or 2H for the LSTM).
        mask: optional bool [T]; masked steps hold the carry and are left
            out of the average. `length` is the same as a mask.
        length: optional integer scalar, instead of mask.
        start: optional initial frame [n, k] (or [n] for k = 1); its columns
            are orthonormalised. Default: a fixed random orthonormal frame.

    Returns:
        [k], largest first: the mean over the valid steps of log |R_t[i, i]|.
        A step whose Jacobian is singular along a direction (a dead ReLU, a
        saturated gate) contributes log of the smallest positive float.

    Examples:
        >>> import functools, jax, jax.numpy as jnp
        >>> p = init_rnn(jax.random.key(0), 1, 3, bias=False)
        >>> p = p._replace(w_hh=jnp.diag(jnp.array([0.5, 0.25, 0.1])))
        >>> s = lyapunov_spectrum(functools.partial(rnn_step, activation="identity"),
        ...                       p, jnp.zeros(3), jnp.zeros((1000, 1)))
        >>> [round(float(v), 2) for v in s]
        [-0.69, -1.39, -2.3]
    """
    fn = "lyapunov_spectrum"
    xs = _checks.float_array(
        fn, "xs", xs, ndim=2, hint="It takes one sequence [T, D]; vmap for a batch."
    )
    mask = _unroll.resolve_mask(fn, xs.shape[0], mask, length)
    _parallel.check_step(fn, step, params, carry, xs)
    flat, unravel = ravel_pytree(carry)
    n = flat.shape[0]
    k = n if k is None else _checks.positive_int(fn, "k", k)
    if k > n:
        _checks.fail(fn, "k", f"must be at most n = {n} (the carry's size)", repr(k))
    frame = _frame(fn, start, n, k, flat.dtype)
    keep = jnp.ones(xs.shape[0], bool) if mask is None else mask

    def f(s, x):
        new = ravel_pytree(step(params, unravel(s), x)[0])[0]
        return new, new

    tiny = jnp.finfo(flat.dtype).tiny

    def body(state, inputs):
        s, q, sums = state
        x, valid = inputs
        j, new = jax.jacfwd(f, has_aux=True)(s, x)  # one pass for both
        q_new, r = jnp.linalg.qr(j @ q)
        logs = jnp.log(jnp.maximum(jnp.abs(jnp.diagonal(r)), tiny))
        s = jnp.where(valid, new, s)
        q = jnp.where(valid, q_new, q)
        return (s, q, sums + jnp.where(valid, logs, 0)), None

    zeros = jnp.zeros((k,), flat.dtype)
    (_, _, sums), _ = jax.lax.scan(body, (flat, frame, zeros), (xs, keep))
    return sums / jnp.maximum(keep.sum(), 1).astype(flat.dtype)


def lyapunov_exponent(
    step: _unroll.Step,
    params: Any,
    carry: Any,
    xs: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    length: ArrayLike | None = None,
    start: ArrayLike | None = None,
) -> jax.Array:
    """The largest Lyapunov exponent along one trajectory (a scalar): below 0
    a contractive network, above 0 a chaotic one.

    `lyapunov_spectrum` with k = 1: one direction carried through the step
    Jacobians and renormalised at every step, so that nothing overflows.
    For a linear RNN it is log of the spectral radius of W_hh (for long
    sequences). Arguments as for `lyapunov_spectrum`.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> p = init_rnn(jax.random.key(0), 2, 8)
        >>> small = p._replace(w_hh=0.3 * p.w_hh)
        >>> xs = jax.random.normal(jax.random.key(1), (200, 2))
        >>> bool(lyapunov_exponent(rnn_step, small, jnp.zeros(8), xs) < 0)
        True
    """
    return lyapunov_spectrum(
        step, params, carry, xs, k=1, mask=mask, length=length, start=start
    )[0]


def _frame(fn, start, n, k, dtype):
    if start is None:
        start = jax.random.normal(jax.random.key(0), (n, k), dtype)
    else:
        start = _checks.float_array(fn, "start", start).astype(dtype)
        if start.ndim == 1:
            start = start[:, None]
        if start.shape != (n, k):
            _checks.fail(
                fn,
                "start",
                f"must be [n, k] = [{n}, {k}] (or [n] for k = 1)",
                _checks.describe(start),
            )
    return jnp.linalg.qr(start)[0]


class ParallelOutlook(NamedTuple):
    """What `parallel_outlook` predicts.

    Attributes:
        lle: the largest Lyapunov exponent over the probed prefix.
        fast: whether the parallel solve is predicted to converge in few
            iterations (lle < FAST_BELOW).
        steps: how many steps were probed.
    """

    lle: jax.Array
    fast: jax.Array
    steps: int


def parallel_outlook(
    step: _unroll.Step,
    params: Any,
    carry: Any,
    xs: ArrayLike,
    *,
    probe: int = 512,
    mask: ArrayLike | None = None,
    length: ArrayLike | None = None,
) -> ParallelOutlook:
    """Predict, before solving, whether `parallel_unroll` will converge fast.

    It estimates the largest Lyapunov exponent on the first `probe` steps
    (a sequential pass over them, with one Jacobian per step). Newton's
    iterations grow with it: on tanh RNNs of H = 16 over T = 1000
    (`benchmarks/bench_parallel.py`, results in benchmarks/README.md), an
    LLE of -0.215 or below took at most 11 iterations, one of -0.104 took
    475 (22 damped), and a positive one about T, where the fallback to the
    sequential scan finishes the job. `fast` is lle < FAST_BELOW (-0.15),
    between those two measured regimes.

    Args:
        step: a reference step, as for `lyapunov_exponent`.
        params: its parameters.
        carry: the initial carry.
        xs: one sequence [T, D].
        probe: the most steps to probe (an int >= 1).
        mask: optional bool [T], as for `lyapunov_exponent`.
        length: optional integer scalar, instead of mask.

    Returns:
        ParallelOutlook(lle, fast, steps).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> p = init_gru(jax.random.key(0), 2, 8)
        >>> xs = jax.random.normal(jax.random.key(1), (5000, 2))
        >>> bool(parallel_outlook(gru_step, p, jnp.zeros(8), xs).fast)
        True
    """
    fn = "parallel_outlook"
    probe = _checks.positive_int(fn, "probe", probe)
    xs = _checks.float_array(
        fn, "xs", xs, ndim=2, hint="It takes one sequence [T, D]; vmap for a batch."
    )
    mask = _unroll.resolve_mask(fn, xs.shape[0], mask, length)
    steps = min(probe, xs.shape[0])
    lle = lyapunov_exponent(
        step,
        params,
        carry,
        xs[:steps],
        mask=None if mask is None else mask[:steps],
    )
    return ParallelOutlook(lle, lle < FAST_BELOW, steps)
