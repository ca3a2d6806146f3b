"""The minLSTM (Feng, Tung, Ahmed, Bengio & Hajimirsadeghi 2024).

    i_t  = sigmoid(W_i x_t + b_i)                  gates from x_t alone
    f_t  = sigmoid(W_f x_t + b_f)
    h~_t = g(W_h x_t + b_h)
    f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)
    h_t  = f'_t * h_{t-1} + i'_t * h~_t            min_lstm_step

The LSTM without its output gate, its cell state and h_{t-1} in its gates,
in the paper's length-independent form: the normalised gates sum to 1, so h
stays a weighted average of candidates. It is h_t = a_t * h_{t-1} + b_t with
a_t = f'_t and b_t = i'_t * h~_t (`jaxrnn.cells._min`). g is the identity
by default; "positive" (the paper's g, h~ > 0) allows the log space, where,
with d_t = softplus(-k_f) - softplus(-k_i) = log i_t - log f_t,

    log a_t = -softplus(d_t),  log b_t = -softplus(-d_t) + log g(W_h x_t + b_h)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from jaxrnn.cells import _min
from jaxrnn.cells._activations import Activation

GATES = 3


class MinLSTMParams(NamedTuple):
    """Parameters of a minLSTM (blocks i, f, h~, in the LSTM's order).

    Attributes:
        w_ih: input weights [3H, D]: W_i, W_f, then W_h. There are no
            recurrent weights.
        b: bias [3H] (b_i, b_f, b_h), or None.
    """

    w_ih: jax.Array
    b: jax.Array | None


def init_min_lstm(
    key: jax.Array,
    input_size: int,
    hidden_size: int,
    *,
    init: str = "default",
    bias: bool = True,
    dtype: DTypeLike = jnp.float32,
) -> MinLSTMParams:
    """Initialise a minLSTM.

    Args as for `init_min_gru`, with three blocks; returns
    MinLSTMParams(w_ih [3H, D], b [3H] or None).

    Examples:
        >>> import jax
        >>> init_min_lstm(jax.random.key(0), 3, 5).w_ih.shape
        (15, 3)
    """
    return MinLSTMParams(
        *_min.init(
            "init_min_lstm", key, GATES, input_size, hidden_size, init, bias, dtype
        )
    )


def coefficients(
    params: MinLSTMParams,
    x: jax.Array,
    *,
    activation: Activation = "identity",
    log: bool = False,
    matmul_dtype: Any = None,
) -> tuple[jax.Array, jax.Array]:
    """(a, b) of h_t = a * h_{t-1} + b for inputs x [..., D], or (log a,
    log b) with log=True (activation "positive" only): each [..., H]."""
    k_i, k_f, h_hat = _min.project("min_lstm_step", params, x, GATES, matmul_dtype)
    candidate = _min.candidate("min_lstm_step", activation, h_hat, log)
    # f / (f + i) = sigmoid(-d) with d = log i - log f: no 0 / 0 where both
    # gates underflow (and i / (f + i) = sigmoid(d)).
    d = jax.nn.softplus(-k_f) - jax.nn.softplus(-k_i)
    if log:
        return -jax.nn.softplus(d), -jax.nn.softplus(-d) + candidate
    return jax.nn.sigmoid(-d), jax.nn.sigmoid(d) * candidate


def min_lstm_step(
    params: MinLSTMParams,
    carry: jax.Array,
    x: ArrayLike,
    *,
    activation: Activation = "identity",
    recurrent_mask: ArrayLike | None = None,
    matmul_dtype: Any = None,
) -> tuple[jax.Array, jax.Array]:
    """Advance a minLSTM by one time step.

    Equations (blocks i, f, h~ along axis 0 of the weights):
        k_i, k_f, n = split(w_ih @ x + b, 3)
        i, f = sigmoid(k_i), sigmoid(k_f)
        h_new = f / (f + i) * h + i / (f + i) * g(n)

    computed as sigmoid(-d) * h + sigmoid(d) * g(n) with d = log i - log f
    (= softplus(-k_f) - softplus(-k_i)), which is the same number without a
    0 / 0 where both gates underflow.

    Args, Returns and Raises as for `min_gru_step`, with params from
    `init_min_lstm`. The carry is h alone: the minLSTM has no cell state.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> p = init_min_lstm(jax.random.key(0), 3, 5)
        >>> h, y = min_lstm_step(p, jnp.zeros(5), jnp.ones(3))
        >>> y.shape
        (5,)

    References:
        Feng, Tung, Ahmed, Bengio & Hajimirsadeghi 2024, "Were RNNs All We
        Needed?", arXiv 2410.01201.
    """
    return _min.step(
        "min_lstm_step",
        MinLSTMParams,
        GATES,
        coefficients,
        params,
        carry,
        x,
        activation=activation,
        recurrent_mask=recurrent_mask,
        matmul_dtype=matmul_dtype,
    )
