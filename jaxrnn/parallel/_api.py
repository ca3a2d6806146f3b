"""`parallel_unroll`: `unroll`'s answer, with every step solved at once."""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxrnn import _checks, _unroll
from jaxrnn.parallel import _newton, _solve
from jaxrnn.parallel._solve import Info

METHODS = _newton.METHODS
# The default tolerance per computing dtype, and the default iteration cap.
TOLERANCES = {"float32": 1e-5, "float64": 1e-11}
MAX_ITERS = 100


def parallel_unroll(
    step: _unroll.Step,
    params: Any,
    carry: Any,
    xs: ArrayLike,
    *,
    method: str = "newton",
    tol: float | None = None,
    max_iters: int | None = None,
    mask: ArrayLike | None = None,
    length: ArrayLike | None = None,
    reverse: bool = False,
    fallback: bool = True,
) -> tuple[Any, Any, Info]:
    """`unroll`, solved in parallel over time by Newton's method (DEER).

    The T equations s_t = f(s_{t-1}, x_t) of the unrolled network are solved
    together: each Newton iteration linearises the step around the current
    guess of the whole trajectory and solves the resulting linear recurrence
    with `jax.lax.associative_scan`, in O(log T) depth. For a contractive
    trajectory (largest Lyapunov exponent below 0;
    `diagnostics.lyapunov_exponent`) a few iterations suffice; a chaotic one
    may need up to T, and is then finished by the sequential scan.

    Args:
        step: a reference step `step(params, carry, x) -> (carry, y)`:
            any of the nine cells, with `functools.partial` for options such
            as the Elman activation. It must be a pure function of its
            arguments (arrays belong in params).
        params: the step's parameters.
        carry: the initial carry.
        xs: one sequence [T, D] (`apply_layer(impl="parallel")` runs a
            batch).
        method: "newton" (the default; dense Jacobians, DEER: quadratic
            convergence, O(T n^3) work and O(T n^2) memory per iteration for
            a carry of n numbers), "quasi" (their diagonals only, quasi-DEER:
            O(T n) per solve, linear convergence) or "damped" (dense Newton
            accepted only on the prefix of the trajectory where it does not
            make the residual worse: for unstable cells, where undamped
            Newton overflows; it keeps DEER's bound of T iterations).
        tol: the residual to reach, max over t and units of
            |s_t - f(s_{t-1}, x_t)| / (1 + |f|). Default 1e-5 in float32
            and 1e-11 in float64 (16-bit inputs compute in float32).
        max_iters: the most Newton iterations (default 100).
        mask: optional bool [T], with `unroll`'s meaning: where False the
            carry is held and y_t = 0. Masked inputs never reach the step,
            so padding may hold anything.
        length: optional integer scalar, instead of mask.
        reverse: run from t = T-1 down to 0, as in `unroll`.
        fallback: True (the default): if Newton has not converged within
            max_iters, the sequential scan computes the answer, so the
            result is always `unroll`'s to rounding. False returns Newton's
            last iterate, whose gradient is then only approximate; `info`
            says which happened.

    Returns:
        (final_carry, ys, info): `unroll`'s (final_carry, ys), and an `Info`
        with iterations, converged, residual and fell_back (scalars).

    Gradients are by implicit differentiation: at the solution the adjoint
    recurrence is linear, so `jax.grad` costs one more associative scan, of
    the transposed dense Jacobians (whatever the method, so that the
    gradient is exact). Forward-mode derivatives (`jax.jvp`, `jax.jacfwd`)
    are refused by JAX's custom VJP; use `unroll` for those. Under
    `jax.vmap` every sequence runs until the slowest converges, and the
    fallback's `lax.cond` becomes a select, so the sequential scan then runs
    every time: map a batch with `apply_layer(impl="parallel")`, which
    solves it in one loop and falls back only when a sequence needs it.

    Raises:
        ValueError, TypeError: at trace time, for a step that is not a scan
            body (it does not return (carry, y) with the carry's structure,
            shapes and dtypes), an unknown method, a tolerance that is not a
            positive number, a max_iters that is not a positive int, and
            what `unroll` refuses.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> p = init_gru(jax.random.key(0), 3, 4)
        >>> xs = jax.random.normal(jax.random.key(1), (500, 3))
        >>> carry, ys, info = parallel_unroll(gru_step, p, jnp.zeros(4), xs)
        >>> bool(info.converged), int(info.iterations) < 20
        (True, True)
        >>> bool(jnp.allclose(ys, unroll(gru_step, p, jnp.zeros(4), xs)[1], atol=1e-5))
        True
    """
    fn = "parallel_unroll"
    xs = _checks.float_array(
        fn,
        "xs",
        xs,
        ndim=2,
        hint="It takes one sequence [T, D]; apply_layer(impl='parallel') takes "
        "a batch [B, T, D].",
    )
    options = resolve(fn, method, tol, max_iters, fallback, xs.dtype)
    mask = _unroll.resolve_mask(fn, xs.shape[0], mask, length)
    check_step(fn, step, params, carry, xs)
    batched = jax.tree.map(lambda a: jnp.asarray(a)[None], carry)
    final, ys, info = run(
        step,
        params,
        batched,
        _unroll.zero_masked(xs, mask)[None],  # padding never reaches the step
        None if mask is None else mask[None],
        reverse=bool(reverse),
        **options,
    )
    one = lambda a: a[0]  # noqa: E731
    return jax.tree.map(one, final), jax.tree.map(one, ys), jax.tree.map(one, info)


