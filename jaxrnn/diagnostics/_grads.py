"""How much gradient reaches each time step, and what clipping does to it.

`state_gradients` gives dL/dh_t for every t in one backward pass. It adds a
perturbation eps_t = 0 to the state after every step,

    h_t = step(h_{t-1}, x_t) + eps_t,

so that dL/d(eps_t) = dL/dh_t: the total derivative through every later step
and through the outputs, which is exactly what BPTT propagates backwards.

`clip_trace` trains with `optax.clip_by_global_norm` and records the global
gradient norm before and after clipping at every step.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from jaxrnn import _checks


class StateGradients(NamedTuple):
    """What `state_gradients` returns.

    Attributes:
        loss: the scalar loss.
        grads: dL/ds_t for every step, a pytree shaped like the carry with a
            leading T axis (for the LSTM, LSTMCarry(h [T, H], c [T, H])).
            Index t is the state after reading xs[t], as for the outputs.
        norms: [T], the Euclidean norm of the whole of grads[t] (h and c
            together for the LSTM).
    """

    loss: jax.Array
    grads: Any
    norms: jax.Array


def hidden_of(carry: Any) -> jax.Array:
    """h from a carry: the carry itself, or its first field (LSTMCarry.h)."""
    return carry if isinstance(carry, jax.Array) else jax.tree.leaves(carry)[0]


def global_norm(tree: Any) -> jax.Array:
    """sqrt(sum of squares) of every entry of a pytree, accumulated in >= float32.

    `jaxrnn.train` reports it as "grad_norm"; here it is the norm before and
    after clipping, and the norm of each step's state gradient.
    """
    leaves = [x for x in jax.tree.leaves(tree) if x is not None]
    if not leaves:
        return jnp.zeros((), jnp.float32)
    work = _checks.work_dtype(leaves[0].dtype)
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(work))) for x in leaves))


def _check_step(fn: str, step_fn: Any, carry: Any, xs: Any) -> jax.Array:
    if not callable(step_fn):
        _checks.fail(
            fn,
            "step_fn",
            "must be a step function (carry, x) -> (carry, y)",
            repr(step_fn),
            "Bind the params first: functools.partial(jaxrnn.rnn_step, params).",
            kind=TypeError,
        )
    xs = _checks.float_array(
        fn, "xs", xs, hint="Diagnostics run one sequence [T, D]; vmap for a batch."
    )
    if xs.ndim < 1 or xs.shape[0] < 1:
        _checks.fail(
            fn, "xs", "must have a time axis of length >= 1", _checks.describe(xs)
        )
    for leaf in jax.tree.leaves(carry):
        _checks.float_array(fn, "carry", leaf)
    return xs


def state_gradients(
    step_fn: Callable[[Any, jax.Array], tuple[Any, jax.Array]],
    carry: Any,
    xs: ArrayLike,
    loss_fn: Callable[[jax.Array], jax.Array],
) -> StateGradients:
    """dL/dh_t at every step t of one sequence, in one backward pass.

    The states h_1..h_T are fed to `loss_fn`, so the loss may read the last
    one only (a loss at the end of the sequence: `lambda hs: f(hs[-1])`) or
    all of them. The hidden state is read from the carry (the carry itself,
    or its first field for the LSTM), which is the output of every jaxrnn
    cell.

    Args:
        step_fn: a scan body `(carry, x) -> (carry, y)`, such as
            `functools.partial(jaxrnn.lstm_step, params)`.
        carry: the initial state h_0.
        xs: inputs [T, D] (one sequence; use `jax.vmap` for a batch).
        loss_fn: `loss_fn(hs) -> scalar`, with hs [T, H] the hidden states.

    Returns:
        StateGradients(loss, grads, norms); norms[t] = ||dL/ds_t||, where
        s_t is the whole state after xs[t].

    Examples:
        >>> import functools, jax, jax.numpy as jnp
        >>> p = init_rnn(jax.random.key(0), 2, 4)
        >>> xs = jnp.ones((5, 2))
        >>> out = state_gradients(functools.partial(rnn_step, p), jnp.zeros(4),
        ...                       xs, lambda hs: jnp.sum(hs[-1]))
        >>> out.norms.shape
        (5,)
    """
    fn = "state_gradients"
    xs = _check_step(fn, step_fn, carry, xs)
    if not callable(loss_fn):
        _checks.fail(fn, "loss_fn", "must be callable", repr(loss_fn), kind=TypeError)
    zeros = jax.tree.map(lambda s: jnp.zeros((xs.shape[0], *s.shape), s.dtype), carry)

    def loss_of(eps):
        def body(state, inputs):
            x, e = inputs
            new, y = step_fn(state, x)
            new = jax.tree.map(jnp.add, new, e)
            h = hidden_of(new)
            if jnp.shape(y) != h.shape:
                _checks.fail(
                    fn,
                    "step_fn",
                    "must output its hidden state (the carry, or its first field)",
                    f"an output of shape {jnp.shape(y)} beside h of shape {h.shape}",
                )
            return new, h

        _, hs = jax.lax.scan(body, carry, (xs, eps))
        loss = jnp.asarray(loss_fn(hs))
        if loss.shape != ():
            _checks.fail(fn, "loss_fn", "must return a scalar", _checks.describe(loss))
        return loss

    loss, grads = jax.value_and_grad(loss_of)(zeros)
    norms = jax.vmap(global_norm)(grads)
    return StateGradients(loss, grads, norms)


class ClipTrace(NamedTuple):
    """What `clip_trace` returns, one entry per training step.

    Attributes:
        params: the parameters after the last step.
        loss: [S], the loss at each step, before its update.
        norm_before: [S], the global gradient norm.
        norm_after: [S], the global norm after clip_by_global_norm (equal to
            norm_before where there is no clipping).
        clipped: [S] bool, where the norm reached max_norm, so that the
            gradient was rescaled.
    """

    params: Any
    loss: jax.Array
    norm_before: jax.Array
    norm_after: jax.Array
    clipped: jax.Array


def clip_trace(
    loss_fn: Callable[..., jax.Array],
    params: Any,
    batches: Any,
    optimizer: optax.GradientTransformation,
    max_norm: float | None = None,
) -> ClipTrace:
    """Train with optional global-norm clipping, recording the norms per step.

    Each step is

        g = grad(loss_fn)(params, batch)
        g_clipped = optax.clip_by_global_norm(max_norm)(g)   # g * min(1, c/||g||)
        params = optimizer(params, g_clipped)

    all inside one `lax.scan`, so it compiles once. A step whose gradient is
    not finite updates the params with it as it is: the trace shows a
    divergence rather than hiding it.

    Args:
        loss_fn: `loss_fn(params, batch) -> scalar`.
        params: the initial parameters (a pytree).
        batches: a pytree whose leaves have a leading axis of S steps; step k
            reads `jax.tree.map(lambda b: b[k], batches)`.
        optimizer: an optax transformation applied after the clipping, such
            as `optax.sgd(0.1)`.
        max_norm: the clipping threshold c, or None for no clipping.

    Returns:
        ClipTrace(params, loss, norm_before, norm_after, clipped).

    Examples:
        >>> import jax.numpy as jnp, optax
        >>> trace = clip_trace(lambda p, b: jnp.sum((p - b) ** 2), jnp.zeros(2),
        ...                    jnp.full((3, 2), 10.0), optax.sgd(0.1), max_norm=1.0)
        >>> [round(float(n), 2) for n in trace.norm_after]
        [1.0, 1.0, 1.0]
    """
    fn = "clip_trace"
    if not callable(loss_fn):
        _checks.fail(fn, "loss_fn", "must be callable", repr(loss_fn), kind=TypeError)
    _checks.instance(
        fn,
        "optimizer",
        optimizer,
        optax.GradientTransformation,
        "an optax.GradientTransformation",
        "For example optax.sgd(0.1).",
    )
    if max_norm is not None:
        max_norm = _checks.positive_float(fn, "max_norm", max_norm)
    leaves = jax.tree.leaves(batches)
    if not leaves or any(jnp.ndim(b) < 1 for b in leaves):
        _checks.fail(
            fn, "batches", "must be arrays with a leading steps axis", repr(batches)
        )
    steps = {jnp.shape(b)[0] for b in leaves}
    if len(steps) != 1:
        _checks.fail(
            fn,
            "batches",
            "must share one leading steps axis",
            f"lengths {sorted(steps)}",
        )
    clip = optax.clip_by_global_norm(max_norm) if max_norm else optax.identity()
    grad_fn = jax.value_and_grad(loss_fn)

    def body(state, batch):
        params, opt_state = state
        loss, grads = grad_fn(params, batch)
        clipped, _ = clip.update(grads, clip.init(params))
        updates, opt_state = optimizer.update(clipped, opt_state, params)
        before, after = global_norm(grads), global_norm(clipped)
        hit = before >= max_norm if max_norm else jnp.zeros((), bool)
        stats = (loss, before, after, hit)
        return (optax.apply_updates(params, updates), opt_state), stats

    carry = (params, optimizer.init(params))
    (params, _), (loss, before, after, clipped) = jax.lax.scan(body, carry, batches)
    return ClipTrace(params, loss, before, after, clipped)
