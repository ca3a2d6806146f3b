"""Synthetic long-dependency tasks, generated from a key (no downloads)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxrnn import _checks

# The MSE of always predicting the mean, 1: Var(U1 + U2) = 2/12 for U ~ U[0, 1].
ADDING_BASELINE_MSE = 1.0 / 6.0


class Batch(NamedTuple):
    """One batch of a sequence task, batch-first.

    Attributes:
        xs: inputs [B, T, D].
        ys: targets [B, T, O] (floats) or [B, T] (integer labels).
        mask: bool [B, T], True where a step has a target (the loss mask).
    """

    xs: jax.Array
    ys: jax.Array
    mask: jax.Array


def make_adding_batch(
    key: jax.Array, batch_size: int, seq_len: int, *, dtype=jnp.float32
) -> Batch:
    """The adding problem (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016).

    Each step reads two numbers: a value drawn from U[0, 1] and a marker. Two
    markers are 1, one at a uniform step in the first half and one in the
    second half; the rest are 0. The target, due at the last step only, is the
    sum of the two marked values. Always answering 1 scores an MSE of
    1/6 ~ 0.167 (`ADDING_BASELINE_MSE`): a model must remember one value for
    up to T steps to do better.

    Args:
        key: a PRNG key; the same key gives the same batch.
        batch_size: B.
        seq_len: T >= 2.
        dtype: a floating dtype for xs and ys.

    Returns:
        Batch(xs [B, T, 2], ys [B, T, 1] (zero except at the last step),
        mask [B, T] (True at the last step only)).

    Example:
        >>> import jax
        >>> b = make_adding_batch(jax.random.key(0), 4, 10)
        >>> b.xs.shape, b.ys.shape, b.mask[:, -1].all().item(), int(b.xs[..., 1].sum())
        ((4, 10, 2), (4, 10, 1), True, 8)
    """
    fn = "make_adding_batch"
    batch_size = _checks.positive_int(fn, "batch_size", batch_size)
    seq_len = _checks.positive_int(fn, "seq_len", seq_len)
    if seq_len < 2:
        _checks.fail(fn, "seq_len", "must be >= 2 (two marked steps)", repr(seq_len))
    dtype = _checks.float_dtype(fn, dtype)
    key_values, key_first, key_second = jax.random.split(key, 3)
    half = seq_len // 2
    values = jax.random.uniform(key_values, (batch_size, seq_len))
    first = jax.random.randint(key_first, (batch_size,), 0, half)
    second = jax.random.randint(key_second, (batch_size,), half, seq_len)
    steps = jnp.broadcast_to(jnp.arange(seq_len), (batch_size, seq_len))
    markers = (steps == first[:, None]) | (steps == second[:, None])
    total = jnp.sum(jnp.where(markers, values, 0.0), axis=1)
    xs = jnp.stack([values, markers.astype(values.dtype)], axis=-1).astype(dtype)
    mask = steps == seq_len - 1
    ys = jnp.where(mask, total[:, None], 0.0)[..., None].astype(dtype)
    return Batch(xs, ys, mask)
