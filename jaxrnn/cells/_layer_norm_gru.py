"""The layer-normalised GRU (Ba, Kiros & Hinton 2016), in PyTorch's GRU form.

    x_r, x_z, x_n = split(LN(W_x x_t) * gain_ih + b, 3)
    h_r, h_z, h_n = split(LN(W_h h_{t-1}) * gain_hh, 3)
    r_t = sigmoid(x_r + h_r)
    z_t = sigmoid(x_z + h_z)
    n_t = tanh(x_n + r_t * (h_n + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

LN normalises each gate block (r, z, n) of the input and the recurrent
pre-activations separately. As in the plain GRU, b_hn sits inside the reset
product; the other LN biases fold into b.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from jaxrnn.cells import _gru, _ops, _validate
from jaxrnn.cells._gru import gru_arrays
from jaxrnn.cells._layer_norm_lstm import LAYER_NORM_EPS


class LayerNormGRUParams(NamedTuple):
    """Parameters of a layer-normalised GRU (gate blocks r, z, n).

    Attributes:
        w_ih: input weights [3H, D].
        w_hh: recurrent weights [3H, H].
        b: bias [3H], or None.
        b_hn: the recurrent candidate bias [H], inside the reset product, or
            None.
        gain_ih: gain of the normalised input pre-activations [3H].
        gain_hh: gain of the normalised recurrent pre-activations [3H].
    """

    w_ih: jax.Array
    w_hh: jax.Array
    b: jax.Array | None
    b_hn: jax.Array | None
    gain_ih: jax.Array
    gain_hh: jax.Array


def init_layer_norm_gru(
    key: jax.Array,
    input_size: int,
    hidden_size: int,
    *,
    init: str = "default",
    bias: bool = True,
    dtype: DTypeLike = jnp.float32,
) -> LayerNormGRUParams:
    """Initialise a layer-normalised GRU.

    The weights and biases are drawn as by `init_gru` with the same key; the
    gains start at 1.

    Args as for `init_gru` (bias=False gives b=None and b_hn=None); returns
    LayerNormGRUParams(w_ih [3H, D], w_hh [3H, H], b [3H], b_hn [H],
    gain_ih [3H], gain_hh [3H]).

    Examples:
        >>> import jax
        >>> p = init_layer_norm_gru(jax.random.key(0), 3, 5)
        >>> p.gain_ih.shape, p.b_hn.shape
        ((15,), (5,))
    """
    w_ih, w_hh, b, b_hn = gru_arrays(
        "init_layer_norm_gru", key, input_size, hidden_size, init, bias, dtype
    )
    ones = jnp.ones((w_ih.shape[0],), w_ih.dtype)
    return LayerNormGRUParams(w_ih, w_hh, b, b_hn, ones, ones)


def layer_norm_gru_step(
    params: LayerNormGRUParams,
    carry: jax.Array,
    x: ArrayLike,
    *,
    recurrent_mask: ArrayLike | None = None,
    matmul_dtype: Any = None,
) -> tuple[jax.Array, jax.Array]:
    """Advance a layer-normalised GRU by one time step.

    Equations (LN_3 normalises each of the 3 gate blocks separately):
        x_r, x_z, x_n = split(LN_3(w_ih @ x) * gain_ih + b, 3)
        h_r, h_z, h_n = split(LN_3(w_hh @ h) * gain_hh, 3)
        r = sigmoid(x_r + h_r)
        z = sigmoid(x_z + h_z)
        n = tanh(x_n + r * (h_n + b_hn))
        h_new = (1 - z) * n + z * h

    Args, Returns and Raises as for `gru_step`, with params from
    `init_layer_norm_gru`.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> p = init_layer_norm_gru(jax.random.key(0), 3, 5)
        >>> h, y = layer_norm_gru_step(p, jnp.zeros(5), jnp.ones(3))
        >>> y.shape
        (5,)

    References:
        Ba, Kiros & Hinton 2016, "Layer Normalization".
    """
    fn = "layer_norm_gru_step"
    dot = _ops.matmul(fn, matmul_dtype)
    input_size, hidden_size, dtype = _validate.params(
        fn, params, LayerNormGRUParams, 3, vectors={"gain_ih": 3, "gain_hh": 3}
    )
    _validate.both_biases(fn, params)
    x = _validate.step_input(fn, x, input_size, dtype)
    h = _validate.carry_array(fn, "carry", carry, hidden_size, dtype)
    h_rec = _validate.recurrent_input(fn, h, recurrent_mask)
    x_gates = _ops.layer_norm(dot(params.w_ih, x), 3, LAYER_NORM_EPS) * params.gain_ih
    h_gates = (
        _ops.layer_norm(dot(params.w_hh, h_rec), 3, LAYER_NORM_EPS) * params.gain_hh
    )
    if params.b is not None:
        x_gates = x_gates + params.b
    h_new = _gru.gru_state(_gru.gru_gates(x_gates, h_gates, params.b_hn), h)
    return h_new, h_new
