"""The LSTM's fast forms: its XLA layout and its kernel layout, beside the
hand-derived gradients they share.

The reference equations are `jaxrnn.cells._lstm.lstm_gates` and
`lstm_state`; here they are written for a batch block [B, .]:

    z = xw + h @ w_hh^T                   (xw: the hoisted x @ w_ih^T + b)
    i, f, g, o = sigmoid(z_i), sigmoid(z_f), tanh(z_g), sigmoid(z_o)
    c_new = f * c + i * g
    h_new = o * tanh(c_new)

and differentiated by hand (`gate_grads`), with the derivatives g' taken
from the one activation table as functions of the saved outputs:

    dc   = dc_new + dh * o * tanh'(c_new)
    dz_i = dc * g * sigmoid'(i)           dz_f = dc * c * sigmoid'(f)
    dz_g = dc * i * tanh'(g)              dz_o = dh * tanh(c_new) * sigmoid'(o)
    dc_prev = dc * f,   dh_prev = dz @ w_hh
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrnn.cells._activations import ACTIVATIONS
from jaxrnn.fast import _kernel
from jaxrnn.fast._cell import Cell, gate_scale

_SIGMOID_GRAD = ACTIVATIONS["sigmoid"].grad
_TANH_GRAD = ACTIVATIONS["tanh"].grad


def gate_grads(saved, prev, new, dcarry):
    """The gradients at the gate pre-activations (i, f, g, o), and dL/dc_t,
    from the saved gates and the carries around the step."""
    i, f, g, o = saved
    tc = jnp.tanh(new[1])
    dh, dc = dcarry
    dc = dc + dh * o * _TANH_GRAD(tc)
    dz = (
        dc * g * _SIGMOID_GRAD(i),
        dc * prev[1] * _SIGMOID_GRAD(f),
        dc * i * _TANH_GRAD(g),
        dh * tc * _SIGMOID_GRAD(o),
    )
    return dz, dc


# The XLA layout: one [B, 4H] matmul and one tanh over the whole gate block.


def _xla_forward(w_hh_t, extra, xw, carry):
    h, c = carry
    z = xw[0] + h @ w_hh_t
    scale, offset = gate_scale("ssts", h.shape[-1], z.dtype)
    i, f, g, o = jnp.split(jnp.tanh(z * scale) * scale + offset, 4, axis=-1)
    c_new = f * c + i * g
    return (o * jnp.tanh(c_new), c_new), (i, f, g, o)


def _xla_backward(w_hh, extra, saved, carry_prev, carry_new, dcarry):
    dz, dc = gate_grads(saved, carry_prev, carry_new, dcarry)
    dz = jnp.concatenate(dz, axis=-1)
    return (dz @ w_hh, dc * saved[1]), dz, dz


# The kernel layout: one [H, H] block of w_hh per gate, one matmul each.


def _kernel_forward(w_t, extra, xw, carry):
    h, c = carry
    z = [x + _kernel.dot(h, w) for x, w in zip(xw, w_t)]
    i, f, o = jax.nn.sigmoid(z[0]), jax.nn.sigmoid(z[1]), jax.nn.sigmoid(z[3])
    g = jnp.tanh(z[2])
    c_new = f * c + i * g
    return (o * jnp.tanh(c_new), c_new), (i, f, g, o)


def _kernel_backward(w, extra, saved, prev, new, dcarry):
    dz, dc = gate_grads(saved, prev, new, dcarry)
    return (_kernel.dots(dz, w), dc * saved[1]), dz, dz


def xla(activation: str | None = None) -> Cell:
    """The LSTM in the XLA layout (the activation is the RNN's only)."""
    return Cell(_xla_forward, _xla_backward, False, 1)


def kernel(activation: str | None = None) -> Cell:
    """The LSTM in the kernel layout."""
    return Cell(_kernel_forward, _kernel_backward, False, 4, kernel=True)
