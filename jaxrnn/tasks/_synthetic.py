"""Synthetic long-dependency tasks, generated from a key (no downloads)."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

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
    key: jax.Array, batch_size: int, seq_len: int, *, dtype: DTypeLike = jnp.float32
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

    Examples:
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


# The copy task's symbols: 0..7 are data, 8 is the blank, 9 the delimiter.
COPY_SYMBOLS, COPY_BLANK, COPY_DELIMITER, COPY_LENGTH = 8, 8, 9, 10


def copy_baseline_loss(delay: int) -> float:
    """The memoryless strategy's cross-entropy on the copy task, in nats.

    Predicting the blank for the first T + 10 steps and a uniform guess over
    the 8 symbols for the last 10 costs 10 log(8) / (T + 20) per step
    (Arjovsky, Shah & Bengio 2016).
    """
    delay = _checks.positive_int("copy_baseline_loss", "delay", delay)
    return COPY_LENGTH * math.log(COPY_SYMBOLS) / (delay + 2 * COPY_LENGTH)


def make_copy_batch(
    key: jax.Array, batch_size: int, delay: int, *, dtype: DTypeLike = jnp.float32
) -> Batch:
    """The copy-memory task (Arjovsky, Shah & Bengio 2016).

    The input is 10 symbols drawn from 8, then T - 1 blanks, a delimiter and 10
    more blanks: T + 20 steps in all. The target is blank for the first T + 10
    steps and then the 10 symbols, in order. The loss is the cross-entropy
    averaged over every step, so a model that remembers nothing scores
    `copy_baseline_loss(T)` = 10 log(8) / (T + 20).

    Args:
        key: a PRNG key; the same key gives the same batch.
        batch_size: B.
        delay: T >= 1, the steps between the last symbol and the delimiter,
            plus one.
        dtype: a floating dtype for the one-hot inputs.

    Returns:
        Batch(xs [B, T + 20, 10] one-hot, ys int32 [B, T + 20] with values in
        [0, 10), mask [B, T + 20] all True).

    Examples:
        >>> import jax
        >>> b = make_copy_batch(jax.random.key(0), 2, 5)
        >>> recalled = b.ys[:, -10:] == b.xs[:, :10].argmax(-1)
        >>> b.xs.shape, b.ys.shape, bool(recalled.all())
        ((2, 25, 10), (2, 25), True)
    """
    fn = "make_copy_batch"
    batch_size = _checks.positive_int(fn, "batch_size", batch_size)
    delay = _checks.positive_int(fn, "delay", delay)
    dtype = _checks.float_dtype(fn, dtype)
    symbols = jax.random.randint(
        key, (batch_size, COPY_LENGTH), 0, COPY_SYMBOLS, jnp.int32
    )
    blank = jnp.full((batch_size, delay - 1), COPY_BLANK, jnp.int32)
    tail = jnp.full((batch_size, COPY_LENGTH), COPY_BLANK, jnp.int32)
    marker = jnp.full((batch_size, 1), COPY_DELIMITER, jnp.int32)
    inputs = jnp.concatenate([symbols, blank, marker, tail], axis=1)
    lead = jnp.full((batch_size, delay + COPY_LENGTH), COPY_BLANK, jnp.int32)
    ys = jnp.concatenate([lead, symbols], axis=1)
    xs = jax.nn.one_hot(inputs, COPY_SYMBOLS + 2, dtype=dtype)
    return Batch(xs, ys, jnp.ones(ys.shape, bool))


def make_sine_series(
    key: jax.Array,
    length: int,
    *,
    periods: tuple[float, ...] = (16.0, 50.0),
    amplitudes: tuple[float, ...] = (1.0, 0.5),
    noise: float = 0.1,
) -> jax.Array:
    """A noisy mixed-frequency series: sum_k a_k sin(2 pi t / p_k + phase_k) + noise.

    The phases are uniform and the noise is Gaussian with standard deviation
    `noise`, both drawn from `key`. The default mixes a period of 16 steps
    with one of 50, so a forecaster must see about 50 steps back to do well.

    Args:
        key: a PRNG key.
        length: the number of steps.
        periods: the period of each component, in steps (> 0).
        amplitudes: one amplitude per period.
        noise: the noise's standard deviation (>= 0).

    Returns:
        float32 [length].
    """
    fn = "make_sine_series"
    length = _checks.positive_int(fn, "length", length)
    if len(periods) != len(amplitudes) or not periods:
        _checks.fail(
            fn,
            "amplitudes",
            f"must give one amplitude per period ({len(periods)})",
            f"{len(amplitudes)}",
        )
    if any(not p > 0 for p in periods):
        _checks.fail(fn, "periods", "must all be > 0", repr(periods))
    if not noise >= 0:
        _checks.fail(fn, "noise", "must be >= 0", repr(noise))
    key_phase, key_noise = jax.random.split(key)
    phases = jax.random.uniform(key_phase, (len(periods),), maxval=2 * math.pi)
    t = jnp.arange(length, dtype=jnp.float32)[:, None]
    angles = 2 * math.pi * t / jnp.asarray(periods, jnp.float32)[None] + phases[None]
    waves = jnp.sin(angles)
    series = waves @ jnp.asarray(amplitudes, jnp.float32)
    return series + noise * jax.random.normal(key_noise, (length,))
