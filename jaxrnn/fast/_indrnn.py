"""The IndRNN's fast forms: its XLA layout and its kernel layout, beside the
hand-derived gradient they share.

The reference equation is `jaxrnn.cells._indrnn.indrnn_step`; here it is
written for a batch block [B, .], with u = w_hh [H]:

    h_new = g1(xw + u * h)                (xw: the hoisted x @ w_ih^T + b)

and differentiated by hand as the Elman RNN is (`_elman.grad`), with the
recurrent product elementwise: dz = dh * g1'(h_new), dh_prev = dz * u, and
du = sum over steps and rows of dz * h_prev (`Cell.w_hh_grad`).
"""

from __future__ import annotations

import functools

import jax.numpy as jnp

from jaxrnn.cells._activations import ACTIVATIONS
from jaxrnn.fast import _elman
from jaxrnn.fast._cell import Cell

FAST_ACTIVATIONS = _elman.FAST_ACTIVATIONS


def _forward(g1, unpack, u, extra, xw, carry):
    (h,) = carry
    return (g1(xw[0] + unpack(u)[None] * h),), ()


def _backward(activation, pack, unpack, u, extra, saved, prev, new, dcarry):
    dz = _elman.grad(activation, new, dcarry)
    return (dz * unpack(u)[None],), pack(dz), pack(dz)


def _u_grad(dz, h_prev, saved):
    return jnp.sum(dz * h_prev, axis=(0, 1))


def _one(a):
    return a[0]


def _same(a):
    return a


def _tuple(a):
    return (a,)


def xla(activation: str) -> Cell:
    """The IndRNN with g1 = `activation` in the XLA layout."""
    return Cell(
        functools.partial(_forward, _elman.xla_g1(activation), _same),
        functools.partial(_backward, activation, _same, _same),
        False,
        1,
        w_hh_grad=_u_grad,
    )


def kernel(activation: str) -> Cell:
    """The IndRNN with g1 = `activation` in the kernel layout (u as a
    one-block tuple, like the other cells' recurrent weights)."""
    return Cell(
        functools.partial(_forward, ACTIVATIONS[activation].fn, _one),
        functools.partial(_backward, activation, _tuple, _one),
        False,
        1,
        kernel=True,
        w_hh_grad=_u_grad,
    )
