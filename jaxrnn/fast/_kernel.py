"""The kernel layout (impl="pallas"): sizes, padding and the accumulator.

The XLA layout of the fast cells is written for XLA:CPU: one matmul for all
G gates and slices of it, one tanh over the whole gate block, and gate
gradients joined with a concatenate. The GPU lowering of Pallas (Triton)
accepts none of that inside a kernel: it has no concatenate and no slice of
a value, every array in a kernel must have a power-of-two size, and its
matmul wants each side at least 16. So each cell's kernel layout (`kernel`
in `_elman`, `_lstm`, `_gru`) differs from its XLA layout in layout only:

- the recurrent weights enter the loop as G blocks [H, H], one per gate, and
  a step does one matmul per gate;
- a backward step returns one gradient array per gate; they are joined
  after the loop, outside the kernel;
- `pad` pads the batch and the hidden units with zeros to a power of two of
  at least 16 (`size`), and `unpad` drops the padding; the batch then runs
  as programs of TILE rows. A padded unit has zero weights into and out of
  it, so it never reaches a real unit, and its gradients are dropped with
  it;
- bfloat16 and float16 compute in float32 (`accumulator`): every matmul
  accumulates in float32, the gates are float32, and the carry (h, and the
  LSTM's cell state c) stays float32 across all T steps inside the kernel.
  What leaves the kernel (the outputs, the final carry and what the backward
  pass keeps) is rounded to the input's dtype. float32 and float64 compute
  in their own dtype.

On a CPU the same cells run in Pallas' interpret mode, so the padded shapes
and the float32 arithmetic that a GPU kernel uses are the ones the tests
compare with the reference.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

# The batch rows of one program of a kernel: the padded batch (a power of
# two, at least 16) splits into programs of this many rows, which run on
# separate cores of a GPU, each with its own copy of W_hh. 16 is the smallest
# tile Triton's matmul takes, and keeps a program's gates and carry small
# (an LSTM's four [16, H] gate tiles rather than [B, H]); it is reasoned, not
# measured: a GPU should settle it.
TILE = 16


def size(n: int) -> int:
    """The padded size of a kernel dimension: a power of two, at least 16."""
    return max(16, 1 << max(n - 1, 0).bit_length())


def accumulator(dtype: Any) -> jnp.dtype:
    """The dtype a kernel computes in: float32 for 16-bit floats, else dtype."""
    dtype = jnp.dtype(dtype)
    return jnp.dtype(jnp.float32) if dtype.itemsize < 4 else dtype


def dot(a: jax.Array, w: jax.Array) -> jax.Array:
    """a [B, K] @ w [K, N]: operands in w's dtype, accumulated in a's."""
    return jax.lax.dot(a.astype(w.dtype), w, preferred_element_type=a.dtype)


def dots(ds, ws) -> jax.Array:
    """sum_g ds[g] @ ws[g]: the gradient that reaches h through every gate."""
    total = dot(ds[0], ws[0])
    for d, w in zip(ds[1:], ws[1:]):
        total = total + dot(d, w)
    return total


def pad_axis(a: jax.Array, axis: int, n: int) -> jax.Array:
    """a with zeros appended along `axis` up to length n."""
    if a.shape[axis] == n:
        return a
    widths = [(0, 0)] * a.ndim
    widths[axis] = (0, n - a.shape[axis])
    return jnp.pad(a, widths)


def _pad_gates(a: jax.Array, gates: int, n: int) -> jax.Array:
    """Pad each gate's block of rows of a [G*H, ...] to n rows."""
    blocks = a.reshape(gates, a.shape[0] // gates, *a.shape[1:])
    return pad_axis(blocks, 1, n).reshape(gates * n, *a.shape[1:])


def pad(params: Any, carry: tuple, xs: jax.Array, mask: Any):
    """The kernel's sizes: B and H padded with zeros to `size(B)`, `size(H)`.

    params are a cell's (w_ih [G*H, D] and w_hh [G*H, H], or [H], give G);
    carry holds [B, H] leaves; xs is [T, B, D] (D stays: the input
    projection is one matmul outside the kernel); mask is [T, B] or None.
    """
    gates = params.w_ih.shape[0] // params.w_hh.shape[-1]
    hidden = size(params.w_hh.shape[-1])
    batch = size(xs.shape[1])
    if params.w_hh.ndim == 1:  # one recurrent weight a unit
        w_hh = pad_axis(params.w_hh, 0, hidden)
    else:
        w_hh = pad_axis(_pad_gates(params.w_hh, gates, hidden), 1, hidden)
    new = {"w_ih": _pad_gates(params.w_ih, gates, hidden), "w_hh": w_hh}
    if params.b is not None:
        new["b"] = _pad_gates(params.b, gates, hidden)
    if getattr(params, "b_hn", None) is not None:
        new["b_hn"] = pad_axis(params.b_hn, 0, hidden)
    carry = tuple(pad_axis(pad_axis(c, 0, batch), 1, hidden) for c in carry)
    xs = pad_axis(xs, 1, batch)
    mask = None if mask is None else pad_axis(mask, 1, batch)
    return params._replace(**new), carry, xs, mask


def unpad(final: tuple, ys: jax.Array, batch: int, hidden: int):
    """Drop `pad`'s rows and units from the final carry and ys [T, B, H]."""
    return tuple(c[:batch, :hidden] for c in final), ys[:, :batch, :hidden]
