"""The Elman RNN of the lecture, and its output layer (the readout).

    a_t = g1(W_aa a_{t-1} + W_ax x_t + b_a)        rnn_step
    y_t = g2(W_ya a_t + b_y)                       readout

In code the hidden state a_t is `h`, W_ax is `w_ih`, W_aa is `w_hh` and b_a is
`b`, in PyTorch's layout, so that `torch.nn.RNN` weights load by a copy.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from jaxrnn import _checks
from jaxrnn.cells import _activations, _initializers, _ops, _validate
from jaxrnn.cells._activations import Activation


class RNNParams(NamedTuple):
    """Parameters of the Elman RNN (PyTorch layout).

    Attributes:
        w_ih: W_ax, input-to-hidden weights [H, D].
        w_hh: W_aa, hidden-to-hidden weights [H, H].
        b: b_a, the bias [H] (PyTorch's b_ih + b_hh), or None for no bias.
    """

    w_ih: jax.Array
    w_hh: jax.Array
    b: jax.Array | None


class ReadoutParams(NamedTuple):
    """Parameters of the output layer y = g2(W_ya a + b_y).

    Attributes:
        w_ya: output weights [O, H].
        b_y: output bias [O].
    """

    w_ya: jax.Array
    b_y: jax.Array


def init_rnn(
    key: jax.Array,
    input_size: int,
    hidden_size: int,
    *,
    init: str = "default",
    bias: bool = True,
    dtype: DTypeLike = jnp.float32,
) -> RNNParams:
    """Initialise an Elman RNN.

    Args:
        key: a PRNG key.
        input_size: D.
        hidden_size: H.
        init: "default" (Glorot-uniform w_ih, orthogonal w_hh, zero b) or
            "torch" (PyTorch's U(-1/sqrt(H), 1/sqrt(H)) for everything, with
            b distributed as PyTorch's b_ih + b_hh).
        bias: False gives b=None, like PyTorch's `bias=False`.
        dtype: a floating dtype for every parameter.

    Returns:
        RNNParams(w_ih [H, D], w_hh [H, H], b [H] or None).

    Examples:
        >>> import jax
        >>> p = init_rnn(jax.random.key(0), 3, 5)
        >>> p.w_ih.shape, p.w_hh.shape, p.b.shape
        ((5, 3), (5, 5), (5,))
    """
    fn = "init_rnn"
    input_size, hidden_size, init, dtype = _initializers.sizes(
        fn, input_size, hidden_size, init, dtype
    )
    key_w, key_b = jax.random.split(key)
    w_ih, w_hh = _initializers.weights(key_w, 1, input_size, hidden_size, init, dtype)
    b = (
        _initializers.bias(key_b, hidden_size, hidden_size, init, dtype)
        if bias
        else None
    )
    return RNNParams(w_ih, w_hh, b)


def init_rnn_carry(hidden_size: int, *, dtype: DTypeLike = jnp.float32) -> jax.Array:
    """The zero initial state a_0 = 0, of shape [H]."""
    hidden_size = _checks.positive_int("init_rnn_carry", "hidden_size", hidden_size)
    return jnp.zeros((hidden_size,), _checks.float_dtype("init_rnn_carry", dtype))


def rnn_step(
    params: RNNParams,
    carry: jax.Array,
    x: ArrayLike,
    *,
    activation: Activation = "tanh",
    recurrent_mask: ArrayLike | None = None,
    matmul_dtype: Any = None,
) -> tuple[jax.Array, jax.Array]:
    """Advance an Elman RNN by one time step.

    Equation (the lecture's a_t, with h for a):
        h_new = g1(w_ih @ x + w_hh @ h + b)

    After `functools.partial(rnn_step, params)` this is a `jax.lax.scan` body.

    Args:
        params: from `init_rnn`; w_ih [H, D], w_hh [H, H], b [H] or None.
        carry: h, the previous hidden state a_{t-1}, [H].
        x: the input x_t, [D], in the params' dtype.
        activation: g1: "tanh" (the default, as in PyTorch), "sigmoid",
            "relu", "identity", or any elementwise callable.
        recurrent_mask: optional [H]; it multiplies h where h enters w_hh
            (variational recurrent dropout; `apply_layer` samples it).
        matmul_dtype: the mixed-precision policy: a dtype such as
            jnp.bfloat16 for the matmuls' inputs, accumulated in the
            params' dtype. None, the default, is full precision.

    Returns:
        (h_new, h_new): the new carry, and the step's output h_t = a_t.

    Raises:
        TypeError: params of another cell, a non-floating x, or dtypes that
            differ from the params'.
        ValueError: x not [D], carry not [H], or an unknown activation name.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> p = init_rnn(jax.random.key(0), 3, 5)
        >>> h, y = rnn_step(p, init_rnn_carry(5), jnp.ones(3), activation="relu")
        >>> h.shape, bool((h >= 0).all())
        ((5,), True)
    """
    fn = "rnn_step"
    dot = _ops.matmul(fn, matmul_dtype)
    input_size, hidden_size, dtype = _validate.params(fn, params, RNNParams, 1)
    g1 = _activations.resolve(fn, "activation", activation)
    x = _validate.step_input(fn, x, input_size, dtype)
    h = _validate.carry_array(fn, "carry", carry, hidden_size, dtype)
    h_rec = _validate.recurrent_input(fn, h, recurrent_mask)
    z = dot(params.w_ih, x) + dot(params.w_hh, h_rec)
    if params.b is not None:
        z = z + params.b
    h_new = g1(z)
    return h_new, h_new


def init_readout(
    key: jax.Array,
    hidden_size: int,
    output_size: int,
    *,
    init: str = "default",
    dtype: DTypeLike = jnp.float32,
) -> ReadoutParams:
    """Initialise the output layer y = g2(W_ya a + b_y).

    Args:
        key: a PRNG key.
        hidden_size: H, the size of the hidden state it reads.
        output_size: O.
        init: "default" (Glorot-uniform w_ya, zero b_y) or "torch"
            (`torch.nn.Linear`'s U(-1/sqrt(H), 1/sqrt(H)) for both).
        dtype: a floating dtype.

    Returns:
        ReadoutParams(w_ya [O, H], b_y [O]).
    """
    fn = "init_readout"
    hidden_size, output_size, init, dtype = _initializers.sizes(
        fn, hidden_size, output_size, init, dtype
    )
    key_w, key_b = jax.random.split(key)
    if init == "torch":
        bound = 1.0 / math.sqrt(hidden_size)
        return ReadoutParams(
            _initializers.uniform(key_w, (output_size, hidden_size), bound, dtype),
            _initializers.uniform(key_b, (output_size,), bound, dtype),
        )
    bound = math.sqrt(6.0 / (hidden_size + output_size))
    return ReadoutParams(
        _initializers.uniform(key_w, (output_size, hidden_size), bound, dtype),
        jnp.zeros((output_size,), dtype),
    )


def readout(
    params: ReadoutParams, h: ArrayLike, *, activation: Activation = "identity"
) -> jax.Array:
    """The lecture's output layer, y = g2(w_ya @ h + b_y), over any leading axes.

    Apply it to all outputs of `unroll` (many-to-many, ys [T, H] -> [T, O]) or
    to the last one (many-to-one, [H] -> [O]).

    Args:
        params: from `init_readout`; w_ya [O, H], b_y [O].
        h: hidden states [..., H], in the params' dtype.
        activation: g2: "identity" (the default: logits or regression
            outputs), "softmax", "sigmoid", "tanh", "relu", or a callable.

    Returns:
        y [..., O].

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> r = init_readout(jax.random.key(0), 5, 2)
        >>> readout(r, jnp.ones((7, 5)), activation="softmax").sum(-1).round(4).tolist()
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    """
    fn = "readout"
    if not isinstance(params, ReadoutParams):
        _checks.fail(
            fn,
            "params",
            "must be ReadoutParams",
            _checks.describe(params),
            kind=TypeError,
        )
    g2 = _activations.resolve(fn, "activation", activation, _activations.READOUT)
    w_ya = _checks.float_array(fn, "params.w_ya", params.w_ya, ndim=2)
    h = _checks.float_array(fn, "h", h)
    if h.ndim == 0 or h.shape[-1] != w_ya.shape[1]:
        _checks.fail(
            fn,
            "h",
            f"must end in H = {w_ya.shape[1]} (params.w_ya is "
            f"[O, H] = {tuple(w_ya.shape)})",
            f"shape {tuple(h.shape)}",
        )
    _checks.same_dtype(fn, "h", h, w_ya.dtype, "params")
    b_y = _checks.float_array(fn, "params.b_y", params.b_y, ndim=1)
    _checks.shape(fn, "params.b_y", b_y, (w_ya.shape[0],), "[O]")
    _checks.same_dtype(fn, "params.b_y", b_y, w_ya.dtype, "params.w_ya")
    y = h @ w_ya.T
    return g2(y + b_y.reshape((1,) * (y.ndim - 1) + b_y.shape))
