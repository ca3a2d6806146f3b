"""Unrolling a step over time: `lax.scan`, and its Python-loop twin.

The "unrolled" picture of the lecture, one copy of the cell per time step with
the same weights, is exactly `jax.lax.scan(functools.partial(step, params),
carry, xs)`: scan traces the step once and applies it T times.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxrnn import _checks

Step = Callable[..., tuple[Any, jax.Array]]


def lengths_to_mask(lengths: ArrayLike, seq_len: int) -> jax.Array:
    """Boolean mask `[..., T]` that is True where `t < lengths[...]`.

    Args:
        lengths: integer array of any shape `[...]` (a scalar for one sequence).
            Values above `seq_len` act as `seq_len`; values <= 0 mask every step.
        seq_len: T, the number of time steps.

    Returns:
        Boolean array of shape `[..., T]`.

    Examples:
        >>> import jax.numpy as jnp
        >>> lengths_to_mask(jnp.array([0, 2, 5]), 3).astype(int).tolist()
        [[0, 0, 0], [1, 1, 0], [1, 1, 1]]
    """
    fn = "lengths_to_mask"
    lengths = _checks.int_array(fn, "lengths", lengths)
    if isinstance(seq_len, bool) or not isinstance(seq_len, numbers.Integral):
        _checks.fail(fn, "seq_len", "must be an int", repr(seq_len), kind=TypeError)
    if seq_len < 0:
        _checks.fail(fn, "seq_len", "must be >= 0", repr(seq_len))
    steps = jnp.arange(seq_len, dtype=lengths.dtype)
    return steps.reshape((1,) * lengths.ndim + (seq_len,)) < lengths[..., None]


def resolve_mask(
    fn: str,
    seq_len: int,
    mask: ArrayLike,
    lengths: ArrayLike,
    batch: tuple[int, ...] = (),
    hint: str = "",
) -> jax.Array | None:
    """Check `mask` [*batch, T] or `lengths` [*batch] and return a bool mask or
    None; `hint` ends the message of a shape error."""
    name = "lengths" if batch else "length"
    if mask is not None and lengths is not None:
        _checks.fail(fn, f"mask and {name}", "are exclusive (give one)", "both")
    if mask is not None:
        return _time_mask(fn, "mask", mask, seq_len, batch, hint)
    if lengths is not None:
        lengths = _checks.as_array(fn, name, lengths)
        if not jnp.issubdtype(lengths.dtype, jnp.integer):
            _checks.fail(
                fn,
                name,
                "must have an integer dtype",
                f"dtype {lengths.dtype.name}",
                kind=TypeError,
            )
        _checks.shape(
            fn,
            name,
            lengths,
            batch,
            "[B]" if batch else "[] (a scalar)",
            "unroll runs one sequence; use jax.vmap or apply_layer for a batch."
            if not batch
            else hint,
        )
        return lengths_to_mask(lengths, seq_len)
    return None


# The mask rule for every Python path: a masked step's carry is held
# (`hold`); its output, input and gradients are zero (`zero_masked`). The
# kernels' one copy is `live` and `held` in fast/csrc/cells.h.


def _along(keep: jax.Array, a: jax.Array) -> jax.Array:
    """keep [*lead] shaped to broadcast over a [*lead, ...]."""
    return keep.reshape(keep.shape + (1,) * (a.ndim - keep.ndim))


def hold(keep: jax.Array | None, new: Any, old: Any) -> Any:
    """The carry after a step under the mask rule: `new` where keep is True,
    `old` (held) where it is False. keep is bool over the leaves' leading
    axes (a scalar for one example, [B] for a batch); None keeps new."""
    if keep is None:
        return new
    return jax.tree.map(lambda a, b: jnp.where(_along(keep, a), a, b), new, old)


def zero_masked(xs: Any, mask: jax.Array | None) -> Any:
    """xs with every masked-out step set to zero: a step's output (or the
    gradients it passes on), or the inputs, so that padding never reaches a
    cell.

    `mask` is bool over the leading axes of every leaf of the pytree xs
    ([*batch, T] for inputs [*batch, T, ...]). A masked step's output and
    carry are discarded by a `where`, but the backward pass still multiplies
    the step's Jacobian at that input by a zero cotangent: with a NaN or an
    infinity in the padding that product is NaN, and it reaches every
    weight's gradient. With the input zeroed, the masked step is evaluated at
    a finite point and contributes exact zeros, whatever the padding held.
    """
    if mask is None:
        return xs
    return jax.tree.map(lambda a: jnp.where(_along(mask, a), a, jnp.zeros_like(a)), xs)


def _time_mask(
    fn: str, arg: str, mask: Any, seq_len: int, batch: tuple[int, ...], hint: str = ""
) -> jax.Array:
    """A bool array [*batch, T] along the time axis of xs (a mask or a reset)."""
    mask = _checks.bool_mask(fn, mask, arg)
    _checks.shape(
        fn,
        arg,
        mask,
        (*batch, seq_len),
        "[B, T]" if batch else "[T]",
        f"T = {seq_len} is the length of the time axis of xs. {hint}".strip(),
    )
    return mask


def resolve_reset(
    fn: str,
    seq_len: int,
    reset: ArrayLike,
    batch: tuple[int, ...] = (),
    hint: str = "",
) -> jax.Array | None:
    """Check an optional bool reset mask [*batch, T]."""
    if reset is None:
        return None
    return _time_mask(fn, "reset", reset, seq_len, batch, hint)


CHECKPOINTS = ("step", "sqrt")


def resolve_checkpoint(fn: str, checkpoint: Any, seq_len: int) -> str | int | None:
    """None, "step", or a segment length K >= 1 ("sqrt" gives ceil(sqrt(T)))."""
    if checkpoint is None or checkpoint == "step":
        return checkpoint
    if checkpoint == "sqrt":
        return max(1, math.ceil(math.sqrt(seq_len)))
    if isinstance(checkpoint, bool) or not isinstance(checkpoint, numbers.Integral):
        _checks.fail(
            fn,
            "checkpoint",
            "must be None, 'step', 'sqrt' or a segment length (a positive int)",
            repr(checkpoint),
            kind=TypeError if not isinstance(checkpoint, str) else ValueError,
        )
    return _checks.positive_int(fn, "checkpoint", checkpoint)


def scan(
    step_fn: Callable[[Any, Any], tuple[Any, jax.Array]],
    carry: Any,
    xs: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    reset: ArrayLike | None = None,
    reverse: bool = False,
    unroll: int | bool = 1,
    checkpoint: str | int | None = None,
) -> tuple[Any, jax.Array]:
    """The scan behind `unroll`, on checked arguments; xs may be a pytree.

    Where reset[t] the step starts from the initial carry; where not mask[t]
    the carry is held (a reset there has no effect) and y_t = 0. The caller
    zeroes masked inputs first (`zero_masked`), once per sequence: `unroll`
    does, and so does `apply_layer` for every layer at once. `checkpoint`
    is resolved already: None, "step" or a segment length.
    """
    if mask is None and reset is None:
        return _remat_scan(step_fn, carry, xs, bool(reverse), unroll, checkpoint)
    initial = carry

    def body(carry, inputs):
        x, keep, fresh = inputs
        start = carry
        if fresh is not None:
            start = jax.tree.map(
                lambda first, old: jnp.where(fresh, first, old), initial, carry
            )
        new_carry, y = step_fn(start, x)
        return hold(keep, new_carry, carry), zero_masked(y, keep)

    inputs = (xs, mask, reset)
    return _remat_scan(body, carry, inputs, bool(reverse), unroll, checkpoint)


def _remat_scan(body, carry, inputs, reverse, unroll, checkpoint):
    """lax.scan, keeping for the backward pass everything (None), only the
    carry of every step ("step"), or only the carry at the start of every
    segment of K steps (an int K: each segment is recomputed in the backward
    pass, so memory goes as T/K carries plus K steps' residuals)."""
    if checkpoint is None:
        return jax.lax.scan(body, carry, inputs, reverse=reverse, unroll=unroll)
    if checkpoint == "step":
        return jax.lax.scan(
            jax.checkpoint(body), carry, inputs, reverse=reverse, unroll=unroll
        )
    size = checkpoint
    seq_len = jax.tree.leaves(inputs)[0].shape[0]
    full, rest = divmod(seq_len, size)

    @jax.checkpoint
    def segment(carry, part):
        return jax.lax.scan(body, carry, part, reverse=reverse, unroll=unroll)

    parts = jax.tree.map(
        lambda a: a[: full * size].reshape(full, size, *a.shape[1:]), inputs
    )
    tail = jax.tree.map(lambda a: a[full * size :], inputs)
    ys_tail = None
    if reverse and rest:
        carry, ys_tail = segment(carry, tail)
    carry, ys = jax.lax.scan(segment, carry, parts, reverse=reverse)
    if not reverse and rest:
        carry, ys_tail = segment(carry, tail)
    ys = jax.tree.map(lambda a: a.reshape(full * size, *a.shape[2:]), ys)
    if ys is not None and ys_tail is not None:
        ys = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), ys, ys_tail)
    return carry, ys


