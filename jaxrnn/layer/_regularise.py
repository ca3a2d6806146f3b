"""The layer's regularisers: dropout, recurrent dropout and zoneout.

    dropout            between layers: each output unit is zeroed with
                       probability `rate` and the rest scaled by
                       1 / (1 - rate) (inverted dropout, PyTorch's).
    recurrent dropout  on h_{t-1} where it enters w_hh: one such mask per
                       sequence, layer and direction, the same at every
                       step (Gal & Ghahramani 2016).
    zoneout            each unit of the carry keeps its previous value with
                       probability `rate` at every step in training, and is
                       rate * old + (1 - rate) * new in evaluation
                       (Krueger et al. 2016).

Every mask is drawn from the layer's key: recurrent dropout's from
fold_in(fold_in(key, 1), index) and zoneout's from fold_in(fold_in(key, 2),
index), where index = layer * num_directions + direction.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn.cells._lstm import LSTMCarry
from jaxrnn.cells._registry import CellSpec


def rate(fn: str, arg: str, value: Any) -> float:
    """A rate in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _checks.fail(fn, arg, "must be a number in [0, 1)", repr(value), kind=TypeError)
    if not 0 <= value < 1:
        _checks.fail(fn, arg, "must be in [0, 1)", repr(value))
    return float(value)


def zoneout_rates(fn: str, zoneout: Any, spec: CellSpec) -> Any:
    """Zoneout rates shaped like the carry: LSTMCarry(rate_h, rate_c) or a rate."""
    if isinstance(zoneout, (tuple, list)):
        if not spec.lstm_carry or len(zoneout) != 2:
            _checks.fail(
                fn,
                "zoneout",
                "must be a rate, or a pair (rate_h, rate_c) for an LSTM-like cell",
                repr(zoneout),
            )
        return LSTMCarry(*(rate(fn, "zoneout", z) for z in zoneout))
    value = rate(fn, "zoneout", zoneout)
    return LSTMCarry(value, value) if spec.lstm_carry else value


def bernoulli_scale(key: jax.Array, rate: float, shape, dtype) -> jax.Array:
    """Inverted-dropout multipliers: 0 with probability rate, else 1 / (1 - rate)."""
    keep = jax.random.bernoulli(key, 1 - rate, shape)
    scale = jnp.asarray(1 / (1 - rate), dtype)
    return jnp.where(keep, scale, jnp.zeros((), dtype))


def dropout(key: jax.Array, rate: float, x: jax.Array) -> jax.Array:
    """x with inverted dropout at `rate`."""
    return x * bernoulli_scale(key, rate, x.shape, x.dtype)


def recurrent_mask(key, index: int, rate: float, shape, dtype) -> jax.Array:
    """The recurrent-dropout multipliers [B, R] of one layer and direction."""
    subkey = jax.random.fold_in(jax.random.fold_in(key, 1), index)
    return bernoulli_scale(subkey, rate, shape, dtype)


def zone_masks(key, index: int, rates: Any, carry: Any, seq_len: int) -> Any:
    """Where each unit keeps its old value: bool [B, T, .] per carry leaf."""
    subkey = jax.random.fold_in(jax.random.fold_in(key, 2), index)
    leaves, treedef = jax.tree.flatten(carry)
    keys = jax.random.split(subkey, len(leaves))
    return jax.tree.unflatten(
        treedef,
        [
            jax.random.bernoulli(k, z, (a.shape[0], seq_len, a.shape[-1]))
            for k, z, a in zip(keys, jax.tree.leaves(rates), leaves)
        ],
    )


def hidden(carry: Any) -> jax.Array:
    """h, the output part of a carry."""
    return carry.h if isinstance(carry, LSTMCarry) else carry


def zoned(step_fn, rates, training, carry, inputs):
    """A step with zoneout: units keep their old value where the mask says so."""
    x, keep_old = inputs
    new_carry, _ = step_fn(carry, x)
    if training:
        new_carry = jax.tree.map(
            lambda new, old, k: jnp.where(k, old, new), new_carry, carry, keep_old
        )
    else:
        new_carry = jax.tree.map(
            lambda new, old, z: z * old + (1 - z) * new, new_carry, carry, rates
        )
    return new_carry, hidden(new_carry)
