"""The LSTM with a projection layer (Sak, Senior & Beaufays 2014), as PyTorch's
`torch.nn.LSTM(proj_size=P)`.

    i, f, g, o = split(W_ih x_t + W_hh h_{t-1} + b, 4)
    C_t = sigmoid(f) * C_{t-1} + sigmoid(i) * tanh(g)
    h_t = W_hr (sigmoid(o) * tanh(C_t))

The cell state keeps H units; the hidden state, which is the output and the
recurrent input, is projected down to P units by W_hr [P, H]. W_hh is then
[4H, P]: the recurrent matmul costs 4HP instead of 4H^2.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from jaxrnn import _checks
from jaxrnn.cells import _initializers, _lstm, _ops, _validate
from jaxrnn.cells._lstm import LSTMCarry, check_carry


class ProjLSTMParams(NamedTuple):
    """Parameters of an LSTM with projection (PyTorch layout, blocks i, f, g, o).

    Attributes:
        w_ih: input weights [4H, D].
        w_hh: recurrent weights [4H, P].
        b: bias [4H] (PyTorch's b_ih + b_hh), or None.
        w_hr: the projection [P, H] (PyTorch's weight_hr).
    """

    w_ih: jax.Array
    w_hh: jax.Array
    b: jax.Array | None
    w_hr: jax.Array


def init_proj_lstm(
    key: jax.Array,
    input_size: int,
    hidden_size: int,
    proj_size: int,
    *,
    init: str = "default",
    forget_bias: float | None = None,
    bias: bool = True,
    dtype: DTypeLike = jnp.float32,
) -> ProjLSTMParams:
    """Initialise an LSTM with projection.

    Args:
        key: a PRNG key.
        input_size: D.
        hidden_size: H, the size of the cell state and the gates.
        proj_size: P, the size of h; PyTorch requires P < H and so does
            this function.
        init: "default" (Glorot-uniform w_ih and w_hr, orthogonal [H, P]
            blocks of w_hh, zero b) or "torch" (U(-1/sqrt(H), 1/sqrt(H)) for
            every weight, w_hr included, as PyTorch draws them).
        forget_bias: added to the forget block of b; see `init_lstm`.
        bias: False gives b=None.
        dtype: a floating dtype for every parameter.

    Returns:
        ProjLSTMParams(w_ih [4H, D], w_hh [4H, P], b [4H], w_hr [P, H]).

    Examples:
        >>> import jax
        >>> p = init_proj_lstm(jax.random.key(0), 3, 5, 2)
        >>> p.w_hh.shape, p.w_hr.shape
        ((20, 2), (2, 5))
    """
    fn = "init_proj_lstm"
    hidden_size = _checks.positive_int(fn, "hidden_size", hidden_size)
    proj_size = _checks.positive_int(fn, "proj_size", proj_size)
    if proj_size >= hidden_size:
        _checks.fail(
            fn,
            "proj_size",
            f"must be smaller than hidden_size = {hidden_size}",
            repr(proj_size),
            "PyTorch refuses proj_size >= hidden_size too.",
        )
    key_lstm, key_hr = jax.random.split(key)
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
        recurrent_size=proj_size,
    )
    if init == "torch":
        limit = 1.0 / math.sqrt(hidden_size)
    else:
        limit = math.sqrt(6.0 / (hidden_size + proj_size))
    w_hr = _initializers.uniform(key_hr, (proj_size, hidden_size), limit, w_hh.dtype)
    return ProjLSTMParams(w_ih, w_hh, b, w_hr)


def init_proj_lstm_carry(
    hidden_size: int, proj_size: int, *, dtype: DTypeLike = jnp.float32
) -> LSTMCarry:
    """The zero initial state LSTMCarry(h=0 [P], c=0 [H])."""
    fn = "init_proj_lstm_carry"
    hidden_size = _checks.positive_int(fn, "hidden_size", hidden_size)
    proj_size = _checks.positive_int(fn, "proj_size", proj_size)
    dtype = _checks.float_dtype(fn, dtype)
    return LSTMCarry(jnp.zeros((proj_size,), dtype), jnp.zeros((hidden_size,), dtype))


def proj_lstm_step(
    params: ProjLSTMParams,
    carry: LSTMCarry,
    x: ArrayLike,
    *,
    recurrent_mask: ArrayLike | None = None,
    matmul_dtype: Any = None,
) -> tuple[LSTMCarry, jax.Array]:
    """Advance an LSTM with projection by one time step.

    Equations (gate blocks i, f, g, o along axis 0 of the weights):
        i, f, g, o = split(w_ih @ x + w_hh @ h + b, 4)
        c_new = sigmoid(f) * c + sigmoid(i) * tanh(g)
        h_new = w_hr @ (sigmoid(o) * tanh(c_new))

    Args, Returns and Raises as for `lstm_step`, with params from
    `init_proj_lstm` and h of size P: the carry is LSTMCarry(h [P], c [H])
    (`init_proj_lstm_carry`), the recurrent mask [P], and the step returns
    (LSTMCarry(h_new [P], c_new [H]), h_new).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> p = init_proj_lstm(jax.random.key(0), 3, 5, 2)
        >>> carry, y = proj_lstm_step(p, init_proj_lstm_carry(5, 2), jnp.ones(3))
        >>> carry.h.shape, carry.c.shape
        ((2,), (5,))

    References:
        Sak, Senior & Beaufays 2014, "Long Short-Term Memory Based Recurrent
        Neural Network Architectures for Large Vocabulary Speech Recognition".
    """
    fn = "proj_lstm_step"
    dot = _ops.matmul(fn, matmul_dtype)
    hidden_size = proj_size = None
    if isinstance(params, ProjLSTMParams):  # else _validate.params raises TypeError
        w_hr = _checks.float_array(fn, "params.w_hr", params.w_hr, ndim=2)
        proj_size, hidden_size = w_hr.shape
        w_hh = _checks.float_array(fn, "params.w_hh", params.w_hh, ndim=2)
        if tuple(w_hh.shape) != (4 * hidden_size, proj_size):
            _checks.fail(
                fn,
                "params.w_hr and params.w_hh",
                "must agree, as [P, H] and [4H, P]",
                f"shapes {tuple(w_hr.shape)} and {tuple(w_hh.shape)}",
            )
    input_size, hidden_size, dtype = _validate.params(
        fn, params, ProjLSTMParams, 4, hidden_size=hidden_size
    )
    _checks.same_dtype(fn, "params.w_hr", w_hr, dtype, "params.w_hh")
    h, c = check_carry(fn, carry, proj_size, hidden_size, dtype)
    x = _validate.step_input(fn, x, input_size, dtype)
    h_rec = _validate.recurrent_input(fn, h, recurrent_mask)
    z = dot(params.w_ih, x) + dot(params.w_hh, h_rec)
    if params.b is not None:
        z = z + params.b
    c_new, h_cell = _lstm.lstm_state(_lstm.lstm_gates(z), c)
    h_new = dot(params.w_hr, h_cell)
    return LSTMCarry(h_new, c_new), h_new
