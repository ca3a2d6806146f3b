"""The independently recurrent network, IndRNN (Li et al. 2018).

    h_t = g1(W x_t + u * h_{t-1} + b)              indrnn_step

Each unit reads its own previous value only, through one recurrent weight
u[j] (`w_hh`, a vector [H]), so a unit's gradient over k steps is
prod u[j] g1'(.): it neither vanishes nor explodes while |u[j]|^k stays in
a band, which the initialiser sets for a chosen horizon. Units mix across
layers, through W. The paper's g1 is ReLU, the default here.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from jaxrnn import _checks
from jaxrnn.cells import _activations, _initializers, _ops, _validate
from jaxrnn.cells._activations import Activation

# The largest growth over the horizon the initialiser allows: |u|^T <= 2.
GROWTH = 2.0


class IndRNNParams(NamedTuple):
    """Parameters of an IndRNN.

    Attributes:
        w_ih: W, input weights [H, D].
        w_hh: u, the recurrent weights [H]: one per unit, on its own h.
        b: the bias [H], or None for no bias.
    """

    w_ih: jax.Array
    w_hh: jax.Array
    b: jax.Array | None


def init_indrnn(
    key: jax.Array,
    input_size: int,
    hidden_size: int,
    *,
    horizon: int | None = None,
    init: str = "default",
    bias: bool = True,
    dtype: DTypeLike = jnp.float32,
) -> IndRNNParams:
    """Initialise an IndRNN.

    Args:
        key: a PRNG key.
        input_size: D.
        hidden_size: H.
        horizon: T, the number of steps a unit should carry its memory and
            its gradient over. u is drawn from U(0, 2^(1/T)), so that
            |u|^T <= 2 (the paper's bound on u for a horizon T, with its
            gradient-growth limit 2); None (the default) draws U(0, 1).
        init: "default" (Glorot-uniform w_ih, zero b) or "torch" (U(-k, k),
            k = 1/sqrt(H), for w_ih and b).
        bias: False gives b=None.
        dtype: a floating dtype for every parameter.

    Returns:
        IndRNNParams(w_ih [H, D], w_hh [H], b [H] or None).

    Examples:
        >>> import jax
        >>> p = init_indrnn(jax.random.key(0), 3, 5, horizon=100)
        >>> p.w_ih.shape, p.w_hh.shape, bool((p.w_hh ** 100 <= 2).all())
        ((5, 3), (5,), True)
    """
    fn = "init_indrnn"
    input_size, hidden_size, init, dtype = _initializers.sizes(
        fn, input_size, hidden_size, init, dtype
    )
    top = 1.0
    if horizon is not None:
        top = GROWTH ** (1.0 / _checks.positive_int(fn, "horizon", horizon))
    key_w, key_u, key_b = jax.random.split(key, 3)
    w_ih, _ = _initializers.weights(key_w, 1, input_size, hidden_size, init, dtype)
    work = _checks.work_dtype(dtype)
    u = jax.random.uniform(key_u, (hidden_size,), work, 0.0, top).astype(dtype)
    b = None
    if bias:
        b = _initializers.bias(
            key_b, hidden_size, hidden_size, init, dtype, summed=False
        )
    return IndRNNParams(w_ih, u, b)


def indrnn_step(
    params: IndRNNParams,
    carry: jax.Array,
    x: ArrayLike,
    *,
    activation: Activation = "relu",
    recurrent_mask: ArrayLike | None = None,
    matmul_dtype: Any = None,
) -> tuple[jax.Array, jax.Array]:
    """Advance an IndRNN by one step: h_new = g1(w_ih @ x + w_hh * h + b).

    Args, Returns and Raises as for `rnn_step`, with w_hh the vector [H] and
    g1 ReLU by default; matmul_dtype applies to the one matmul, w_ih @ x.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> p = init_indrnn(jax.random.key(0), 3, 5)
        >>> h, y = indrnn_step(p, jnp.zeros(5), jnp.ones(3))
        >>> h.shape, bool((h >= 0).all())
        ((5,), True)
    """
    fn = "indrnn_step"
    dot = _ops.matmul(fn, matmul_dtype)
    input_size, hidden_size, dtype = _validate.params(
        fn, params, IndRNNParams, 1, diagonal=True
    )
    g1 = _activations.resolve(fn, "activation", activation)
    x = _validate.step_input(fn, x, input_size, dtype)
    h = _validate.carry_array(fn, "carry", carry, hidden_size, dtype)
    h_rec = _validate.recurrent_input(fn, h, recurrent_mask)
    z = dot(params.w_ih, x) + params.w_hh * h_rec
    if params.b is not None:
        z = z + params.b
    h_new = g1(z)
    return h_new, h_new
