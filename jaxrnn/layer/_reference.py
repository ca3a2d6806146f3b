"""The reference runner: one direction of one layer, as the lecture's
unrolled network.

Each example runs the cell's step under the scan of `unroll`
(`jaxrnn._unroll.scan`), with its mask, resets, recurrent-dropout mask and
zoneout; `jax.vmap` maps that over the batch. This is the spec that every
fast path is tested against.
"""

from __future__ import annotations

import functools

import jax

from jaxrnn import _unroll
from jaxrnn.layer import _regularise
from jaxrnn.layer._options import Options


def run(o: Options, cell_params, carry, xs, *, index, direction, outputs, key):
    """One direction of one layer over the batch: the vmapped scan of
    `unroll` over the cell's step, with the regularisers' masks.

    Args:
        o: the layer's resolved options.
        cell_params: this layer's and direction's cell params.
        carry: the initial carry, leaves [B, .].
        xs: this layer's inputs [B, T, F].
        index: layer * num_directions + direction (for the masks' keys).
        direction: 0 forward, 1 backward.
        outputs: whether to stack every step's output (else ys is None).
        key: the layer's PRNG key, or None.

    Returns:
        (final carry, ys [B, T, R] or None).
    """
    batch_size, seq_len = xs.shape[:2]
    recurrent_mask = zone_masks = None
    if o.recurrent_rate > 0:
        shape = (batch_size, jax.tree.leaves(carry)[0].shape[-1])
        recurrent_mask = _regularise.recurrent_mask(
            key, index, o.recurrent_rate, shape, xs.dtype
        )
    if o.zoning and o.training:
        zone_masks = _regularise.zone_masks(key, index, o.zone_rates, carry, seq_len)
    reset = o.reset if direction == 0 else o.reset_backward
    one = functools.partial(_one, o, cell_params, direction=direction, outputs=outputs)
    axes = [
        None if a is None else 0 for a in (o.mask, reset, recurrent_mask, zone_masks)
    ]
    return jax.vmap(one, in_axes=(0, 0, *axes))(
        xs, carry, o.mask, reset, recurrent_mask, zone_masks
    )


def _one(
    o, cell_params, x, carry, m, r, recurrent_mask, zone_masks, *, direction, outputs
):
    """One direction of one example: the scan of `unroll`."""
    step_fn = functools.partial(o.step, cell_params)
    if recurrent_mask is not None:
        step_fn = functools.partial(step_fn, recurrent_mask=recurrent_mask)
    inputs = x
    if o.zoning:
        inputs = (x, zone_masks)
        step_fn = functools.partial(
            _regularise.zoned, step_fn, o.zone_rates, o.training
        )
    if not outputs:  # the final carry only: no [T, ...] outputs at all
        step_fn = functools.partial(_no_output, step_fn)
    return _unroll.scan(
        step_fn,
        carry,
        inputs,
        mask=m,
        reset=r,
        reverse=direction == 1,
        unroll=o.unroll,
        checkpoint=o.checkpoint,
    )


def _no_output(step_fn, carry, x):
    """A step that drops its output, so that the scan stacks nothing."""
    return step_fn(carry, x)[0], None
