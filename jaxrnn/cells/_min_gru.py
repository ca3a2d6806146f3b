"""The minGRU (Feng, Tung, Ahmed, Bengio & Hajimirsadeghi 2024).

    z_t  = sigmoid(W_z x_t + b_z)                  the update gate, from x_t alone
    h~_t = g(W_h x_t + b_h)                        the candidate, from x_t alone
    h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t        min_gru_step

The GRU without its reset gate and without h_{t-1} in its gates: the
recurrence is h_t = a_t * h_{t-1} + b_t with a_t = 1 - z_t and
b_t = z_t * h~_t, so every step can be computed at once (`jaxrnn.cells._min`).
g is the identity by default (the paper's minGRU); "positive" is the paper's
g, which keeps h~ > 0 so that the recurrence runs in log space:

    log a_t = -softplus(k_t),  log b_t = -softplus(-k_t) + log g(W_h x_t + b_h)

with k_t = W_z x_t + b_z. The two activations are two models; each runs
through every form. Unlike the GRU, z_t = 1 takes the candidate and z_t = 0
keeps h (the paper's convention).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from jaxrnn.cells import _min
from jaxrnn.cells._activations import Activation

GATES = 2


class MinGRUParams(NamedTuple):
    """Parameters of a minGRU (blocks z, h~).

    Attributes:
        w_ih: input weights [2H, D]: W_z, then W_h. There are no recurrent
            weights.
        b: bias [2H] (b_z, then b_h), or None.
    """

    w_ih: jax.Array
    b: jax.Array | None


def init_min_gru(
    key: jax.Array,
    input_size: int,
    hidden_size: int,
    *,
    init: str = "default",
    bias: bool = True,
    dtype: DTypeLike = jnp.float32,
) -> MinGRUParams:
    """Initialise a minGRU.

    Args:
        key: a PRNG key.
        input_size: D.
        hidden_size: H.
        init: "default" (Glorot-uniform w_ih, zero b) or "torch" (U(-k, k),
            k = 1/sqrt(H), for w_ih and b).
        bias: False gives b=None (mingru-pytorch has none).
        dtype: a floating dtype for every parameter.

    Returns:
        MinGRUParams(w_ih [2H, D], b [2H] or None).

    Examples:
        >>> import jax
        >>> init_min_gru(jax.random.key(0), 3, 5).w_ih.shape
        (10, 3)
    """
    return MinGRUParams(
        *_min.init(
            "init_min_gru", key, GATES, input_size, hidden_size, init, bias, dtype
        )
    )


def coefficients(
    params: MinGRUParams,
    x: jax.Array,
    *,
    activation: Activation = "identity",
    log: bool = False,
    matmul_dtype: Any = None,
) -> tuple[jax.Array, jax.Array]:
    """(a, b) of h_t = a * h_{t-1} + b for inputs x [..., D], or (log a,
    log b) with log=True (activation "positive" only): each [..., H]."""
    k, h_hat = _min.project("min_gru_step", params, x, GATES, matmul_dtype)
    candidate = _min.candidate("min_gru_step", activation, h_hat, log)
    if log:
        return -jax.nn.softplus(k), -jax.nn.softplus(-k) + candidate
    z = jax.nn.sigmoid(k)
    return 1 - z, z * candidate


def min_gru_step(
    params: MinGRUParams,
    carry: jax.Array,
    x: ArrayLike,
    *,
    activation: Activation = "identity",
    recurrent_mask: ArrayLike | None = None,
    matmul_dtype: Any = None,
) -> tuple[jax.Array, jax.Array]:
    """Advance a minGRU by one time step.

    Equations (blocks z, h~ along axis 0 of the weights):
        k, n = split(w_ih @ x + b, 2)
        z = sigmoid(k)
        h_new = (1 - z) * h + z * g(n)

    Args:
        params: from `init_min_gru`.
        carry: h [H].
        x: one input [D].
        activation: g, the candidate's activation: "identity" (the default,
            the paper's minGRU) or "positive" (the paper's g, h~ > 0, for the
            log-space form); any name or callable of `rnn_step`'s g1 runs on
            the sequential and plain forms.
        recurrent_mask: optional [H] multiplying h (variational dropout).
        matmul_dtype: the mixed-precision policy of the one matmul.

    Returns:
        (h_new, h_new).

    Raises:
        TypeError, ValueError: params, carry or x of the wrong type, shape
            or dtype, naming which.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> p = init_min_gru(jax.random.key(0), 3, 5)
        >>> h, y = min_gru_step(p, jnp.zeros(5), jnp.ones(3), activation="positive")
        >>> y.shape, bool((y > 0).all())
        ((5,), True)

    References:
        Feng, Tung, Ahmed, Bengio & Hajimirsadeghi 2024, "Were RNNs All We
        Needed?", arXiv 2410.01201.
    """
    return _min.step(
        "min_gru_step",
        MinGRUParams,
        GATES,
        coefficients,
        params,
        carry,
        x,
        activation=activation,
        recurrent_mask=recurrent_mask,
        matmul_dtype=matmul_dtype,
    )
