"""The linear impls: the minimal cells' recurrence, solved for every step.

A cell whose gates read x_t alone (`CellSpec.linear`: the minGRU, the
minLSTM) has the recurrence

    h_t = a_t * h_{t-1} + b_t,      (a_t, b_t) from x_t alone

so (a, b) of every step come from one matmul over all T, and what is left is
elementwise. Three forms solve it, each exact:

    "assoc"        `jax.lax.associative_scan` over the pairs (a_t, b_t), which
                   compose as (a, b) then (a', b') = (a' a, a' b + b')
                   (`jaxrnn.parallel`'s diagonal solve): O(log T) depth, for
                   parallel hardware.
    "assoc_log"    the same in log space (Heinsen 2023): log h_t = A_t +
                   logcumsumexp_k(log b_k - A_k), A_t = sum_{k<=t} log a_k,
                   plus exp(A_t) h_0; needs b_t > 0 (activation "positive").
    "linear_scan"  `jax.lax.scan` of the elementwise update: T steps of O(BH)
                   work, which is what a CPU runs fastest (benchmarks/README.md).

Masks hold the carry (a = 1, b = 0 where a step is masked), a reset at t
starts from the initial state (a_t = 0, b_t = a_t h_0 + b_t), and the starting
carry is folded into the first step, so every form honours what the
reference scan does. `checkpoint=K` splits T into segments of K steps, scanned
in order with each segment's coefficients and solve recomputed in the
backward pass: memory goes as the outputs plus one segment. The gradients
are `jax.grad`'s through the solve: there is no hand-written backward pass.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxrnn.parallel import _linear as _parallel_linear

FORMS = ("assoc", "assoc_log", "linear_scan")


def _edge(axis: int, reverse: bool, ndim: int) -> tuple:
    """The index of the first step to run along `axis` (the last in reverse)."""
    index = [slice(None)] * ndim
    index[axis] = -1 if reverse else 0
    return tuple(index)


def _assoc(a, b, h, *, axis, reverse, unroll):
    edge = _edge(axis, reverse, b.ndim)
    b = b.at[edge].add(a[edge] * h)
    return _parallel_linear.diagonal(a, b, reverse=reverse, axis=axis)


def _assoc_log(log_a, log_b, h, *, axis, reverse, unroll):
    # Both prefix sums are associative scans: on a CPU, lax.cumlogsumexp's
    # forward pass took 33x as long (808 ms against 24.5 ms at [16, 4096, 64]).
    scan = functools.partial(jax.lax.associative_scan, axis=axis, reverse=reverse)
    total = scan(jnp.add, log_a)
    summed = scan(jnp.logaddexp, log_b - total)
    return jnp.exp(total + summed) + jnp.exp(total) * jnp.expand_dims(h, axis)


def _linear_scan(a, b, h, *, axis, reverse, unroll):
    def step(h, ab):
        h = ab[0] * h + ab[1]
        return h, h

    a, b = jnp.moveaxis(a, axis, 0), jnp.moveaxis(b, axis, 0)
    _, hs = jax.lax.scan(step, h, (a, b), reverse=reverse, unroll=unroll)
    return jnp.moveaxis(hs, 0, axis)


SOLVES = {"assoc": _assoc, "assoc_log": _assoc_log, "linear_scan": _linear_scan}


def _segment(form, o, params, initial, h, xs, mask, reset, *, axis, reverse):
    """(final h, hs) of one run of steps from h: xs [..., D] with time on
    `axis`, mask and reset with the same leading axes (or None)."""
    log = form == "assoc_log"
    a, b = o.spec.linear(
        params, xs, activation=o.activation, log=log, matmul_dtype=o.matmul_dtype
    )
    if reset is not None:  # start from the initial state: h_t = a_t h_0 + b_t
        fresh = reset[..., None]
        b = jnp.where(fresh, a * jnp.expand_dims(initial, axis) + b, b)
        a = jnp.where(fresh, jnp.zeros_like(a), a)
    if mask is not None:  # hold the carry: h_t = h_{t-1}
        keep = mask[..., None]
        nothing = jnp.finfo(b.dtype).min / 4 if log else 0
        a = jnp.where(keep, a, jnp.zeros_like(a) if log else jnp.ones_like(a))
        b = jnp.where(keep, b, jnp.full_like(b, nothing))
    hs = SOLVES[form](a, b, h, axis=axis, reverse=reverse, unroll=o.unroll)
    final = jnp.take(hs, 0 if reverse else -1, axis=axis)
    if mask is not None:
        hs = jnp.where(mask[..., None], hs, jnp.zeros_like(hs))
    return final, hs


def run(form, o, params, carry, xs, *, direction, **unused):
    """One direction of one layer (the impl table's `run`): xs [B, T, F] and
    the carry h [B, H] -> (final h [B, H], hs [B, T, H]). `unused` holds the
    reference's `index`, `outputs` and `key`: these forms have no keyed
    option, and the outputs come with the solve."""
    reverse = direction == 1
    reset = o.reset if direction == 0 else o.reset_backward
    batch_size, seq_len = xs.shape[:2]
    if seq_len == 0:
        return carry, jnp.zeros((batch_size, 0, carry.shape[-1]), carry.dtype)
    segment = functools.partial(_segment, form, o, params, carry, reverse=reverse)
    size = o.checkpoint
    if size is None and form != "linear_scan":
        return segment(carry, xs, o.mask, reset, axis=1)
    if size is None:  # time-major throughout: one transpose in, one out (3-10%
        # faster than three of [B, T, H] each way, measured at B = 16)
        swap = lambda a: None if a is None else jnp.swapaxes(a, 0, 1)  # noqa: E731
        final, hs = segment(carry, swap(xs), swap(o.mask), swap(reset), axis=0)
        return final, swap(hs)
    size = 1 if size == "step" else size
    count = -(-seq_len // size)
    pad = count * size - seq_len
    mask = o.mask
    if pad and mask is None:
        mask = jnp.ones((batch_size, seq_len), bool)

    def parts(a, fill):
        """[B, T, ...] -> [count, K, B, ...], padded at the end with `fill`."""
        if a is None:
            return None
        widths = [(0, 0), (0, pad)] + [(0, 0)] * (a.ndim - 2)
        a = jnp.pad(a, widths, constant_values=fill)
        a = jnp.swapaxes(a, 0, 1)
        return a.reshape(count, size, *a.shape[1:])

    @jax.checkpoint
    def one(h, part):
        x, m, r = part
        return segment(h, x, m, r, axis=0)

    inputs = (parts(xs, 0), parts(mask, False), parts(reset, False))
    final, hs = jax.lax.scan(one, carry, inputs, reverse=reverse)
    hs = hs.reshape(count * size, batch_size, -1)[:seq_len]
    return final, jnp.swapaxes(hs, 0, 1)
