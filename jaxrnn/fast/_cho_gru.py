"""The reset-before GRU's fast forms: its XLA layout and its kernel layout,
beside the hand-derived gradient they share.

The reference equations are `jaxrnn.cells._cho_gru.cho_gru_step`'s; here they
are written for a batch block [B, .], with the recurrent weights split into
U_rz (the r and z blocks) and U_n:

    r, z = sigmoid(x_r + h @ U_r^T), sigmoid(x_z + h @ U_z^T)
    n = tanh(x_n + (r * h) @ U_n^T)       the second matmul waits for r
    h_new = n + z * (h - n)

and differentiated by hand:

    dn = dh * (1 - z) * tanh'(n)          (the gradient at x_n)
    d(rh) = dn @ U_n;  dr = d(rh) * h * sigmoid'(r)
    dz = dh * (h - n) * sigmoid'(z)
    dh_prev = dh * z + [dr, dz] @ U_rz + d(rh) * r
    dU_rz = sum [dr, dz]^T h_prev;  dU_n = sum dn^T (r * h_prev)

so w_hh's gradient reads r * h_prev for its n block (`Cell.w_hh_grad`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrnn.cells._activations import ACTIVATIONS
from jaxrnn.fast import _kernel
from jaxrnn.fast._cell import Cell, sigmoid

_SIGMOID_GRAD = ACTIVATIONS["sigmoid"].grad
_TANH_GRAD = ACTIVATIONS["tanh"].grad


def _gate_grads(saved, h, dh, drh):
    """dr and dz from the saved gates, h_prev, dh and the gradient at r * h."""
    r, z, n = saved
    return drh * h * _SIGMOID_GRAD(r), dh * (h - n) * _SIGMOID_GRAD(z)


def _candidate_grad(saved, dh):
    r, z, n = saved
    return dh * (1 - z) * _TANH_GRAD(n)


def w_hh_grad(dhw, h_prev, saved):
    """[dU_r; dU_z; dU_n] from dhw = [dr, dz, dn] [T, B, 3H]."""
    hidden = h_prev.shape[-1]
    rz = jnp.einsum("tbn,tbk->nk", dhw[..., : 2 * hidden], h_prev)
    n = jnp.einsum("tbn,tbk->nk", dhw[..., 2 * hidden :], saved[0] * h_prev)
    return jnp.concatenate([rz, n], axis=0)


# The XLA layout: w_hh^T [H, 3H] sliced into U_rz^T and U_n^T.


def _xla_forward(w_hh_t, extra, xw, carry):
    (h,) = carry
    hidden = h.shape[-1]
    x_r, x_z, x_n = xw
    hw = h @ w_hh_t[:, : 2 * hidden]
    r = sigmoid(x_r + hw[:, :hidden])
    z = sigmoid(x_z + hw[:, hidden:])
    n = jnp.tanh(x_n + (r * h) @ w_hh_t[:, 2 * hidden :])
    return (n + z * (h - n),), (r, z, n)


def _xla_backward(w_hh, extra, saved, prev, new, dcarry):
    (dh,) = dcarry
    h = prev[0]
    hidden = h.shape[-1]
    dn = _candidate_grad(saved, dh)
    drh = dn @ w_hh[2 * hidden :]
    dr, dz = _gate_grads(saved, h, dh, drh)
    drz = jnp.concatenate([dr, dz], axis=-1)
    dprev = dh * saved[1] + drz @ w_hh[: 2 * hidden] + drh * saved[0]
    return (dprev,), jnp.concatenate([drz, dn], axis=-1), None


# The kernel layout: one [H, H] block of w_hh per gate.


def _kernel_forward(w_t, extra, xw, carry):
    (h,) = carry
    x_r, x_z, x_n = xw
    r = jax.nn.sigmoid(x_r + _kernel.dot(h, w_t[0]))
    z = jax.nn.sigmoid(x_z + _kernel.dot(h, w_t[1]))
    n = jnp.tanh(x_n + _kernel.dot(r * h, w_t[2]))
    return (n + z * (h - n),), (r, z, n)


def _kernel_backward(w, extra, saved, prev, new, dcarry):
    (dh,) = dcarry
    h = prev[0]
    dn = _candidate_grad(saved, dh)
    drh = _kernel.dot(dn, w[2])
    dr, dz = _gate_grads(saved, h, dh, drh)
    dprev = dh * saved[1] + _kernel.dots((dr, dz), w[:2]) + drh * saved[0]
    return (dprev,), (dr, dz, dn), None


def xla(activation: str | None = None) -> Cell:
    """The reset-before GRU in the XLA layout (it takes no activation)."""
    return Cell(_xla_forward, _xla_backward, False, 3, w_hh_grad=w_hh_grad)


def kernel(activation: str | None = None) -> Cell:
    """The reset-before GRU in the kernel layout."""
    return Cell(
        _kernel_forward, _kernel_backward, False, 3, kernel=True, w_hh_grad=w_hh_grad
    )
