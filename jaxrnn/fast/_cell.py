"""What a fast cell is (`Cell`), and the XLA:CPU forms its layouts share.

Each cell's module (the one its `CellSpec.fast` names) has two layouts of
the same equations beside their gradients: `xla`, for XLA:CPU, and
`kernel`, for the Pallas kernels (`_kernel`).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp


class Cell(NamedTuple):
    """One cell's step and its hand-written derivative, on [B, .] blocks.

    forward(w_hh_t, extra, xw_t, carry) -> (carry, saved)
    backward(w_hh, extra, saved, carry_prev, carry_new, dcarry)
        -> (dcarry_prev, dxw, dhw)

    The carry is a tuple whose first entry is h, the step's output. xw_t is
    the hoisted input projection with its bias, as a tuple of `blocks`
    arrays [B, G*H / blocks]; w_hh_t is w_hh transposed, [H, G*H]. dxw and
    dhw are the gradients with respect to the input projection and to the
    recurrent product h @ w_hh^T (they differ only for the GRU, whose reset
    gate multiplies the latter). `extra` is the GRU's b_hn, else None.
    """

    forward: Callable
    backward: Callable
    split_recurrent: bool
    blocks: int
    # True for the kernel layout (impl="pallas"): w_hh_t, w_hh, xw_t, dxw and
    # dhw are tuples of one [., H] array per gate, and the carry and the
    # arithmetic are in `_kernel.accumulator`'s dtype.
    kernel: bool = False
    # w_hh's gradient from dhw [T, B, G*H], the carries' h before each step
    # [T, B, H] and the saved tuple; None: sum_t dhw_t^T h_{t-1}, as one
    # matmul. A cell whose recurrent product is not h @ w_hh^T gives its
    # own.
    w_hh_grad: Callable | None = None


def sigmoid(x: jax.Array) -> jax.Array:
    """sigmoid(x) = tanh(x / 2) / 2 + 1/2, which XLA:CPU evaluates faster
    than its logistic, and exactly in real arithmetic."""
    return jnp.tanh(x * 0.5) * 0.5 + 0.5


def gate_scale(blocks: str, hidden: int, dtype) -> tuple[jax.Array, jax.Array]:
    """Per-unit (scale, offset) that turn one tanh into each gate's activation.

    With s = 0.5 on the sigmoid blocks ("s") and s = 1 on the tanh blocks
    ("t"), and offset 1 - s on sigmoid blocks and 0 on tanh blocks, every
    gate of a step is tanh(z * s) * s + offset: one transcendental over the
    whole [B, G*H] block, which XLA:CPU runs several times faster than
    separate sigmoids and tanhs on the slices of z.
    """
    scale = jnp.concatenate(
        [jnp.full((hidden,), 0.5 if b == "s" else 1.0, dtype) for b in blocks]
    )
    offset = jnp.where(scale == 1, jnp.zeros((), dtype), jnp.full((), 0.5, dtype))
    return scale[None], offset[None]
