"""Arithmetic the steps share: the matmul policy and layer normalisation."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxrnn import _checks


def matmul(fn: str, matmul_dtype: Any):
    """The matmul of a step: `w @ v`, or, under the mixed-precision policy, the
    inputs cast to `matmul_dtype` (bfloat16, say) with the product accumulated
    and returned in the params' dtype. Every step's `matmul_dtype` is this
    policy: params, carries and the gate arithmetic stay in the params'
    dtype, and only the matmuls' inputs are rounded."""
    if matmul_dtype is None:
        return jnp.matmul
    dtype = _checks.float_dtype(fn, matmul_dtype)

    def dot(w: jax.Array, v: jax.Array) -> jax.Array:
        return jnp.matmul(
            w.astype(dtype), v.astype(dtype), preferred_element_type=w.dtype
        )

    return dot


def layer_norm(z: jax.Array, groups: int, eps: float) -> jax.Array:
    """Normalise each of `groups` equal blocks of z [G*H] to mean 0, variance 1.

    The statistics are computed in float32 (float64 for float64 inputs), so
    half-precision cells do not lose the variance to rounding.
    """
    blocks = z.reshape(groups, -1).astype(_checks.work_dtype(z.dtype))
    mean = blocks.mean(axis=-1, keepdims=True)
    variance = jnp.square(blocks - mean).mean(axis=-1, keepdims=True)
    normalised = (blocks - mean) * jax.lax.rsqrt(variance + eps)
    return normalised.reshape(z.shape).astype(z.dtype)
