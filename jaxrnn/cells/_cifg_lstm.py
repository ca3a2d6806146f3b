"""The LSTM with a coupled input and forget gate (CIFG; Greff et al. 2017).

    f_t  = sigmoid(W_f [h_{t-1}, x_t] + b_f)
    C~_t = tanh(W_C [h_{t-1}, x_t] + b_C)
    C_t  = f_t * C_{t-1} + (1 - f_t) * C~_t        the input gate is 1 - f_t
    o_t  = sigmoid(W_o [h_{t-1}, x_t] + b_o)
    h_t  = o_t * tanh(C_t)

Three gate blocks instead of four, in the order f, g, o: a quarter fewer
weights, and in Greff et al.'s study no loss of accuracy.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from jaxrnn.cells import _initializers, _ops, _validate
from jaxrnn.cells._lstm import LSTMCarry, check_carry


class CIFGLSTMParams(NamedTuple):
    """Parameters of a coupled input-forget gate LSTM (gate blocks f, g, o).

    Attributes:
        w_ih: input weights [3H, D].
        w_hh: recurrent weights [3H, H].
        b: bias [3H], or None.
    """

    w_ih: jax.Array
    w_hh: jax.Array
    b: jax.Array | None


def init_cifg_lstm(
    key: jax.Array,
    input_size: int,
    hidden_size: int,
    *,
    init: str = "default",
    forget_bias: float | None = None,
    bias: bool = True,
    dtype: DTypeLike = jnp.float32,
) -> CIFGLSTMParams:
    """Initialise a CIFG LSTM.

    Args and Returns as for `init_lstm`, with three gate blocks: b [3H], and
    forget_bias added to the f block (block 0), 1.0 by default with
    init="default".

    Examples:
        >>> import jax
        >>> p = init_cifg_lstm(jax.random.key(0), 3, 5)
        >>> p.w_hh.shape, p.b[:5].tolist()
        ((15, 5), [1.0, 1.0, 1.0, 1.0, 1.0])
    """
    w_ih, w_hh, b = _initializers.gated(
        "init_cifg_lstm",
        key,
        3,
        input_size,
        hidden_size,
        init,
        bias,
        dtype,
        forget=(0, forget_bias),
    )
    return CIFGLSTMParams(w_ih, w_hh, b)


def cifg_lstm_step(
    params: CIFGLSTMParams,
    carry: LSTMCarry,
    x: ArrayLike,
    *,
    recurrent_mask: ArrayLike | None = None,
    matmul_dtype: Any = None,
) -> tuple[LSTMCarry, jax.Array]:
    """Advance a CIFG LSTM by one time step.

    Equations (gate blocks f, g, o along axis 0 of the weights):
        f, g, o = split(w_ih @ x + w_hh @ h + b, 3)
        c_new = sigmoid(f) * c + (1 - sigmoid(f)) * tanh(g)
        h_new = sigmoid(o) * tanh(c_new)

    Args, Returns and Raises as for `lstm_step`, with params from
    `init_cifg_lstm`.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrnn import init_lstm_carry
        >>> p = init_cifg_lstm(jax.random.key(0), 3, 5)
        >>> carry, y = cifg_lstm_step(p, init_lstm_carry(5), jnp.ones(3))
        >>> y.shape
        (5,)

    References:
        Greff et al. 2017, "LSTM: A Search Space Odyssey".
    """
    fn = "cifg_lstm_step"
    dot = _ops.matmul(fn, matmul_dtype)
    input_size, hidden_size, dtype = _validate.params(fn, params, CIFGLSTMParams, 3)
    h, c = check_carry(fn, carry, hidden_size, hidden_size, dtype)
    x = _validate.step_input(fn, x, input_size, dtype)
    h_rec = _validate.recurrent_input(fn, h, recurrent_mask)
    gates = dot(params.w_ih, x) + dot(params.w_hh, h_rec)
    if params.b is not None:
        gates = gates + params.b
    f, g, o = jnp.split(gates, 3)
    forget = jax.nn.sigmoid(f)
    c_new = forget * c + (1 - forget) * jnp.tanh(g)
    h_new = jax.nn.sigmoid(o) * jnp.tanh(c_new)
    return LSTMCarry(h_new, c_new), h_new
