"""What the minimal cells share: gates that read x_t alone.

    (a_t, b_t) = coefficients(x_t)                 every gate from x_t only
    h_t = a_t * h_{t-1} + b_t                      diagonal and linear in h

The minGRU and the minLSTM (Feng et al. 2024) differ only in how they turn
x_t into a_t and b_t (their `coefficients`, beside each cell). Because no
gate reads h_{t-1}, a_t and b_t of every step come from one matmul over all
T, and the recurrence that is left is elementwise: `jaxrnn.layer`'s
"linear" impls solve it with an associative scan (plain or in log space)
or a sequential one, and the step below is the reference they are tested
against.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn.cells import _activations, _initializers, _ops, _validate


def init(
    fn: str,
    key: jax.Array,
    gates: int,
    input_size: Any,
    hidden_size: Any,
    init: Any,
    bias: bool,
    dtype: Any,
) -> tuple[jax.Array, jax.Array | None]:
    """(w_ih [G*H, D], b [G*H] or None): Glorot-uniform ("default") or
    U(-k, k) ("torch") weights, and a zero ("default") or U(-k, k) bias."""
    input_size, hidden_size, init, dtype = _initializers.sizes(
        fn, input_size, hidden_size, init, dtype
    )
    key_w, key_b = jax.random.split(key)
    w_ih = _initializers.input_weights(
        key_w, gates, input_size, hidden_size, init, dtype
    )
    b = None
    if bias:
        b = _initializers.bias(
            key_b, gates * hidden_size, hidden_size, init, dtype, summed=False
        )
    return w_ih, b


def project(fn: str, params: Any, x: jax.Array, gates: int, matmul_dtype: Any) -> list:
    """The G blocks of w_ih @ x + b, for x [..., D]: each [..., H]."""
    dot = _ops.matmul(fn, matmul_dtype)
    z = dot(x, params.w_ih.T)
    if params.b is not None:
        z = z + params.b.reshape((1,) * (z.ndim - 1) + params.b.shape)
    return jnp.split(z, gates, axis=-1)


def candidate(fn: str, activation: Any, z: jax.Array, log: bool) -> jax.Array:
    """g(z), or log g(z) for the log-space form, which needs g > 0: the
    "positive" activation (the paper's g)."""
    g = _activations.resolve(fn, "activation", activation)
    if not log:
        return g(z)
    if g is not _activations.positive:
        _checks.fail(
            fn,
            "activation",
            "must be 'positive' in the log-space form (log g needs g > 0)",
            repr(activation),
            "Use activation='positive' (Feng et al.'s g), or a form that is "
            "not in log space.",
        )
    return _activations.log_positive(z)


def step(
    fn: str,
    cls: type,
    gates: int,
    coefficients: Callable,
    params: Any,
    carry: Any,
    x: Any,
    *,
    activation: Any,
    recurrent_mask: Any,
    matmul_dtype: Any,
) -> tuple[jax.Array, jax.Array]:
    """One step of a minimal cell: h_new = a * h + b, (a, b) from x alone
    (h times the recurrent mask, where one is given)."""
    input_size, hidden_size, dtype = _validate.params(
        fn, params, cls, gates, recurrent=False
    )
    x = _validate.step_input(fn, x, input_size, dtype)
    h = _validate.carry_array(fn, "carry", carry, hidden_size, dtype)
    h_rec = _validate.recurrent_input(fn, h, recurrent_mask)
    a, b = coefficients(params, x, activation=activation, matmul_dtype=matmul_dtype)
    h_new = a * h_rec + b
    return h_new, h_new
