"""Streaming: a layer's state carried across calls, chunk by chunk.

`init_state` gives the state a stream starts from; `stream_layer` runs one
chunk (or one step) from a state and returns the state after it. Running a
sequence in chunks of any sizes gives the outputs and final state of one
`apply_layer` call over the whole sequence, because a forward recurrence's
state after step t depends only on the steps up to t. That is not true of a
bidirectional layer, whose backward direction starts from the sequence's
end, so `stream_layer` refuses one.

This is PyTorch's `out, (h_n, c_n) = lstm(x, (h_n, c_n))` threading and
Keras' `stateful=True`, as a pure function: the state is a value you hold.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxrnn import _checks
from jaxrnn.layer._apply import DEFAULTS, run
from jaxrnn.layer._params import LayerParams, State, initial_carry, structure


def init_state(params: LayerParams, batch_size: int) -> State:
    """The state a stream starts from, for `batch_size` streams.

    The learned initial state if the layer has one (`learn_initial_state`),
    else zeros; in `apply_layer`'s layout, [L*D, B, R] per array, an
    LSTMCarry(h, c) for LSTM-like cells. It is also what `apply_layer` uses
    when it is given no `initial_state`.

    Args:
        params: from `init_layer`.
        batch_size: B, the number of streams (>= 1).

    Returns:
        The state, in the params' dtype.

    Examples:
        >>> import jax
        >>> from jaxrnn import init_layer
        >>> p = init_layer(jax.random.key(0), "lstm", 3, 5, num_layers=2)
        >>> init_state(p, 4).h.shape
        (2, 4, 5)
    """
    fn = "init_state"
    spec = structure(fn, params)
    batch_size = _checks.positive_int(fn, "batch_size", batch_size)
    return initial_carry(fn, params, spec, None, batch_size)


def stream_layer(
    params: LayerParams,
    state: State,
    xs: ArrayLike,
    *,
    reset: ArrayLike | None = None,
    mask: ArrayLike | None = None,
    matmul_dtype: Any = None,
    impl: str = "auto",
) -> tuple[jax.Array, State]:
    """Run one chunk of B streams from `state`; return its outputs and the new state.

        state = init_state(params, B)
        for chunk in chunks:                      # any sizes, 1 included
            ys, state = stream_layer(params, state, chunk)

    gives the outputs and final state of `apply_layer(params, whole)`. Every
    argument but the options is an array, so `jax.jit(stream_layer,
    static_argnames=("impl", "matmul_dtype"))` compiles it once per chunk
    shape.

    Args:
        params: from `init_layer`, with one direction.
        state: from `init_state`, or the state a previous call returned.
        xs: a chunk [B, T, D] (T may be 1, or 0), or one step [B, D].
        reset: optional bool [B]: the streams that start a new sequence with
            this chunk. Their state is set to `init_state`'s before the first
            step; the others continue. (Keras' `reset_states()`, per stream.)
        mask: optional bool [B, T] ([B] for one step): where False, that
            stream is idle at that step: its state is held and its output is
            zero. Streams start and end at different times this way.
        matmul_dtype: as for `apply_layer`.
        impl: as for `apply_layer`.

    Returns:
        (ys, state): outputs [B, T, R] ([B, R] for one step) and the state
        after the chunk, in the layout of `init_state`.

    Raises:
        ValueError: a bidirectional layer (its backward direction reads each
            sequence from its end, so its outputs depend on steps that have
            not arrived yet); and `apply_layer`'s errors for xs, state,
            reset, mask and impl, each naming stream_layer.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrnn import init_layer, apply_layer
        >>> p = init_layer(jax.random.key(0), "gru", 3, 5)
        >>> xs = jax.random.normal(jax.random.key(1), (2, 7, 3))
        >>> state = init_state(p, 2)
        >>> first, state = stream_layer(p, state, xs[:, :4])
        >>> second, state = stream_layer(p, state, xs[:, 4:])
        >>> whole, final = apply_layer(p, xs)
        >>> bool(jnp.allclose(jnp.concatenate([first, second], 1), whole, atol=1e-6))
        True
    """
    fn = "stream_layer"
    spec = structure(fn, params)
    if params.num_directions != 1:
        _checks.fail(
            fn,
            "params",
            "must be a unidirectional layer: the backward direction of a "
            "bidirectional one reads each sequence from its end, so its outputs "
            "depend on steps that have not arrived yet",
            "bidirectional=True",
            "Run whole sequences with apply_layer.",
        )
    xs = _checks.float_array(
        fn, "xs", xs, hint="It takes a chunk [B, T, D] or one step [B, D]."
    )
    if xs.ndim not in (2, 3):
        _checks.fail(
            fn,
            "xs",
            "must be a chunk [B, T, D] or one step [B, D]",
            f"shape {tuple(xs.shape)}",
        )
    one_step = xs.ndim == 2
    batch_size = xs.shape[0]
    state = initial_carry(fn, params, spec, state, batch_size)
    if reset is not None:
        reset = _checks.bool_mask(fn, reset, "reset")
        _checks.shape(fn, "reset", reset, (batch_size,), "[B]", "One flag per stream.")
        fresh = initial_carry(fn, params, spec, None, batch_size)
        state = jax.tree.map(
            lambda new, old: jnp.where(reset[None, :, None], new, old), fresh, state
        )
    if one_step:
        xs = xs[:, None]
        if mask is not None:
            mask = _checks.bool_mask(fn, mask, "mask")
            _checks.shape(fn, "mask", mask, (batch_size,), "[B] (for one step [B, D])")
            mask = mask[:, None]
    changed = {"mask": mask, "initial_state": state, "training": False}
    ys, state = run(
        fn,
        params,
        xs,
        **(DEFAULTS | changed | {"matmul_dtype": matmul_dtype, "impl": impl}),
    )
    return (ys[:, 0] if one_step else ys), state
