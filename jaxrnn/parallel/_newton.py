"""Newton's method on the whole trajectory at once (DEER and its variants).

The unknowns are the states s_1..s_T of a batch of sequences, [B, T, n]; the
equations are r_t = s_t - f(s_{t-1}, x_t) = 0 with s_0 given. One Newton step
linearises f around the current guess s^(k):

    s_t = f(s^(k)_{t-1}) + J_t (s_{t-1} - s^(k)_{t-1}),   J_t = df/ds at s^(k)_{t-1}

which is a linear recurrence in s, solved by `_linear` in O(log T) depth.
Step 1 is exact because s_0 is, so each iteration makes at least one more
step exact: Newton converges in at most T iterations whatever the cell, and
for a contractive trajectory in very few.

    "newton"   dense Jacobians (DEER, Lim et al. 2023).
    "quasi"    their diagonals only (quasi-DEER): O(T n) per solve instead
               of O(T n^3), converging linearly rather than quadratically.
    "damped"   dense Newton, accepted only on the prefix of the trajectory
               where the new residual is finite and at most GROWTH times the
               old largest residual; later steps keep the old guess. See
               `_damped_accept` for why this damping and not ELK's.

The residual of a sequence is max over t and units of |r_t| / (1 + |f|). A
sequence stops when its Newton step, measured the same way, is at most `tol`
(`_solve` then also requires the residual to be). Converged sequences are frozen
(their values do not change) but, in one XLA program, still cost work until
the whole batch has converged or `max_iters` is reached.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxrnn.parallel import _linear

METHODS = ("newton", "quasi", "damped")
# How much worse than the old largest residual a damped step may be.
GROWTH = 100.0


class Solve(NamedTuple):
    """The loop's state and result: the states S [B, T, n], and per sequence
    [B] the iterations run and whether the last Newton step was at most tol."""

    states: jax.Array
    iterations: jax.Array
    converged: jax.Array


def shift(states: jax.Array, s0: jax.Array) -> jax.Array:
    """The states each step reads: s_0..s_{T-1}, [B, T, n], from s_1..s_T."""
    return jnp.concatenate([s0[:, None], states[:, :-1]], axis=1)


def residual(states: jax.Array, values: jax.Array) -> jax.Array:
    """Per step and sequence: max over units of |s - f| / (1 + |f|), [B, T]
    (NaN where either is not finite)."""
    r = jnp.abs(states - values) / (1 + jnp.abs(values))
    bad = ~(jnp.isfinite(states) & jnp.isfinite(values))
    return jnp.where(bad.any(-1), jnp.nan, r.max(-1))


def largest(r: jax.Array) -> jax.Array:
    """The largest per-step residual of each sequence, NaN if any is NaN."""
    return jnp.where(jnp.isnan(r).any(-1), jnp.nan, r.max(-1))


def newton(
    linearise: Callable[[jax.Array], tuple[jax.Array, jax.Array]],
    evaluate: Callable[[jax.Array], jax.Array],
    s0: jax.Array,
    seq_len: int,
    *,
    method: str,
    tol: float,
    max_iters: int,
) -> Solve:
    """Solve for S [B, T, n] from s0 [B, n].

    Args:
        linearise: P [B, T, n] -> (f(P_t, x_t) for every t, [B, T, n], and
            df/ds at P_t, [B, T, n, n], or its diagonal [B, T, n] for
            "quasi"), in one pass.
        evaluate: P -> f(P_t, x_t) alone (for "damped").
        s0: the initial states [B, n]; the first guess is s0 at every step.
        seq_len: T.
        method: one of METHODS.
        tol: a sequence has converged when its Newton step is at most tol
            (relative). A step this small leaves an error of about its square
            for "newton" and "damped"; measuring the step, not the residual,
            is what notices an ill-conditioned (chaotic) trajectory, whose
            step stays large while its residual is small.
        max_iters: the most Newton steps.
    """
    batch = s0.shape[0]
    guess = jnp.broadcast_to(s0[:, None], (batch, seq_len, s0.shape[1]))
    start = Solve(
        guess,
        jnp.zeros((batch,), jnp.int32),
        jnp.zeros((batch,), bool),
    )
    solve = _linear.diagonal if method == "quasi" else _linear.dense

    def more(state: Solve):
        return (state.iterations.max(initial=0) < max_iters) & ~state.converged.all()

    def iterate(state: Solve) -> Solve:
        prev = shift(state.states, s0)
        values, a = linearise(prev)
        # s_t = a_t s_{t-1} + (f_t - a_t prev_t); at t = 1, s_0 is known, so
        # b_1 = f_1 and the recurrence starts from zero.
        b = values - _linear.apply(a, prev)
        new = solve(a, b.at[:, 0].set(values[:, 0]))
        if method == "damped":
            new = _damped_accept(
                state.states, values, new, evaluate(shift(new, s0)), tol
            )
        change = largest(residual(state.states, new))
        live = ~state.converged
        return Solve(
            jnp.where(live[:, None, None], new, state.states),
            state.iterations + live.astype(jnp.int32),
            state.converged | (change <= tol),
        )

    return jax.lax.while_loop(more, iterate, start)


def _damped_accept(old, old_values, new, new_values, tol):
    """Keep the Newton step on the longest prefix where its residual is
    finite and at most GROWTH times the old largest residual (or tol); keep
    the old guess after it.

    Why this damping: undamped DEER fails on unstable stretches (a chaotic
    cell, or a trained one) because the linearised recurrence there grows
    like the product of the Jacobians and overflows; the infinities then
    reach every later step and Newton never recovers. ELK (Gonzalez et al.
    2024) damps with a Levenberg-Marquardt trust region, solved by a parallel
    Kalman smoother that carries n x n covariances through the scan. The
    prefix rule keeps DEER's own guarantee instead: the exact prefix of the
    Newton step has residual zero, so it is always accepted and grows by at
    least one step per iteration (convergence in at most T iterations, as for
    DEER), while nothing non-finite, and nothing much worse than before, is
    ever accepted. It costs one evaluation of the cell per iteration and no
    memory beyond DEER's. GROWTH = 1 (never worse) slowed convergence,
    because Newton's residual may rise before it falls; 100 leaves room for
    that and still refuses an overflowing step.
    """
    before = largest(residual(old, old_values))
    limit = GROWTH * jnp.maximum(jnp.nan_to_num(before, nan=jnp.inf), tol)
    bad = ~(residual(new, new_values) <= limit[:, None])  # NaN counts as bad
    seq_len = bad.shape[1]
    first_bad = jnp.where(bad.any(1), jnp.argmax(bad, axis=1), seq_len)
    take = jnp.arange(seq_len)[None] < first_bad[:, None]
    return jnp.where(take[..., None], new, old)