def run(step, params, carry, xs, mask, **options) -> tuple[Any, Any, Info]:
    """The solve of a checked batch, in float32 for 16-bit inputs."""
    dtype = xs.dtype
    work = _checks.work_dtype(dtype)
    if work == dtype:
        return _solve.run(step, params, carry, xs, mask, **options)
    up = lambda a: a.astype(work) if _floating(a) else a  # noqa: E731
    final, ys, info = _solve.run(
        step,
        jax.tree.map(up, params),
        jax.tree.map(up, carry),
        xs.astype(work),
        mask,
        **options,
    )
    down = lambda a: a.astype(dtype) if _floating(a) else a  # noqa: E731
    return jax.tree.map(down, final), jax.tree.map(down, ys), info


def _floating(a) -> bool:
    return jnp.issubdtype(jnp.result_type(a), jnp.floating)


def resolve(fn, method, tol, max_iters, fallback, dtype) -> dict:
    """The checked solver options, with their defaults."""
    _checks.choice(fn, "method", method, METHODS)
    if tol is None:
        tol = TOLERANCES[_checks.work_dtype(dtype).name]
    else:
        tol = _checks.positive_float(fn, "tol", tol)
    if max_iters is None:
        max_iters = MAX_ITERS
    else:
        max_iters = _checks.positive_int(fn, "max_iters", max_iters)
    if not isinstance(fallback, (bool, numbers.Integral)):
        _checks.fail(fn, "fallback", "must be a bool", repr(fallback), kind=TypeError)
    return dict(method=method, tol=tol, max_iters=max_iters, fallback=bool(fallback))


def check_step(fn: str, step: Any, params: Any, carry: Any, xs: jax.Array) -> None:
    """Require a scan body: step(params, carry, x) -> (carry, y), with the new
    carry of the carry's structure, shapes and dtypes."""
    if not callable(step):
        _checks.fail(
            fn,
            "step",
            "must be a step function step(params, carry, x) -> (carry, y)",
            repr(step),
            "Use a cell such as jaxrnn.gru_step, with functools.partial for its "
            "options.",
            kind=TypeError,
        )
    leaves = jax.tree.leaves(carry)
    if not leaves:
        _checks.fail(fn, "carry", "must hold at least one array", repr(carry))
    for leaf in leaves:
        _checks.float_array(fn, "carry", leaf)
    x = jax.ShapeDtypeStruct(xs.shape[1:], xs.dtype)
    out = jax.eval_shape(step, params, carry, x)
    if not (isinstance(out, tuple) and len(out) == 2):
        _checks.fail(
            fn, "step", "must return a pair (carry, y)", f"{type(out).__name__} {out}"
        )
    spec = lambda a: (tuple(a.shape), jnp.dtype(a.dtype).name)  # noqa: E731
    want = jax.tree.map(spec, jax.tree.map(jnp.asarray, carry))
    got = jax.tree.map(spec, out[0])
    if jax.tree.structure(out[0]) != jax.tree.structure(carry) or want != got:
        _checks.fail(
            fn,
            "step",
            "must return a new carry of the carry's structure, shapes and dtypes "
            f"({want})",
            f"{got}",
            "parallel_unroll solves for the carry, so the step must map a "
            "carry to a carry like a scan body.",
        )
