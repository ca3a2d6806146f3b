"""The GRU's fast forms: its XLA layout and its kernel layout, beside the
hand-derived gradients they share.

The reference equations are `jaxrnn.cells._gru.gru_gates` and `gru_state`;
here they are written for a batch block [B, .]:

    hw = h @ w_hh^T                       (xw: the hoisted x @ w_ih^T + b)
    r = sigmoid(x_r + hw_r),  z = sigmoid(x_z + hw_z)
    h_n = hw_n + b_hn,        n = tanh(x_n + r * h_n)
    h_new = n + z * (h - n)               (= (1 - z) * n + z * h)

and differentiated by hand (`gate_grads`), with g' from the one activation
table as functions of the saved outputs:

    dn = dh * (1 - z) * tanh'(n)          (the gradient at x_n)
    dr = dn * h_n * sigmoid'(r),   dz = dh * (h - n) * sigmoid'(z)
    at h_n: dn * r;   dh_prev = dh * z + [dr, dz, dn * r] @ w_hh
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrnn.cells._activations import ACTIVATIONS
from jaxrnn.fast import _kernel
from jaxrnn.fast._cell import Cell, sigmoid

_SIGMOID_GRAD = ACTIVATIONS["sigmoid"].grad
_TANH_GRAD = ACTIVATIONS["tanh"].grad


def gate_grads(saved, prev, dcarry):
    """The gradients at r, z and n's pre-activations (dn is also the
    gradient at x_n), and at h_n (inside the reset product)."""
    r, z, n, h_n = saved
    (dh,) = dcarry
    dn = dh * (1 - z) * _TANH_GRAD(n)
    dr = dn * h_n * _SIGMOID_GRAD(r)
    dz = dh * (prev[0] - n) * _SIGMOID_GRAD(z)
    return (dr, dz, dn), (dr, dz, dn * r)


# The XLA layout: one [B, 3H] recurrent matmul, sliced; xw as three arrays.


def _xla_forward(w_hh_t, b_hn, xw, carry):
    (h,) = carry
    hidden = h.shape[-1]
    x_r, x_z, x_n = xw
    hw = h @ w_hh_t
    r = sigmoid(x_r + hw[:, :hidden])
    z = sigmoid(x_z + hw[:, hidden : 2 * hidden])
    h_n = hw[:, 2 * hidden :]
    if b_hn is not None:
        h_n = h_n + b_hn[None]
    n = jnp.tanh(x_n + r * h_n)
    return (n + z * (h - n),), (r, z, n, h_n)


def _xla_backward(w_hh, b_hn, saved, carry_prev, carry_new, dcarry):
    dxw, dhw = gate_grads(saved, carry_prev, dcarry)
    dxw, dhw = jnp.concatenate(dxw, axis=-1), jnp.concatenate(dhw, axis=-1)
    return (dcarry[0] * saved[1] + dhw @ w_hh,), dxw, dhw


# The kernel layout: one [H, H] block of w_hh per gate, one matmul each.


def _kernel_forward(w_t, b_hn, xw, carry):
    (h,) = carry
    x_r, x_z, x_n = xw
    r = jax.nn.sigmoid(x_r + _kernel.dot(h, w_t[0]))
    z = jax.nn.sigmoid(x_z + _kernel.dot(h, w_t[1]))
    h_n = _kernel.dot(h, w_t[2])
    if b_hn is not None:
        h_n = h_n + b_hn[None]
    n = jnp.tanh(x_n + r * h_n)
    return (n + z * (h - n),), (r, z, n, h_n)


def _kernel_backward(w, b_hn, saved, prev, new, dcarry):
    dxw, dhw = gate_grads(saved, prev, dcarry)
    return (dcarry[0] * saved[1] + _kernel.dots(dhw, w),), dxw, dhw


def xla(activation: str | None = None) -> Cell:
    """The GRU in the XLA layout (the activation is the RNN's only)."""
    return Cell(_xla_forward, _xla_backward, True, 3)


def kernel(activation: str | None = None) -> Cell:
    """The GRU in the kernel layout."""
    return Cell(_kernel_forward, _kernel_backward, True, 3, kernel=True)
