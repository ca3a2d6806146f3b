"""BPTT training: an optax chain that clips first, and a pure train step.

Backpropagation through time is `jax.value_and_grad` of a loss computed
through `jax.lax.scan`: JAX differentiates the scan by running the recursion
backwards, which is exactly BPTT (see `rnn_bptt` for the same thing by hand).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from jaxrnn import _checks
from jaxrnn.diagnostics._grads import global_norm as global_norm


def make_optimizer(
    learning_rate: float | optax.Schedule = 1e-3,
    *,
    max_norm: float | None = 1.0,
    clip_value: float | None = None,
    optimizer: Callable[[float], optax.GradientTransformation] = optax.adam,
    skip_nonfinite: bool = True,
) -> optax.GradientTransformation:
    """An optax chain that clips the gradient, then applies an optimizer.

        chain(clip_by_global_norm(max_norm), clip(clip_value), optimizer(lr))

    By default (skip_nonfinite=True) the chain is wrapped in
    `optax.apply_if_finite`: a step whose gradient holds a NaN or an infinity
    changes neither the params nor the optimizer's state, the train step's
    `metrics["finite"]` is False for it, and `skipped_steps(opt_state)`
    counts such steps. One bad batch then costs one step, not the model.

    Clipping by global norm (Pascanu, Mikolov & Bengio 2013) rescales the
    whole gradient g to g * max_norm / ||g|| when ||g|| > max_norm, keeping its
    direction; clipping by value clamps each entry to [-clip_value,
    clip_value] and can change the direction.

    Args:
        learning_rate: the optimizer's step size (> 0), or an optax schedule
            (a function of the step count, such as
            `optax.warmup_cosine_decay_schedule(...)`).
        max_norm: the global-norm threshold, or None for no norm clipping.
            Default 1.0.
        clip_value: the per-entry threshold, or None (the default) for none.
        optimizer: an optax optimizer factory taking the learning rate, such
            as optax.adam (the default) or optax.sgd.
        skip_nonfinite: skip updates whose gradient is not finite (the
            default). False applies every update, so one NaN in a valid step
            writes NaN into every parameter it reaches, for good.

    Returns:
        An optax.GradientTransformation.

    Examples:
        >>> import jax.numpy as jnp
        >>> opt = make_optimizer(0.1, max_norm=1.0, optimizer=optax.sgd)
        >>> updates, _ = opt.update({"w": jnp.array([30.0, 40.0])},
        ...                         opt.init({"w": jnp.zeros(2)}))
        >>> [round(float(u), 4) for u in updates["w"]]
        [-0.06, -0.08]
    """
    fn = "make_optimizer"
    if not callable(learning_rate):
        learning_rate = _checks.positive_float(fn, "learning_rate", learning_rate)
    chain = []
    if max_norm is not None:
        chain.append(
            optax.clip_by_global_norm(_checks.positive_float(fn, "max_norm", max_norm))
        )
    if clip_value is not None:
        chain.append(optax.clip(_checks.positive_float(fn, "clip_value", clip_value)))
    if not callable(optimizer):
        _checks.fail(
            fn,
            "optimizer",
            "must be an optax optimizer factory such as optax.adam",
            repr(optimizer),
            kind=TypeError,
        )
    chain.append(optimizer(learning_rate))
    if skip_nonfinite:
        # optax applies the update anyway after max_consecutive_errors bad
        # steps; a bound no run reaches keeps NaNs out of the params for good.
        return optax.apply_if_finite(optax.chain(*chain), 2**31 - 1)
    return optax.chain(*chain)


def skipped_steps(opt_state: Any) -> jax.Array:
    """How many updates an optimizer from make_optimizer (which skips them by
    default) has skipped because their gradient was not finite."""
    if not hasattr(opt_state, "total_notfinite"):
        _checks.fail(
            "skipped_steps",
            "opt_state",
            "must come from make_optimizer with skip_nonfinite=True (the default)",
            f"a {type(opt_state).__name__}",
            kind=TypeError,
        )
    return opt_state.total_notfinite


def make_train_step(
    optimizer: optax.GradientTransformation,
    loss_fn: Callable[..., Any],
    *,
    has_aux: bool = False,
):
    """A pure training step: loss and BPTT gradients, then one optimizer update.

        loss, grads = value_and_grad(loss_fn)(params, *args)    # BPTT
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = apply_updates(params, updates)

    Args:
        optimizer: an optax.GradientTransformation, for example from
            `make_optimizer` (which clips first).
        loss_fn: `loss_fn(params, *args) -> loss`, or `-> (loss, aux)` with
            has_aux=True, where aux is a dict of extra scalar metrics.
        has_aux: whether loss_fn returns (loss, aux).

    Returns:
        `train_step(params, opt_state, *args) -> (params, opt_state, metrics)`,
        pure and ready for `jax.jit`. metrics holds "loss"; "grad_norm", the
        global norm of the gradient before any clipping; "finite", whether
        the loss and every gradient entry are finite; plus aux.

    Examples:
        >>> import jax.numpy as jnp
        >>> opt = make_optimizer(0.1, optimizer=optax.sgd)
        >>> step = make_train_step(opt, lambda p, x: ((p - x) ** 2).sum())
        >>> p, state, m = step(jnp.zeros(2), opt.init(jnp.zeros(2)), jnp.ones(2))
        >>> round(float(m["loss"]), 4), round(float(m["grad_norm"]), 4)
        (2.0, 2.8284)
    """
    fn = "make_train_step"
    _checks.instance(
        fn,
        "optimizer",
        optimizer,
        optax.GradientTransformation,
        "an optax.GradientTransformation",
        "Build one with make_optimizer(...).",
    )
    if not callable(loss_fn):
        _checks.fail(fn, "loss_fn", "must be callable", repr(loss_fn), kind=TypeError)
    grad_fn = jax.value_and_grad(loss_fn, has_aux=has_aux)

    def train_step(params, opt_state, *args):
        value, grads = grad_fn(params, *args)
        loss, aux = value if has_aux else (value, {})
        finite = jnp.isfinite(loss)
        for g in jax.tree.leaves(grads):
            finite = finite & jnp.all(jnp.isfinite(g))
        metrics = {"loss": loss, "grad_norm": global_norm(grads), "finite": finite}
        metrics.update(aux)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, metrics

    return train_step
