"""The gated recurrent unit (Cho et al. 2014) in its PyTorch/cuDNN form.

    r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)          reset gate
    z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)          update gate
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))     candidate
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

The reset gate multiplies the recurrent term after its matmul, so b_hn cannot
be folded into the other biases: it is its own field. Gate blocks are in
PyTorch's order r, z, n.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from jaxrnn import _checks
from jaxrnn.cells import _initializers, _ops, _validate


class GRUParams(NamedTuple):
    """Parameters of a GRU (PyTorch layout, gate blocks r, z, n).

    Attributes:
        w_ih: input weights [3H, D].
        w_hh: recurrent weights [3H, H].
        b: bias [3H]: [b_ir + b_hr, b_iz + b_hz, b_in], or None for no bias.
        b_hn: the recurrent candidate bias [H], inside the reset product, or
            None for no bias.
    """

    w_ih: jax.Array
    w_hh: jax.Array
    b: jax.Array | None
    b_hn: jax.Array | None


def init_gru(
    key: jax.Array,
    input_size: int,
    hidden_size: int,
    *,
    init: str = "default",
    bias: bool = True,
    dtype: DTypeLike = jnp.float32,
) -> GRUParams:
    """Initialise a GRU.

    Args:
        key: a PRNG key.
        input_size: D.
        hidden_size: H.
        init: "default" (Glorot-uniform w_ih, orthogonal w_hh per gate, zero
            biases) or "torch" (PyTorch's U(-1/sqrt(H), 1/sqrt(H)); the r and
            z blocks of b are distributed as b_i + b_h, the n block and b_hn
            as one uniform each, exactly as in PyTorch).
        bias: False gives b=None and b_hn=None, like PyTorch's `bias=False`.
        dtype: a floating dtype for every parameter.

    Returns:
        GRUParams(w_ih [3H, D], w_hh [3H, H], b [3H], b_hn [H]).

    Examples:
        >>> import jax
        >>> p = init_gru(jax.random.key(0), 3, 5)
        >>> p.w_ih.shape, p.w_hh.shape, p.b.shape, p.b_hn.shape
        ((15, 3), (15, 5), (15,), (5,))
    """
    return GRUParams(
        *gru_arrays("init_gru", key, input_size, hidden_size, init, bias, dtype)
    )


def gru_arrays(
    fn: str,
    key: jax.Array,
    input_size: Any,
    hidden_size: Any,
    init: Any,
    bias: bool,
    dtype: Any,
) -> tuple[jax.Array, jax.Array, jax.Array | None, jax.Array | None]:
    """(w_ih, w_hh, b, b_hn) of a GRU, the arguments checked in `fn`'s name."""
    input_size, hidden_size, init, dtype = _initializers.sizes(
        fn, input_size, hidden_size, init, dtype
    )
    key_w, key_rz, key_n, key_hn = jax.random.split(key, 4)
    w_ih, w_hh = _initializers.weights(key_w, 3, input_size, hidden_size, init, dtype)
    if not bias:
        return w_ih, w_hh, None, None
    b_rz = _initializers.bias(key_rz, 2 * hidden_size, hidden_size, init, dtype)
    b_in = _initializers.bias(
        key_n, hidden_size, hidden_size, init, dtype, summed=False
    )
    b_hn = _initializers.bias(
        key_hn, hidden_size, hidden_size, init, dtype, summed=False
    )
    return w_ih, w_hh, jnp.concatenate([b_rz, b_in]), b_hn


def init_gru_carry(hidden_size: int, *, dtype: DTypeLike = jnp.float32) -> jax.Array:
    """The zero initial state h_0 = 0, of shape [H]."""
    hidden_size = _checks.positive_int("init_gru_carry", "hidden_size", hidden_size)
    return jnp.zeros((hidden_size,), _checks.float_dtype("init_gru_carry", dtype))


