"""The GRU with the reset gate before the recurrent matmul (Cho et al. 2014).

    r = sigmoid(W_r x + U_r h + b_r)
    z = sigmoid(W_z x + U_z h + b_z)
    n = tanh(W_n x + U_n (r * h) + b_n)            the reset gate acts on h
    h_new = (1 - z) * n + z * h                    cho_gru_step

This is the form of Cho et al.'s equations, of Keras' `GRU(reset_after=False)`
and of Haiku's `hk.GRU`. jaxrnn's "gru" is PyTorch's and cuDNN's form, which
applies r after the matmul, r * (U_n h + b_hn), so that all three recurrent
products are one matmul; here U_n waits for r. One bias, b [3H].
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from jaxrnn.cells import _initializers, _ops, _validate
from jaxrnn.cells._gru import Gates, gru_state


class ChoGRUParams(NamedTuple):
    """Parameters of the reset-before GRU (gate blocks r, z, n on axis 0).

    Attributes:
        w_ih: input weights [3H, D].
        w_hh: recurrent weights [3H, H].
        b: the bias [3H] (Keras' one bias), or None for no bias.
    """

    w_ih: jax.Array
    w_hh: jax.Array
    b: jax.Array | None


def init_cho_gru(
    key: jax.Array,
    input_size: int,
    hidden_size: int,
    *,
    init: str = "default",
    bias: bool = True,
    dtype: DTypeLike = jnp.float32,
) -> ChoGRUParams:
    """Initialise a reset-before GRU: the schemes of the gated cells
    (`_initializers.gated`: "default" is Glorot-uniform w_ih, orthogonal
    w_hh per gate and zero b; "torch" is U(-1/sqrt(H), 1/sqrt(H)) for the
    weights and the one bias b [3H] as a sum of two such draws, like the
    MGU's).

    Examples:
        >>> import jax
        >>> p = init_cho_gru(jax.random.key(0), 3, 5)
        >>> p.w_ih.shape, p.w_hh.shape, p.b.shape
        ((15, 3), (15, 5), (15,))
    """
    arrays = _initializers.gated(
        "init_cho_gru", key, 3, input_size, hidden_size, init, bias, dtype
    )
    return ChoGRUParams(*arrays)


def cho_gru_step(
    params: ChoGRUParams,
    carry: jax.Array,
    x: ArrayLike,
    *,
    recurrent_mask: ArrayLike | None = None,
    matmul_dtype: Any = None,
) -> tuple[jax.Array, jax.Array]:
    """Advance a reset-before GRU by one step (the module's equations).

    Args, Returns and Raises as for `gru_step`, with params from
    `init_cho_gru`; the recurrent mask multiplies h where it enters w_hh,
    in U_r h, U_z h and U_n (r * h).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> p = init_cho_gru(jax.random.key(0), 3, 5)
        >>> h, y = cho_gru_step(p, jnp.zeros(5), jnp.ones(3))
        >>> h.shape
        (5,)
    """
    fn = "cho_gru_step"
    dot = _ops.matmul(fn, matmul_dtype)
    input_size, hidden_size, dtype = _validate.params(fn, params, ChoGRUParams, 3)
    x = _validate.step_input(fn, x, input_size, dtype)
    h = _validate.carry_array(fn, "carry", carry, hidden_size, dtype)
    h_rec = _validate.recurrent_input(fn, h, recurrent_mask)
    x_gates = dot(params.w_ih, x)
    if params.b is not None:
        x_gates = x_gates + params.b
    x_r, x_z, x_n = jnp.split(x_gates, 3)
    u_rz, u_n = params.w_hh[: 2 * hidden_size], params.w_hh[2 * hidden_size :]
    h_r, h_z = jnp.split(dot(u_rz, h_rec), 2)
    r = jax.nn.sigmoid(x_r + h_r)
    z = jax.nn.sigmoid(x_z + h_z)
    n = jnp.tanh(x_n + dot(u_n, r * h_rec))
    h_new = gru_state(Gates(r, z, n), h)
    return h_new, h_new
