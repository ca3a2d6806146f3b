"""The Elman RNN's fast forms: its XLA layout and its kernel layout, beside
the hand-derived gradient they share.

The reference equation is `jaxrnn.cells._elman.rnn_step`; here it is
written for a batch block [B, .]:

    h_new = g1(xw + h @ w_hh^T)           (xw: the hoisted x @ w_ih^T + b)

and differentiated by hand, with g1' from the one activation table as a
function of the output: dz = dh * g1'(h_new), dh_prev = dz @ w_hh.
"""

from __future__ import annotations

import functools

from jaxrnn.cells._activations import ACTIVATIONS
from jaxrnn.fast import _kernel
from jaxrnn.fast._cell import Cell, sigmoid

# The activations with a fast form (the rest run the reference scan).
FAST_ACTIVATIONS = ("tanh", "sigmoid", "relu")


def grad(activation, new, dcarry):
    """The gradient at the pre-activation, from h_t = g1(z_t)."""
    (h_new,) = new
    (dh,) = dcarry
    return dh * ACTIVATIONS[activation].grad(h_new)


def xla_g1(activation):
    """g1 as XLA:CPU runs it fastest (the sigmoid through tanh)."""
    return sigmoid if activation == "sigmoid" else ACTIVATIONS[activation].fn


def _xla_forward(activation, w_hh_t, extra, xw, carry):
    (h,) = carry
    return (xla_g1(activation)(xw[0] + h @ w_hh_t),), ()


def _xla_backward(activation, w_hh, extra, saved, carry_prev, carry_new, dcarry):
    dz = grad(activation, carry_new, dcarry)
    return (dz @ w_hh,), dz, dz


def _kernel_forward(activation, w_t, extra, xw, carry):
    (h,) = carry
    return (ACTIVATIONS[activation].fn(xw[0] + _kernel.dot(h, w_t[0])),), ()


def _kernel_backward(activation, w, extra, saved, prev, new, dcarry):
    dz = grad(activation, new, dcarry)
    return (_kernel.dot(dz, w[0]),), (dz,), (dz,)


def xla(activation: str) -> Cell:
    """The Elman RNN with g1 = `activation` in the XLA layout."""
    return Cell(
        functools.partial(_xla_forward, activation),
        functools.partial(_xla_backward, activation),
        False,
        1,
    )


def kernel(activation: str) -> Cell:
    """The Elman RNN with g1 = `activation` in the kernel layout."""
    return Cell(
        functools.partial(_kernel_forward, activation),
        functools.partial(_kernel_backward, activation),
        False,
        1,
        kernel=True,
    )