def _unroll_factor(fn: str, unroll: Any) -> int | bool:
    if isinstance(unroll, bool):
        return unroll
    return _checks.positive_int(fn, "unroll", unroll)


def _sequence(fn: str, xs: Any) -> jax.Array:
    return _checks.float_array(
        fn,
        "xs",
        xs,
        ndim=2,
        hint="It takes one sequence [T, D]; use jax.vmap for a batch [B, T, D], "
        "or apply_layer, which takes [B, T, D].",
    )


def unroll(
    step: Step,
    params: Any,
    carry: Any,
    xs: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    length: ArrayLike | None = None,
    reset: ArrayLike | None = None,
    reverse: bool = False,
    unroll: int | bool = 1,
    checkpoint: str | int | None = None,
) -> tuple[Any, jax.Array]:
    """Run `step` over a sequence with `jax.lax.scan`.

    Equivalent Python loop (what `unroll_loop` runs):

        ys, initial = [], carry
        for t in (reversed(range(T)) if reverse else range(T)):
            start = initial if reset[t] else carry   # a new episode starts
            new_carry, y = step(params, start, xs[t])
            if mask[t]:
                carry = new_carry
            else:                       # masked step: hold the carry
                y = zeros_like(y)
            ys[t] = y                   # outputs stay aligned with xs
        return carry, stack(ys)

    Args:
        step: a step function `step(params, carry, x) -> (carry, y)`, such as
            `rnn_step`, `lstm_step` or `gru_step` (use functools.partial to
            fix keyword options like the Elman activation).
        params: the step's parameters.
        carry: the initial carry (for example `init_lstm_carry(H)`).
        xs: one sequence [T, D].
        mask: optional bool [T]. Where False the carry is held and y_t = 0.
        length: optional integer scalar, the sequence's valid length: the
            same as mask = arange(T) < length. Lengths above T act as T;
            a length of 0 returns the initial carry and all-zero outputs.
        reset: optional bool [T]. Where True, the carry is set back to the
            initial `carry` before step t reads xs[t] (in the order the steps
            run, so with reverse=True a reset at t starts a new segment that
            runs down from t). A reset on a masked step has no effect. Use it
            to pack several sequences into one row.
        reverse: run from t = T-1 down to 0. Outputs stay aligned with xs, so
            ys[t] is the output after reading xs[t]. With a length, the
            padding at the end is skipped and the reverse pass starts at the
            last valid step.
        unroll: scan's unroll factor (an int >= 1, or True for a full unroll).
        checkpoint: what the backward pass keeps (rematerialisation; the
            values and gradients are the same for every choice):
            None (the default) keeps every step's intermediates, memory
            O(T); "step" keeps only each step's carry and recomputes the
            step; an int K keeps only the carry at the start of every K-step
            segment and recomputes the segment, memory O(T/K + K); "sqrt"
            is K = ceil(sqrt(T)), memory O(sqrt(T)), for about one extra
            forward pass of compute.

    Returns:
        (final_carry, ys): the carry after the last step that was not masked,
        and the outputs [T, H].

    Raises:
        ValueError, TypeError: for a badly shaped or typed xs, mask or length,
            at trace time (and the step's own errors for params and carry).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> p = init_lstm(jax.random.key(0), 3, 5)
        >>> carry, ys = unroll(lstm_step, p, init_lstm_carry(5), jnp.ones((7, 3)),
        ...                    length=4)
        >>> ys.shape, float(abs(ys[4:]).max())
        ((7, 5), 0.0)
    """
    fn = "unroll"
    xs = _sequence(fn, xs)
    mask = resolve_mask(fn, xs.shape[0], mask, length)
    reset = resolve_reset(fn, xs.shape[0], reset)
    unroll = _unroll_factor(fn, unroll)
    checkpoint = resolve_checkpoint(fn, checkpoint, xs.shape[0])
    return scan(
        functools.partial(step, params),
        carry,
        zero_masked(xs, mask),
        mask=mask,
        reset=reset,
        reverse=reverse,
        unroll=unroll,
        checkpoint=checkpoint,
    )


