"""The peephole LSTM (Gers & Schmidhuber 2000): the gates also see the cell state.

    i_t  = sigmoid(W_i [h_{t-1}, x_t] + w_ci * C_{t-1} + b_i)
    f_t  = sigmoid(W_f [h_{t-1}, x_t] + w_cf * C_{t-1} + b_f)
    C~_t = tanh(W_C [h_{t-1}, x_t] + b_C)
    C_t  = f_t * C_{t-1} + i_t * C~_t
    o_t  = sigmoid(W_o [h_{t-1}, x_t] + w_co * C_t + b_o)
    h_t  = o_t * tanh(C_t)

The peephole weights w_ci, w_cf, w_co are diagonal, so they are vectors [H]
and act elementwise. The input and forget gates look at the old cell state,
the output gate at the new one. Everything else is the LSTM's layout.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from jaxrnn.cells import _initializers, _ops, _validate
from jaxrnn.cells._lstm import LSTMCarry, check_carry


class PeepholeLSTMParams(NamedTuple):
    """Parameters of a peephole LSTM (gate blocks i, f, g, o).

    Attributes:
        w_ih: input weights [4H, D].
        w_hh: recurrent weights [4H, H].
        b: bias [4H], or None.
        w_ci: peephole from C_{t-1} to the input gate [H].
        w_cf: peephole from C_{t-1} to the forget gate [H].
        w_co: peephole from C_t to the output gate [H].
    """

    w_ih: jax.Array
    w_hh: jax.Array
    b: jax.Array | None
    w_ci: jax.Array
    w_cf: jax.Array
    w_co: jax.Array


def init_peephole_lstm(
    key: jax.Array,
    input_size: int,
    hidden_size: int,
    *,
    init: str = "default",
    forget_bias: float | None = None,
    bias: bool = True,
    dtype: DTypeLike = jnp.float32,
) -> PeepholeLSTMParams:
    """Initialise a peephole LSTM.

    w_ih, w_hh and b are drawn as by `init_lstm`. The peephole weights
    start at zero with init="default", so a fresh cell is a plain LSTM and
    the peepholes are learned from there; init="torch" draws them from
    U(-1/sqrt(H), 1/sqrt(H)) like every other weight.

    Args as for `init_lstm` (bias=False keeps the peepholes); returns
    PeepholeLSTMParams(w_ih [4H, D], w_hh [4H, H], b [4H] or None, w_ci [H],
    w_cf [H], w_co [H]).

    Examples:
        >>> import jax
        >>> p = init_peephole_lstm(jax.random.key(0), 3, 5)
        >>> p.w_hh.shape, p.w_ci.shape, float(abs(p.w_co).max())
        ((20, 5), (5,), 0.0)
    """
    fn = "init_peephole_lstm"
    key_lstm, key_peep = jax.random.split(key)
    w_ih, w_hh, b = _initializers.gated(
        fn,
        key_lstm,
        4,
        input_size,
        hidden_size,
        init,
        bias,
        dtype,
        forget=(1, forget_bias),
    )
    dtype = w_hh.dtype
    if init == "torch":
        k = 1.0 / math.sqrt(hidden_size)
        w_ci, w_cf, w_co = (
            _initializers.uniform(subkey, (hidden_size,), k, dtype)
            for subkey in jax.random.split(key_peep, 3)
        )
    else:
        w_ci = w_cf = w_co = jnp.zeros((hidden_size,), dtype)
    return PeepholeLSTMParams(w_ih, w_hh, b, w_ci, w_cf, w_co)


def peephole_lstm_step(
    params: PeepholeLSTMParams,
    carry: LSTMCarry,
    x: ArrayLike,
    *,
    recurrent_mask: ArrayLike | None = None,
    matmul_dtype: Any = None,
) -> tuple[LSTMCarry, jax.Array]:
    """Advance a peephole LSTM by one time step.

    Equations (gate blocks i, f, g, o along axis 0 of the weights):
        i, f, g, o = split(w_ih @ x + w_hh @ h + b, 4)
        c_new = sigmoid(f + w_cf * c) * c + sigmoid(i + w_ci * c) * tanh(g)
        h_new = sigmoid(o + w_co * c_new) * tanh(c_new)

    Args, Returns and Raises as for `lstm_step`, with params from
    `init_peephole_lstm`.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrnn import init_lstm_carry
        >>> p = init_peephole_lstm(jax.random.key(0), 3, 5, init="torch")
        >>> carry, y = peephole_lstm_step(p, init_lstm_carry(5), jnp.ones(3))
        >>> y.shape
        (5,)

    References:
        Gers & Schmidhuber 2000, "Recurrent nets that time and count".
    """
    fn = "peephole_lstm_step"
    dot = _ops.matmul(fn, matmul_dtype)
    input_size, hidden_size, dtype = _validate.params(
        fn,
        params,
        PeepholeLSTMParams,
        4,
        vectors={"w_ci": 1, "w_cf": 1, "w_co": 1},
    )
    h, c = check_carry(fn, carry, hidden_size, hidden_size, dtype)
    x = _validate.step_input(fn, x, input_size, dtype)
    h_rec = _validate.recurrent_input(fn, h, recurrent_mask)
    gates = dot(params.w_ih, x) + dot(params.w_hh, h_rec)
    if params.b is not None:
        gates = gates + params.b
    i, f, g, o = jnp.split(gates, 4)
    c_new = jax.nn.sigmoid(f + params.w_cf * c) * c + jax.nn.sigmoid(
        i + params.w_ci * c
    ) * jnp.tanh(g)
    h_new = jax.nn.sigmoid(o + params.w_co * c_new) * jnp.tanh(c_new)
    return LSTMCarry(h_new, c_new), h_new
