"""Backpropagation through time by hand, and truncated BPTT.

`rnn_bptt` writes out the backward recursion for the Elman RNN with a linear
readout, as the lecture derives it. It is the test oracle for `jax.grad`
through `lax.scan`, and the thing to read when learning BPTT.

`make_tbptt_step` trains on a long sequence in windows of K steps, passing the
carry from one window to the next through `jax.lax.stop_gradient`, so no
gradient flows further back than K steps.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from jaxrnn import _checks, _unroll
from jaxrnn.cells import _activations, _validate
from jaxrnn.cells._activations import Activation
from jaxrnn.cells._elman import ReadoutParams, RNNParams
from jaxrnn.train._step import global_norm


class BPTTGrads(NamedTuple):
    """Gradients of the loss from `rnn_bptt`.

    Attributes:
        rnn: RNNParams of dL/dw_ih [H, D], dL/dw_hh [H, H], dL/db [H].
        readout: ReadoutParams of dL/dw_ya [O, H], dL/db_y [O].
        h0: dL/da_0 [H].
        xs: dL/dx_t for every step [T, D].
    """

    rnn: RNNParams
    readout: ReadoutParams
    h0: jax.Array
    xs: jax.Array


def rnn_bptt(
    params: RNNParams,
    readout_params: ReadoutParams,
    h0: ArrayLike,
    xs: ArrayLike,
    targets: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    activation: Activation = "tanh",
    loss: str = "mse",
) -> tuple[jax.Array, BPTTGrads]:
    """Loss and gradients of an Elman RNN by hand-written BPTT.

    Forward, for t = 1..T (the lecture's equations, with h for a):
        z_t = w_ih @ x_t + w_hh @ h_{t-1} + b
        h_t = g1(z_t)
        y_t = w_ya @ h_t + b_y
    The loss is `mse_loss(y, targets, mask)` (loss="mse") or
    `cross_entropy_loss(y, targets, mask)` with y as logits
    (loss="cross_entropy"): a mean over the N steps where mask is True.

    Backward, for t = T..1, starting from dz_{T+1} = 0:
        dy_t  = dL/dy_t = 2/(N*O) m_t (y_t - target_t)           (mse)
                        = m_t/N (softmax(y_t) - onehot(target_t)) (cross_entropy)
        dh_t  = w_ya.T @ dy_t + w_hh.T @ dz_{t+1}   # from the output and the future
        dz_t  = dh_t * g1'(z_t)
        dw_ih += outer(dz_t, x_t);  dw_hh += outer(dz_t, h_{t-1});  db += dz_t
        dx_t  = w_ih.T @ dz_t
    and dL/dh_0 = w_hh.T @ dz_1. The readout's gradients are sums over t of
    outer(dy_t, h_t) and dy_t. The weights are shared across time, so their
    gradients are sums over time: that is all BPTT is.

    Args:
        params: RNNParams (w_ih [H, D], w_hh [H, H], b [H] or None).
        readout_params: ReadoutParams (w_ya [O, H], b_y [O]).
        h0: the initial state [H].
        xs: one sequence [T, D].
        targets: [T, O] for loss="mse"; integer labels [T] for
            loss="cross_entropy".
        mask: optional bool [T]: which steps have a target (many-to-one is a
            mask that is True at the last step only). The recursion still
            runs over every step.
        activation: g1, as in `rnn_step`.
        loss: "mse" or "cross_entropy".

    Returns:
        (loss, BPTTGrads(rnn, readout, h0, xs)).
    """
    fn = "rnn_bptt"
    loss = _checks.choice(fn, "loss", loss, ("mse", "cross_entropy"))
    input_size, hidden_size, dtype = _validate.params(fn, params, RNNParams, 1)
    g1 = _activations.resolve(fn, "activation", activation)
    g1_prime = _activations.derivative(fn, activation)
    h0 = _validate.carry_array(fn, "h0", h0, hidden_size, dtype)
    xs = _checks.float_array(fn, "xs", xs, ndim=2)
    seq_len = xs.shape[0]
    _checks.shape(fn, "xs", xs, (seq_len, input_size), "[T, D]")
    _checks.same_dtype(fn, "xs", xs, dtype, "params")
    if not isinstance(readout_params, ReadoutParams):
        _checks.fail(
            fn,
            "readout_params",
            "must be ReadoutParams",
            _checks.describe(readout_params),
            kind=TypeError,
        )
    w_ya, b_y = readout_params
    mask = _unroll.resolve_mask(fn, seq_len, mask, None)
    weight = jnp.ones(seq_len, dtype) if mask is None else mask.astype(dtype)

    # Forward pass: keep every z_t and h_t for the backward pass.
    hs, zs, ys = [h0], [], []
    for t in range(seq_len):
        z = params.w_ih @ xs[t] + params.w_hh @ hs[-1]
        if params.b is not None:
            z = z + params.b
        zs.append(z)
        hs.append(g1(z))
        ys.append(w_ya @ hs[-1] + b_y)

    # The loss and dL/dy_t for every t.
    count = jnp.maximum(jnp.sum(weight), 1)
    if loss == "mse":
        targets = _checks.float_array(fn, "targets", targets, ndim=2)
        _checks.shape(fn, "targets", targets, (seq_len, w_ya.shape[0]), "[T, O]")
        targets = _unroll.zero_masked(targets, mask)  # NaN padding: zero gradients
        errors = [ys[t] - targets[t] for t in range(seq_len)]
        total = sum(
            (weight[t] * jnp.sum(errors[t] ** 2) for t in range(seq_len)),
            jnp.zeros((), dtype),
        )
        value = total / (count * w_ya.shape[0])
        dys = [
            2 * weight[t] * errors[t] / (count * w_ya.shape[0]) for t in range(seq_len)
        ]
    else:
        targets = _checks.int_array(
            fn, "targets", targets, "must be integer labels for loss='cross_entropy'"
        )
        _checks.shape(fn, "targets", targets, (seq_len,), "[T] (integer labels)")
        targets = _unroll.zero_masked(targets, mask)
        log_probs = [jax.nn.log_softmax(y) for y in ys]
        total = sum(
            (-weight[t] * log_probs[t][targets[t]] for t in range(seq_len)),
            jnp.zeros((), dtype),
        )
        value = total / count
        dys = [
            weight[t]
            * (
                jnp.exp(log_probs[t])
                - jax.nn.one_hot(targets[t], w_ya.shape[0], dtype=dtype)
            )
            / count
            for t in range(seq_len)
        ]

    # Backward pass through time.
    d_w_ih, d_w_hh = jnp.zeros_like(params.w_ih), jnp.zeros_like(params.w_hh)
    d_b = jnp.zeros((hidden_size,), dtype)
    d_w_ya, d_b_y = jnp.zeros_like(w_ya), jnp.zeros_like(b_y)
    d_xs = [None] * seq_len
    dh_future = jnp.zeros((hidden_size,), dtype)  # w_hh.T @ dz_{t+1}
    for t in reversed(range(seq_len)):
        d_w_ya = d_w_ya + jnp.outer(dys[t], hs[t + 1])
        d_b_y = d_b_y + dys[t]
        dh = w_ya.T @ dys[t] + dh_future
        dz = dh * g1_prime(zs[t])
        d_w_ih = d_w_ih + jnp.outer(dz, xs[t])
        d_w_hh = d_w_hh + jnp.outer(dz, hs[t])
        d_b = d_b + dz
        d_xs[t] = params.w_ih.T @ dz
        dh_future = params.w_hh.T @ dz
    d_xs = jnp.stack(d_xs) if seq_len else jnp.zeros_like(xs)
    grads = BPTTGrads(
        rnn=RNNParams(d_w_ih, d_w_hh, None if params.b is None else d_b),
        readout=ReadoutParams(d_w_ya, d_b_y),
        h0=dh_future,
        xs=d_xs,
    )
    return value, grads


def make_tbptt_step(
    optimizer: optax.GradientTransformation,
    loss_fn: Callable[..., Any],
    window: int,
    *,
    time_axis: int = 1,
):
    """Truncated BPTT: one update per window of K steps, carry passed on.

        for each window w of K steps (the last may be shorter):
            (loss, carry_out), grads = value_and_grad(loss_fn)(params, carry, w)
            params = update(params, grads)
            carry = stop_gradient(carry_out)

    Gradients reach back at most K steps, so dependencies longer than K
    cannot be learned; the carry still carries information forward.

    Args:
        optimizer: an optax.GradientTransformation (see `make_optimizer`).
        loss_fn: `loss_fn(params, carry, window_batch) -> (loss, new_carry)`:
            the loss on one window, starting from `carry`, and the carry at
            the window's end.
        window: K, the number of steps per window.
        time_axis: the time axis of every array in the batch (1 for
            batch-first [B, T, ...]).

    Returns:
        `tbptt_step(params, opt_state, carry, batch) -> (params, opt_state,
        carry, metrics)`, pure and ready for `jax.jit`. metrics holds "loss"
        and "grad_norm" (before clipping), one entry per window.
    """
    fn = "make_tbptt_step"
    window = _checks.positive_int(fn, "window", window)
    if isinstance(time_axis, bool) or not isinstance(time_axis, int) or time_axis < 0:
        _checks.fail(fn, "time_axis", "must be an int >= 0", repr(time_axis))
    if not callable(loss_fn):
        _checks.fail(fn, "loss_fn", "must be callable", repr(loss_fn), kind=TypeError)
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def update(state, chunk):
        params, opt_state, carry = state
        (loss, carry), grads = grad_fn(params, carry, chunk)
        norm = global_norm(grads)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, opt_state, jax.lax.stop_gradient(carry)), (loss, norm)

    def tbptt_step(params, opt_state, carry, batch):
        leaves = jax.tree.leaves(batch)
        if not leaves:
            _checks.fail("tbptt_step", "batch", "must hold arrays", repr(batch))
        lengths = {
            leaf.shape[time_axis] if leaf.ndim > time_axis else None for leaf in leaves
        }
        if len(lengths) != 1 or None in lengths:
            _checks.fail(
                "tbptt_step",
                "batch",
                f"must have one length T on axis {time_axis} of every array",
                f"shapes {[tuple(leaf.shape) for leaf in leaves]}",
            )
        seq_len = lengths.pop()
        full, rest = divmod(seq_len, window)
        # [.., T, ..] -> [W, .., K, ..]: scan over the W full windows.
        windows = jax.tree.map(
            lambda a: jnp.moveaxis(
                jnp.moveaxis(a, time_axis, 0)[: full * window].reshape(
                    full, window, *a.shape[:time_axis], *a.shape[time_axis + 1 :]
                ),
                1,
                time_axis + 1,
            ),
            batch,
        )
        state, (losses, norms) = jax.lax.scan(
            update, (params, opt_state, carry), windows
        )
        if rest:
            tail = jax.tree.map(
                lambda a: jax.lax.slice_in_dim(
                    a, full * window, seq_len, axis=time_axis
                ),
                batch,
            )
            state, (loss, norm) = update(state, tail)
            losses = jnp.append(losses, loss)
            norms = jnp.append(norms, norm)
        params, opt_state, carry = state
        return params, opt_state, carry, {"loss": losses, "grad_norm": norms}

    return tbptt_step