def unroll_loop(
    step: Step,
    params: Any,
    carry: Any,
    xs: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    length: ArrayLike | None = None,
    reset: ArrayLike | None = None,
    reverse: bool = False,
) -> tuple[Any, jax.Array]:
    """The Python-loop twin of `unroll`: the test oracle, and for teaching.

    Same arguments and results as `unroll` (without `unroll=`). It runs
    eagerly, one step at a time; the mask must be concrete (not traced).
    """
    fn = "unroll_loop"
    xs = _sequence(fn, xs)
    seq_len = xs.shape[0]
    mask = resolve_mask(fn, seq_len, mask, length)
    reset = resolve_reset(fn, seq_len, reset)
    initial = carry
    if seq_len == 0:
        x = jax.ShapeDtypeStruct(xs.shape[1:], xs.dtype)
        y = jax.eval_shape(lambda c, x: step(params, c, x)[1], carry, x)
        return carry, jnp.zeros((0, *y.shape), y.dtype)
    ys = [None] * seq_len
    for t in reversed(range(seq_len)) if reverse else range(seq_len):
        start = initial if reset is not None and bool(reset[t]) else carry
        new_carry, y = step(params, start, xs[t])
        if mask is None or bool(mask[t]):
            carry = new_carry
            ys[t] = y
        else:
            ys[t] = jnp.zeros_like(y)
    return carry, jnp.stack(ys)
