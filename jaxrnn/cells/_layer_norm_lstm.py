"""The layer-normalised LSTM (Ba, Kiros & Hinton 2016).

    gates = LN(W_x x_t) * gain_ih + LN(W_h h_{t-1}) * gain_hh + b
    i, f, g, o = split(gates, 4)
    C_t = sigmoid(f) * C_{t-1} + sigmoid(i) * tanh(g)
    h_t = sigmoid(o) * tanh(LN(C_t) * gain_c + bias_c)

LN normalises each gate block (i, f, g, o) of the input and the recurrent
pre-activations on its own, to mean 0 and variance 1 over its H units, and
the cell state before the output tanh. The paper gives each normalisation a
gain and a bias; the input and recurrent biases and the LSTM bias all add up
before the nonlinearities, so jaxrnn keeps their sum as one b [4H], exactly
as it keeps PyTorch's b_ih + b_hh. The function class is the paper's.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from jaxrnn.cells import _initializers, _lstm, _ops, _validate
from jaxrnn.cells._lstm import LSTMCarry, check_carry

LAYER_NORM_EPS = 1e-5  # added to the variance, as in torch.nn.LayerNorm


class LayerNormLSTMParams(NamedTuple):
    """Parameters of a layer-normalised LSTM (gate blocks i, f, g, o).

    Attributes:
        w_ih: input weights [4H, D].
        w_hh: recurrent weights [4H, H].
        b: bias [4H] (the sum of the paper's two LN biases and the gate
            bias), or None.
        gain_ih: gain of the normalised input pre-activations [4H].
        gain_hh: gain of the normalised recurrent pre-activations [4H].
        gain_c: gain of the normalised cell state [H].
        bias_c: bias of the normalised cell state [H], or None.
    """

    w_ih: jax.Array
    w_hh: jax.Array
    b: jax.Array | None
    gain_ih: jax.Array
    gain_hh: jax.Array
    gain_c: jax.Array
    bias_c: jax.Array | None


def init_layer_norm_lstm(
    key: jax.Array,
    input_size: int,
    hidden_size: int,
    *,
    init: str = "default",
    forget_bias: float | None = None,
    bias: bool = True,
    dtype: DTypeLike = jnp.float32,
) -> LayerNormLSTMParams:
    """Initialise a layer-normalised LSTM.

    w_ih, w_hh and b are drawn as by `init_lstm` with the same key; the gains
    start at 1 and bias_c at 0 (the identity normalisation), as in the paper.

    Args as for `init_lstm` (bias=False also gives bias_c=None); returns
    LayerNormLSTMParams(w_ih [4H, D], w_hh [4H, H], b [4H], gain_ih [4H],
    gain_hh [4H], gain_c [H], bias_c [H]).

    Examples:
        >>> import jax
        >>> p = init_layer_norm_lstm(jax.random.key(0), 3, 5)
        >>> p.gain_ih.shape, p.gain_c.shape, float(p.gain_hh.min())
        ((20,), (5,), 1.0)
    """
    w_ih, w_hh, b = _initializers.gated(
        "init_layer_norm_lstm",
        key,
        4,
        input_size,
        hidden_size,
        init,
        bias,
        dtype,
        forget=(1, forget_bias),
    )
    hidden_size, dtype = w_hh.shape[1], w_hh.dtype
    bias_c = None if b is None else jnp.zeros((hidden_size,), dtype)
    ones = jnp.ones((4 * hidden_size,), dtype)
    return LayerNormLSTMParams(
        w_ih, w_hh, b, ones, ones, jnp.ones((hidden_size,), dtype), bias_c
    )


def layer_norm_lstm_step(
    params: LayerNormLSTMParams,
    carry: LSTMCarry,
    x: ArrayLike,
    *,
    recurrent_mask: ArrayLike | None = None,
    matmul_dtype: Any = None,
) -> tuple[LSTMCarry, jax.Array]:
    """Advance a layer-normalised LSTM by one time step.

    Equations (LN_4 normalises each of the 4 gate blocks separately):
        gates = LN_4(w_ih @ x) * gain_ih + LN_4(w_hh @ h) * gain_hh + b
        i, f, g, o = split(gates, 4)
        c_new = sigmoid(f) * c + sigmoid(i) * tanh(g)
        h_new = sigmoid(o) * tanh(LN(c_new) * gain_c + bias_c)

    LN(z) = (z - mean(z)) / sqrt(var(z) + 1e-5), statistics in float32 (or
    float64) whatever the params' dtype.

    Args, Returns and Raises as for `lstm_step`, with params from
    `init_layer_norm_lstm`.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrnn import init_lstm_carry
        >>> p = init_layer_norm_lstm(jax.random.key(0), 3, 5)
        >>> carry, y = layer_norm_lstm_step(p, init_lstm_carry(5), jnp.ones(3))
        >>> y.shape
        (5,)

    References:
        Ba, Kiros & Hinton 2016, "Layer Normalization", section 6.
    """
    fn = "layer_norm_lstm_step"
    dot = _ops.matmul(fn, matmul_dtype)
    input_size, hidden_size, dtype = _validate.params(
        fn,
        params,
        LayerNormLSTMParams,
        4,
        vectors={"gain_ih": 4, "gain_hh": 4, "gain_c": 1, "bias_c": 1},
    )
    h, c = check_carry(fn, carry, hidden_size, hidden_size, dtype)
    x = _validate.step_input(fn, x, input_size, dtype)
    h_rec = _validate.recurrent_input(fn, h, recurrent_mask)

    def norm(z, groups):
        return _ops.layer_norm(z, groups, LAYER_NORM_EPS)

    gates = (
        norm(dot(params.w_ih, x), 4) * params.gain_ih
        + norm(dot(params.w_hh, h_rec), 4) * params.gain_hh
    )
    if params.b is not None:
        gates = gates + params.b
    gates = _lstm.lstm_gates(gates)
    c_new = gates.f * c + gates.i * gates.g
    c_out = norm(c_new, 1) * params.gain_c
    if params.bias_c is not None:
        c_out = c_out + params.bias_c
    h_new = gates.o * jnp.tanh(c_out)
    return LSTMCarry(h_new, c_new), h_new
