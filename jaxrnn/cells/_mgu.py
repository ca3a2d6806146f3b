"""The minimal gated unit (MGU; Zhou, Wu, Zhang & Zhou 2016).

    f_t  = sigmoid(W_f x_t + U_f h_{t-1} + b_f)            the only gate
    h~_t = tanh(W_h x_t + U_h (f_t * h_{t-1}) + b_h)
    h_t  = (1 - f_t) * h_{t-1} + f_t * h~_t

One gate does the work of the GRU's reset and update gates: two weight blocks
(f, then the candidate n) instead of three. The candidate's recurrent matmul
reads f_t * h_{t-1}, so it runs after the gate's.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from jaxrnn.cells import _initializers, _ops, _validate


class MGUParams(NamedTuple):
    """Parameters of a minimal gated unit (blocks f, n).

    Attributes:
        w_ih: input weights [2H, D]: W_f, then W_h.
        w_hh: recurrent weights [2H, H]: U_f, then U_h.
        b: bias [2H], or None.
    """

    w_ih: jax.Array
    w_hh: jax.Array
    b: jax.Array | None


def init_mgu(
    key: jax.Array,
    input_size: int,
    hidden_size: int,
    *,
    init: str = "default",
    bias: bool = True,
    dtype: DTypeLike = jnp.float32,
) -> MGUParams:
    """Initialise a minimal gated unit.

    Args as for `init_gru`, with two gate blocks and one bias; returns
    MGUParams(w_ih [2H, D], w_hh [2H, H], b [2H] or None).

    Examples:
        >>> import jax
        >>> init_mgu(jax.random.key(0), 3, 5).w_hh.shape
        (10, 5)
    """
    w_ih, w_hh, b = _initializers.gated(
        "init_mgu", key, 2, input_size, hidden_size, init, bias, dtype
    )
    return MGUParams(w_ih, w_hh, b)


def mgu_step(
    params: MGUParams,
    carry: jax.Array,
    x: ArrayLike,
    *,
    recurrent_mask: ArrayLike | None = None,
    matmul_dtype: Any = None,
) -> tuple[jax.Array, jax.Array]:
    """Advance a minimal gated unit by one time step.

    Equations (blocks f, n along axis 0 of the weights):
        x_f, x_n = split(w_ih @ x + b, 2)
        u_f, u_n = split(w_hh, 2)                  # [H, H] each
        f = sigmoid(x_f + u_f @ h)
        n = tanh(x_n + u_n @ (f * h))
        h_new = (1 - f) * h + f * n

    Args, Returns and Raises as for `gru_step`, with params from `init_mgu`;
    the recurrent mask multiplies h in both matmuls, and the (1 - f) * h term
    keeps the unmasked h.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> p = init_mgu(jax.random.key(0), 3, 5)
        >>> h, y = mgu_step(p, jnp.zeros(5), jnp.ones(3))
        >>> y.shape
        (5,)

    References:
        Zhou, Wu, Zhang & Zhou 2016, "Minimal Gated Unit for Recurrent Neural
        Networks".
    """
    fn = "mgu_step"
    dot = _ops.matmul(fn, matmul_dtype)
    input_size, hidden_size, dtype = _validate.params(fn, params, MGUParams, 2)
    h = _validate.carry_array(fn, "carry", carry, hidden_size, dtype)
    x = _validate.step_input(fn, x, input_size, dtype)
    h_rec = _validate.recurrent_input(fn, h, recurrent_mask)
    x_gates = dot(params.w_ih, x)
    if params.b is not None:
        x_gates = x_gates + params.b
    x_f, x_n = jnp.split(x_gates, 2)
    u_f, u_n = jnp.split(params.w_hh, 2)
    f = jax.nn.sigmoid(x_f + dot(u_f, h_rec))
    n = jnp.tanh(x_n + dot(u_n, f * h_rec))
    h_new = (1 - f) * h + f * n
    return h_new, h_new