def gru_step(
    params: GRUParams,
    carry: jax.Array,
    x: ArrayLike,
    *,
    recurrent_mask: ArrayLike | None = None,
    matmul_dtype: Any = None,
) -> tuple[jax.Array, jax.Array]:
    """Advance a GRU by one time step.

    Equations (gate blocks r, z, n along axis 0 of the weights):
        x_r, x_z, x_n = split(w_ih @ x + b, 3)
        h_r, h_z, h_n = split(w_hh @ h, 3)
        r = sigmoid(x_r + h_r)
        z = sigmoid(x_z + h_z)
        n = tanh(x_n + r * (h_n + b_hn))
        h_new = (1 - z) * n + z * h

    After `functools.partial(gru_step, params)` this is a `jax.lax.scan` body.

    Args:
        params: from `init_gru`; w_ih [3H, D], w_hh [3H, H], b [3H], b_hn [H]
            (both biases None, or neither).
        carry: h, the previous hidden state, [H].
        x: input at this step, [D], in the params' dtype.
        recurrent_mask: optional [H]. It multiplies h where h enters w_hh
            (variational recurrent dropout); the z * h term keeps the
            unmasked h, so dropout never erases the memory.
        matmul_dtype: the mixed-precision policy: a dtype such as
            jnp.bfloat16 for the matmuls' inputs, accumulated in the
            params' dtype. None, the default, is full precision.

    Returns:
        (h_new, h_new)

    Raises:
        TypeError: params of another cell, a non-floating x, or dtypes that
            differ from the params'.
        ValueError: x not [D], carry not [H], or only one of b and b_hn given.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> p = init_gru(jax.random.key(0), 3, 5)
        >>> h, y = gru_step(p, init_gru_carry(5), jnp.ones(3))
        >>> h.shape
        (5,)
    """
    fn = "gru_step"
    dot = _ops.matmul(fn, matmul_dtype)
    input_size, hidden_size, dtype = _validate.params(fn, params, GRUParams, 3)
    _validate.both_biases(fn, params)
    x = _validate.step_input(fn, x, input_size, dtype)
    h = _validate.carry_array(fn, "carry", carry, hidden_size, dtype)
    h_rec = _validate.recurrent_input(fn, h, recurrent_mask)
    x_gates = dot(params.w_ih, x)
    if params.b is not None:
        x_gates = x_gates + params.b
    gates = gru_gates(x_gates, dot(params.w_hh, h_rec), params.b_hn)
    h_new = gru_state(gates, h)
    return h_new, h_new


class Gates(NamedTuple):
    """The GRU's gates at one step, each [..., H]: reset r, update z, and
    the candidate n."""

    r: jax.Array
    z: jax.Array
    n: jax.Array


def gru_gates(x_gates: jax.Array, h_gates: jax.Array, b_hn: Any) -> Gates:
    """The gates from the input part x_gates = w_ih @ x + b [..., 3H] and the
    recurrent part h_gates = w_hh @ h [..., 3H] (blocks r, z, n).

    The one place the GRU's gate equations are written; `gru_step`,
    `layer_norm_gru_step` and `diagnostics.gru_gates` call it:
        r = sigmoid(x_r + h_r)
        z = sigmoid(x_z + h_z)
        n = tanh(x_n + r * (h_n + b_hn))
    """
    x_r, x_z, x_n = jnp.split(x_gates, 3, axis=-1)
    h_r, h_z, h_n = jnp.split(h_gates, 3, axis=-1)
    if b_hn is not None:
        h_n = h_n + b_hn
    r = jax.nn.sigmoid(x_r + h_r)
    z = jax.nn.sigmoid(x_z + h_z)
    return Gates(r, z, jnp.tanh(x_n + r * h_n))


def gru_state(gates: Gates, h: jax.Array) -> jax.Array:
    """h_new = (1 - z) * n + z * h."""
    return (1 - gates.z) * gates.n + gates.z * h
