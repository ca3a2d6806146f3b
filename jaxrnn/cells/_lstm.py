"""The LSTM of the lecture (Hochreiter & Schmidhuber 1997, with a forget gate).

    f_t  = sigmoid(W_f [h_{t-1}, x_t] + b_f)       forget gate
    i_t  = sigmoid(W_i [h_{t-1}, x_t] + b_i)       input gate
    C~_t = tanh(W_C [h_{t-1}, x_t] + b_C)          candidate cell state
    C_t  = f_t * C_{t-1} + i_t * C~_t              cell state
    o_t  = sigmoid(W_o [h_{t-1}, x_t] + b_o)       output gate
    h_t  = o_t * tanh(C_t)                         hidden state

The four gate blocks are fused into one matrix in PyTorch's order i, f, g, o
(g is the candidate C~), split into an input part w_ih [4H, D] and a recurrent
part w_hh [4H, H].
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from jaxrnn import _checks
from jaxrnn.cells import _initializers, _ops, _validate


class LSTMParams(NamedTuple):
    """Parameters of an LSTM (PyTorch layout, gate blocks i, f, g, o).

    Attributes:
        w_ih: input weights [4H, D].
        w_hh: recurrent weights [4H, H].
        b: bias [4H] (PyTorch's b_ih + b_hh), or None for no bias.
    """

    w_ih: jax.Array
    w_hh: jax.Array
    b: jax.Array | None


class LSTMCarry(NamedTuple):
    """The LSTM state: hidden state h [H] first, then cell state c [H]."""

    h: jax.Array
    c: jax.Array


def init_lstm(
    key: jax.Array,
    input_size: int,
    hidden_size: int,
    *,
    init: str = "default",
    forget_bias: float | None = None,
    bias: bool = True,
    dtype: DTypeLike = jnp.float32,
) -> LSTMParams:
    """Initialise an LSTM.

    Args:
        key: a PRNG key.
        input_size: D.
        hidden_size: H.
        init: "default" (Glorot-uniform w_ih, orthogonal w_hh per gate, zero
            b) or "torch" (PyTorch's U(-1/sqrt(H), 1/sqrt(H)), with b
            distributed as PyTorch's b_ih + b_hh).
        forget_bias: a constant added to the forget-gate block of b at
            initialisation (it is a parameter afterwards, never re-added in
            `lstm_step`). None, the default, means 1.0 with init="default"
            (Jozefowicz et al. 2015; Keras' unit_forget_bias) and 0.0 with
            init="torch", which then matches PyTorch exactly.
        bias: False gives b=None, like PyTorch's `bias=False`.
        dtype: a floating dtype for every parameter.

    Returns:
        LSTMParams(w_ih [4H, D], w_hh [4H, H], b [4H] or None).

    Examples:
        >>> import jax
        >>> p = init_lstm(jax.random.key(0), 3, 5)
        >>> p.w_ih.shape, p.w_hh.shape, p.b[5:10].tolist()
        ((20, 3), (20, 5), [1.0, 1.0, 1.0, 1.0, 1.0])
    """
    w_ih, w_hh, b = _initializers.gated(
        "init_lstm",
        key,
        4,
        input_size,
        hidden_size,
        init,
        bias,
        dtype,
        forget=(1, forget_bias),
    )
    return LSTMParams(w_ih, w_hh, b)


def init_lstm_carry(hidden_size: int, *, dtype: DTypeLike = jnp.float32) -> LSTMCarry:
    """The zero initial state LSTMCarry(h=0 [H], c=0 [H])."""
    hidden_size = _checks.positive_int("init_lstm_carry", "hidden_size", hidden_size)
    zeros = jnp.zeros((hidden_size,), _checks.float_dtype("init_lstm_carry", dtype))
    return LSTMCarry(zeros, zeros)


def lstm_step(
    params: LSTMParams,
    carry: LSTMCarry,
    x: ArrayLike,
    *,
    recurrent_mask: ArrayLike | None = None,
    matmul_dtype: Any = None,
) -> tuple[LSTMCarry, jax.Array]:
    """Advance an LSTM by one time step.

    Equations (gate blocks i, f, g, o along axis 0 of the weights; the
    lecture's C~_t is g and C_t is c):
        i, f, g, o = split(w_ih @ x + w_hh @ h + b, 4)
        c_new = sigmoid(f) * c + sigmoid(i) * tanh(g)
        h_new = sigmoid(o) * tanh(c_new)

    After `functools.partial(lstm_step, params)` this is a `jax.lax.scan` body.

    Args:
        params: from `init_lstm`; w_ih [4H, D], w_hh [4H, H], b [4H] or None.
        carry: LSTMCarry(h [H], c [H]).
        x: input at this step, [D], in the params' dtype.
        recurrent_mask: optional [H]. It multiplies h where h enters w_hh,
            which is variational recurrent dropout (Gal & Ghahramani 2016)
            when the mask is one draw per sequence; `apply_layer` samples it.
            The carry itself is not masked.
        matmul_dtype: the mixed-precision policy: a dtype such as
            jnp.bfloat16 for the matmuls' inputs, accumulated in the
            params' dtype. None, the default, is full precision.

    Returns:
        (LSTMCarry(h_new, c_new), h_new)

    Raises:
        TypeError: params of another cell, a carry that is not an LSTMCarry, a
            non-floating x, or dtypes that differ from the params'.
        ValueError: x not [D] with D == params.w_ih.shape[1], or h, c not [H].

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> p = init_lstm(jax.random.key(0), 3, 5)
        >>> carry, y = lstm_step(p, init_lstm_carry(5), jnp.ones(3))
        >>> carry.h.shape, carry.c.shape, y.shape
        ((5,), (5,), (5,))
    """
    fn = "lstm_step"
    dot = _ops.matmul(fn, matmul_dtype)
    input_size, hidden_size, dtype = _validate.params(fn, params, LSTMParams, 4)
    h, c = check_carry(fn, carry, hidden_size, hidden_size, dtype)
    x = _validate.step_input(fn, x, input_size, dtype)
    h_rec = _validate.recurrent_input(fn, h, recurrent_mask)
    z = dot(params.w_ih, x) + dot(params.w_hh, h_rec)
    if params.b is not None:
        z = z + params.b
    gates = lstm_gates(z)
    c_new, h_new = lstm_state(gates, c)
    return LSTMCarry(h_new, c_new), h_new


class Gates(NamedTuple):
    """The LSTM's gate activations at one step, each [..., H]."""

    i: jax.Array
    f: jax.Array
    g: jax.Array
    o: jax.Array


def lstm_gates(z: jax.Array) -> Gates:
    """The gates from the pre-activations z [..., 4H] (blocks i, f, g, o).

    The one place the LSTM's gate equations are written; `lstm_step`, its
    variants that share them and `diagnostics.lstm_gates` call it:
        i, f, g, o = sigmoid(z_i), sigmoid(z_f), tanh(z_g), sigmoid(z_o)
    """
    z_i, z_f, z_g, z_o = jnp.split(z, 4, axis=-1)
    return Gates(
        jax.nn.sigmoid(z_i), jax.nn.sigmoid(z_f), jnp.tanh(z_g), jax.nn.sigmoid(z_o)
    )


def lstm_state(gates: Gates, c: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(c_new, h_new) from the gates and the old cell state c:
    c_new = f * c + i * g and h_new = o * tanh(c_new)."""
    c_new = gates.f * c + gates.i * gates.g
    return c_new, gates.o * jnp.tanh(c_new)


def check_carry(
    fn: str, carry: Any, h_size: int, c_size: int, dtype: jnp.dtype
) -> tuple[jax.Array, jax.Array]:
    """(h [h_size], c [c_size]) from an LSTMCarry, checked in `fn`'s name."""
    if not isinstance(carry, LSTMCarry):
        _checks.fail(
            fn,
            "carry",
            "must be LSTMCarry(h, c)",
            _checks.describe(carry),
            "Wrap a pair with LSTMCarry(h, c), or use init_lstm_carry.",
            kind=TypeError,
        )
    return (
        _validate.carry_array(fn, "carry.h", carry.h, h_size, dtype),
        _validate.carry_array(fn, "carry.c", carry.c, c_size, dtype),
    )
