"""Masked losses: mean squared error and softmax cross-entropy.

Both average over the positions where the mask is True, so padding and steps
without a target cost nothing, and both return 0 (not NaN) when no position
is valid. They compute in at least float32, so bfloat16 outputs do not lose
the loss to rounding.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from jaxrnn import _checks, _unroll


def _loss_mask(fn: str, mask: Any, positions: tuple[int, ...]) -> jax.Array | None:
    """A bool mask whose shape is a prefix of `positions`."""
    if mask is None:
        return None
    mask = _checks.bool_mask(fn, mask)
    if tuple(mask.shape) != tuple(positions[: mask.ndim]):
        _checks.fail(
            fn,
            "mask",
            f"must have a leading part of shape {positions}, such as [B, T]",
            f"shape {tuple(mask.shape)}",
        )
    return mask


def _masked_mean(values: jax.Array, mask: jax.Array | None) -> jax.Array:
    """Mean of `values` over the entries selected by a prefix-shaped mask."""
    if mask is None:
        return jnp.mean(values) if values.size else jnp.zeros((), values.dtype)
    mask = mask.reshape(mask.shape + (1,) * (values.ndim - mask.ndim))
    mask = jnp.broadcast_to(mask, values.shape)
    total = jnp.sum(jnp.where(mask, values, jnp.zeros_like(values)))
    count = jnp.sum(mask).astype(values.dtype)
    return total / jnp.maximum(count, 1)


def mse_loss(
    predictions: ArrayLike, targets: ArrayLike, mask: ArrayLike | None = None
) -> jax.Array:
    """Mean squared error over the valid entries.

        loss = sum_{valid} (predictions - targets)^2 / (number of valid entries)

    Args:
        predictions: [..., O] (for example [B, T, O]).
        targets: the same shape and dtype as predictions.
        mask: optional bool whose shape is a leading part of predictions'
            shape (for example [B, T]); it is broadcast over the rest.

    Returns:
        A scalar in float32 (float64 for float64 inputs).

    Examples:
        >>> import jax.numpy as jnp
        >>> float(mse_loss(jnp.array([[1.0], [3.0]]), jnp.zeros((2, 1)),
        ...                mask=jnp.array([True, False])))
        1.0
    """
    fn = "mse_loss"
    predictions = _checks.float_array(fn, "predictions", predictions)
    targets = _checks.float_array(fn, "targets", targets)
    _checks.shape(fn, "targets", targets, predictions.shape, "the shape of predictions")
    _checks.same_dtype(fn, "targets", targets, predictions.dtype, "predictions")
    mask = _loss_mask(fn, mask, predictions.shape)
    work = _checks.work_dtype(predictions.dtype)
    # The mean drops masked entries with a `where`, but a loss computed at a
    # NaN still has a NaN gradient, and 0 * NaN is NaN: zero them first.
    predictions, targets = _unroll.zero_masked((predictions, targets), mask)
    error = predictions.astype(work) - targets.astype(work)
    return _masked_mean(error**2, mask)


def cross_entropy_loss(
    logits: ArrayLike, labels: ArrayLike, mask: ArrayLike | None = None
) -> jax.Array:
    """Softmax cross-entropy with integer labels, averaged over valid positions.

        loss = mean_{valid} ( -log softmax(logits)[label] )

    Args:
        logits: [..., V] unnormalised scores (for example [B, T, V]).
        labels: integer class indices [...], each in [0, V).
        mask: optional bool with the shape of labels, or a leading part of it.

    Returns:
        A scalar in float32 (float64 for float64 logits), in nats.

    Examples:
        >>> import jax.numpy as jnp
        >>> round(float(cross_entropy_loss(jnp.zeros((3, 4)), jnp.array([0, 1, 2]))), 4)
        1.3863
    """
    fn = "cross_entropy_loss"
    logits = _checks.float_array(fn, "logits", logits)
    labels = _checks.int_array(
        fn, "labels", labels, "must have an integer dtype (class indices)"
    )
    if logits.ndim == 0 or tuple(labels.shape) != tuple(logits.shape[:-1]):
        _checks.fail(
            fn,
            "labels",
            "must have the shape of logits without its last "
            f"(class) axis, {tuple(logits.shape[:-1])}",
            f"shape {tuple(labels.shape)}",
        )
    mask = _loss_mask(fn, mask, labels.shape)
    logits = logits.astype(_checks.work_dtype(logits.dtype))
    logits, labels = _unroll.zero_masked((logits, labels), mask)  # as in mse_loss
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return _masked_mean(losses, mask)
