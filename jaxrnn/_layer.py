"""A pure functional layer with the feature set of torch.nn.RNN / LSTM / GRU, and more.

`init_layer` makes the parameters of a stack of `num_layers` layers, each with
one or two directions, of any registered cell; `apply_layer` runs it on a
batch-first [B, T, D] input with optional per-sequence lengths or a mask, an
initial state (given, learned or zero), per-step state resets, dropout
between layers, variational recurrent dropout and zoneout. It is built from
the reference steps and the scan behind `unroll`, by `jax.vmap` over the
batch: there is no second implementation of the cells.
"""

from __future__ import annotations

import functools
import numbers
import warnings
from typing import Any

import jax
import jax.numpy as jnp

from jaxrnn import _cells, _checks, _fused, _unroll
from jaxrnn._layer_params import LayerParams, State, initial_carry, structure
from jaxrnn._lstm import LSTMCarry

IMPLS = ("auto", "scan", "fused", "pallas")


def _rate(fn: str, arg: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _checks.fail(fn, arg, "must be a number in [0, 1)", repr(value), kind=TypeError)
    if not 0 <= value < 1:
        _checks.fail(fn, arg, "must be in [0, 1)", repr(value))
    return float(value)


def _zoneout_rates(fn: str, zoneout: Any, spec: _cells.CellSpec) -> Any:
    """Zoneout rates shaped like the carry: LSTMCarry(rate_h, rate_c) or a rate."""
    if isinstance(zoneout, (tuple, list)):
        if not spec.lstm_carry or len(zoneout) != 2:
            _checks.fail(
                fn,
                "zoneout",
                "must be a rate, or a pair (rate_h, rate_c) for an LSTM-like cell",
                repr(zoneout),
            )
        return LSTMCarry(*(_rate(fn, "zoneout", z) for z in zoneout))
    rate = _rate(fn, "zoneout", zoneout)
    return LSTMCarry(rate, rate) if spec.lstm_carry else rate


def _hidden(carry: State) -> jax.Array:
    return carry.h if isinstance(carry, LSTMCarry) else carry


def _merge(merge: str, outputs: list[jax.Array]) -> jax.Array:
    if len(outputs) == 1:
        return outputs[0]
    forward, backward = outputs
    if merge == "concat":
        return jnp.concatenate(outputs, -1)
    if merge == "sum":
        return forward + backward
    if merge == "mean":
        return (forward + backward) / 2
    return forward * backward


def _bernoulli_scale(key: jax.Array, rate: float, shape, dtype) -> jax.Array:
    """Inverted-dropout multipliers: 0 with probability rate, else 1 / (1 - rate)."""
    keep = jax.random.bernoulli(key, 1 - rate, shape)
    scale = jnp.asarray(1 / (1 - rate), dtype)
    return jnp.where(keep, scale, jnp.zeros((), dtype))


def apply_layer(
    params: LayerParams,
    xs: Any,
    *,
    lengths: Any = None,
    mask: Any = None,
    initial_state: State | None = None,
    reset: Any = None,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    zoneout: float | tuple[float, float] = 0.0,
    training: bool = True,
    key: jax.Array | None = None,
    include_initial: bool = False,
    return_sequences: bool = True,
    unroll: int | bool = 1,
    checkpoint: str | int | None = None,
    matmul_dtype: Any = None,
    impl: str = "auto",
) -> tuple[jax.Array, State]:
    """Run a stacked recurrent layer over a batch, like `torch.nn.LSTM.forward`.

    Every layer and direction is the reference step under the scan of
    `unroll`, mapped over the batch with `jax.vmap`:

        inputs = xs
        for layer in range(L):
            outs = [vmap(unroll(step, cells[layer][d], h0[layer*D + d], inputs,
                                mask=mask, reset=reset, reverse=(d == 1)))
                    for d in directions]
            outputs = merge(outs)                   # concat: [B, T, D*H]
            if residual and widths match: outputs += inputs
            if layer < L - 1: outputs = dropout(outputs)
            inputs = outputs
        return inputs, stack(final carries)

    Args:
        params: from `init_layer`.
        xs: batch-first inputs [B, T, D], in the params' dtype.
        lengths: optional integer [B], the valid length of each sequence
            (padding at the end). The final state is the one at the last valid
            step, padded outputs are zero, and the backward direction starts
            at each sequence's last valid step, as with PyTorch's packed
            sequences.
        mask: optional bool [B, T], instead of lengths: where False the carry
            is held and the output is zero.
        initial_state: optional state in PyTorch's layout: [L*D, B, R] with
            the layers in order and, within a layer, forward then backward;
            an LSTMCarry(h, c) of two such arrays for LSTM-like cells (c is
            [L*D, B, H]; R = H unless the LSTM projects h to P). When None:
            `params.initial_state` if the layer learns one, else zeros.
        reset: optional bool [B, T]. Where True, a new sequence starts at
            step t: the forward direction resets its carry to the initial
            state before reading xs[:, t], and the backward direction resets
            before reading xs[:, t - 1], so that every packed segment is
            processed as if it were alone (`test_layer_options` checks this
            against separate runs).
        dropout: the rate of dropout on the outputs of every layer but the
            last (PyTorch's `dropout`).
        recurrent_dropout: the rate of variational dropout on h_{t-1} where
            it enters w_hh (Gal & Ghahramani 2016): one mask per sequence,
            layer and direction, sampled before the scan and the same at every
            step. The carry itself is not dropped.
        zoneout: the zoneout rate (Krueger et al. 2016), or a pair (rate_h,
            rate_c) for LSTM-like cells: in training each unit of the carry
            keeps its previous value with this probability at every step; in
            evaluation the carry is the expectation, rate * old + (1 - rate)
            * new.
        training: True (the default) applies dropout, recurrent dropout and
            sampled zoneout, and then needs `key` if any rate is > 0. False is
            evaluation: no dropout, zoneout by its expectation, deterministic.
        key: the PRNG key for the stochastic options.
        include_initial: put the last layer's initial h at the front of the
            outputs, merged across directions like the outputs: ys is then
            [B, T + 1, F] and ys[:, 0] is h_0.
        return_sequences: True (the default) returns the outputs of every
            step. False returns only the last layer's final h, [B, F]
            (merged across directions: the forward direction's h after each
            sequence's last valid step, the backward direction's after
            t = 0), and its scan stacks no outputs at all, which is what
            makes a many-to-one loss O(T/K + K) in memory with checkpointing
            (Keras' `return_sequences=False`).
        checkpoint: rematerialisation for long sequences, as in `unroll`:
            None (keep everything), "step" (keep the carries), an int K
            (keep the carry every K steps) or "sqrt" (K = ceil(sqrt(T))).
            The same values and gradients, in less memory for more compute.
        matmul_dtype: the mixed-precision policy: jnp.bfloat16 (say) for the
            inputs of every matmul, accumulated in the params' dtype, while
            params, carries and the gate arithmetic stay in float32. None,
            the default, computes everything in the params' dtype.
        impl: "scan" runs the reference described above. "fused" runs the
            fast path of `jaxrnn._fused`: the whole batch at once in time-major
            blocks, the input projection as one matmul over all T (on a CPU
            only while it fits in cache), and a
            hand-written backward pass that keeps only the gate activations
            and does the weight-gradient matmuls once over all T. Same values
            and gradients (tested against the reference), no forward-mode
            derivative (`jax.jvp`, `jax.jacfwd`: use "scan"). It covers the
            rnn (tanh, sigmoid, relu), lstm and gru cells with every option
            except reset, recurrent_dropout, zoneout, checkpoint and
            matmul_dtype; "fused" with one of those is an error. "auto", the
            default, is "fused" wherever it applies, else "scan". "pallas" is
            the fused path with each time loop (forward, and the backward
            recurrence of its VJP) run as one Pallas kernel that keeps the
            weights and the carry on chip across all T steps
            (`jaxrnn._pallas`); it covers what "fused" covers, and computes
            16-bit inputs in float32. On a CPU it runs in Pallas' interpret
            mode, which is how it is tested; on a GPU it compiles through
            Triton and on a TPU through Mosaic, which the tests lower but
            have not run, so "auto" never picks it.

    Returns:
        (ys, final_state): outputs of the last layer [B, T, F], where F is
        D*R for merge="concat" (forward then backward features) and R for the
        other merges; and the final state of every layer and direction, in
        the layout of initial_state.

    Raises:
        ValueError, TypeError: at trace time, naming the argument, for an xs
            that is not [B, T, D], lengths not [B], a mask or reset not
            [B, T], an initial state of the wrong shape or dtype, or rates
            outside [0, 1).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrnn import init_layer
        >>> p = init_layer(jax.random.key(0), "lstm", 3, 5, num_layers=2,
        ...                bidirectional=True)
        >>> ys, state = apply_layer(p, jnp.ones((4, 7, 3)),
        ...                         lengths=jnp.array([7, 5, 1, 0]))
        >>> ys.shape, state.h.shape
        ((4, 7, 10), (4, 4, 5))
    """
    fn = "apply_layer"
    spec = structure(fn, params)
    xs = _checks.float_array(
        fn,
        "xs",
        xs,
        ndim=3,
        hint="It takes a batch-first [B, T, D]; add a batch axis with xs[None] "
        "for one sequence.",
    )
    batch_size, seq_len, input_size = xs.shape
    if input_size != params.input_size:
        _checks.fail(
            fn,
            "xs",
            f"must be [B, T, D] with D = {params.input_size} (the layer's input_size)",
            f"shape {tuple(xs.shape)}",
        )
    _checks.same_dtype(fn, "xs", xs, params.dtype, "params")
    mask = _unroll.resolve_mask(fn, seq_len, mask, lengths, batch=(batch_size,))
    reset = _unroll.resolve_reset(fn, seq_len, reset, batch=(batch_size,))
    checkpoint = _unroll.resolve_checkpoint(fn, checkpoint, seq_len)
    if not return_sequences and (include_initial or params.residual):
        _checks.fail(
            fn,
            "return_sequences",
            "must be True with include_initial=True or a residual layer",
            "False",
            "Both act on the outputs of every step.",
        )
    state = initial_carry(fn, params, spec, initial_state, batch_size)
    if impl not in IMPLS:
        _checks.fail(fn, "impl", f"must be one of {IMPLS}", repr(impl))
    rate = _rate(fn, "dropout", dropout)
    recurrent_rate = _rate(fn, "recurrent_dropout", recurrent_dropout)
    zone_rates = _zoneout_rates(fn, zoneout, spec)
    zoning = any(r > 0 for r in jax.tree.leaves(zone_rates))
    training = bool(training)
    if not training:
        rate = recurrent_rate = 0.0
    sampled = (rate, recurrent_rate, float(training and zoning))
    if any(sampled) and key is None:
        _checks.fail(
            fn,
            "key",
            "is needed when training with dropout, recurrent_dropout or zoneout",
            "None",
            "Pass a PRNG key for training, or training=False for evaluation.",
        )
    if rate > 0 and params.num_layers == 1:
        warnings.warn(
            f"{fn}: dropout={rate} has no effect with num_layers=1: it "
            "acts between layers, as in PyTorch.",
            stacklevel=2,
        )

    why_not = _fused.unsupported(
        spec.name,
        params.activation,
        reset=reset is not None,
        recurrent_dropout=recurrent_rate > 0,
        zoneout=zoning,
        checkpoint=checkpoint is not None,
        matmul_dtype=matmul_dtype is not None,
    )
    if impl in ("fused", "pallas") and why_not:
        _checks.fail(
            fn,
            "impl",
            f"must be 'auto' or 'scan' with {why_not} (the {impl} path lacks it)",
            repr(impl),
        )
    fused = impl != "scan" and not why_not

    step = spec.step
    if spec.name == "rnn":
        step = functools.partial(step, activation=params.activation)
    if matmul_dtype is not None:
        _checks.float_dtype(fn, matmul_dtype)
        step = functools.partial(step, matmul_dtype=matmul_dtype)
    dtype = params.dtype
    # The backward direction starts a segment at the last step before a reset.
    reset_backward = None
    if reset is not None:
        reset_backward = jnp.concatenate(
            [reset[:, 1:], jnp.zeros((batch_size, min(seq_len, 1)), bool)], axis=1
        )

    def run(
        cell_params, x, carry, m, r, recurrent_mask, zone_masks, *, direction, outputs
    ):
        """One direction of one example: the scan of `unroll`."""
        step_fn = functools.partial(step, cell_params)
        if recurrent_mask is not None:
            step_fn = functools.partial(step_fn, recurrent_mask=recurrent_mask)
        inputs = x
        if zoning:
            inputs = (x, zone_masks)
            step_fn = functools.partial(_zoned, step_fn, zone_rates, training)
        if not outputs:  # the final carry only: no [T, ...] outputs at all
            step_fn = functools.partial(_no_output, step_fn)
        return _unroll.scan(
            step_fn,
            carry,
            inputs,
            mask=m,
            reset=r,
            reverse=direction == 1,
            unroll=unroll,
            checkpoint=checkpoint,
        )

    inputs, finals, initial_outputs = xs, [], []
    for layer, cells in enumerate(params.cells):
        sequences = return_sequences or layer < params.num_layers - 1
        outputs = []
        initial_outputs = []
        for direction, cell_params in enumerate(cells):
            index = layer * params.num_directions + direction
            carry0 = jax.tree.map(lambda a: a[index], state)
            initial_outputs.append(_hidden(carry0))
            recurrent_mask = zone_masks = None
            if recurrent_rate > 0:
                subkey = jax.random.fold_in(jax.random.fold_in(key, 1), index)
                shape = (batch_size, params.output_size)
                recurrent_mask = _bernoulli_scale(subkey, recurrent_rate, shape, dtype)
            if zoning and training:
                subkey = jax.random.fold_in(jax.random.fold_in(key, 2), index)
                leaves, treedef = jax.tree.flatten(carry0)
                keys = jax.random.split(subkey, len(leaves))
                zone_masks = jax.tree.unflatten(
                    treedef,
                    [
                        jax.random.bernoulli(k, z, (batch_size, seq_len, a.shape[-1]))
                        for k, z, a in zip(keys, jax.tree.leaves(zone_rates), leaves)
                    ],
                )
            if fused:
                final, ys = _fused.run(
                    spec.name,
                    params.activation,
                    cell_params,
                    carry0,
                    inputs,
                    mask,
                    reverse=direction == 1,
                    unroll=unroll,
                    loop="pallas" if impl == "pallas" else "scan",
                )
                finals.append(final)
                outputs.append(ys if sequences else _hidden(final))
                continue
            r = reset if direction == 0 else reset_backward
            final, ys = jax.vmap(
                functools.partial(
                    run, cell_params, direction=direction, outputs=sequences
                ),
                in_axes=(
                    0,
                    0,
                    None if mask is None else 0,
                    None if r is None else 0,
                    None if recurrent_mask is None else 0,
                    None if zone_masks is None else 0,
                ),
            )(inputs, carry0, mask, r, recurrent_mask, zone_masks)
            finals.append(final)
            outputs.append(ys if sequences else _hidden(final))
        merged = _merge(params.merge, outputs)
        if params.residual and merged.shape[-1] == inputs.shape[-1]:
            skip = inputs
            if mask is not None:
                skip = jnp.where(mask[..., None], inputs, jnp.zeros_like(inputs))
            merged = merged + skip
        if rate > 0 and layer < params.num_layers - 1:
            key, subkey = jax.random.split(key)
            merged = merged * _bernoulli_scale(subkey, rate, merged.shape, dtype)
        inputs = merged
    final_state = jax.tree.map(lambda *carries: jnp.stack(carries), *finals)
    if include_initial and return_sequences:
        front = _merge(params.merge, initial_outputs)
        inputs = jnp.concatenate([front[:, None], inputs], axis=1)
    return inputs, final_state


def _no_output(step_fn, carry, x):
    """A step that drops its output, so that the scan stacks nothing."""
    return step_fn(carry, x)[0], None


def _zoned(step_fn, rates, training, carry, inputs):
    """A step with zoneout: units keep their old value where the mask says so."""
    x, keep_old = inputs
    new_carry, _ = step_fn(carry, x)
    if training:
        new_carry = jax.tree.map(
            lambda new, old, k: jnp.where(k, old, new), new_carry, carry, keep_old
        )
    else:
        new_carry = jax.tree.map(
            lambda new, old, z: z * old + (1 - z) * new, new_carry, carry, rates
        )
    return new_carry, _hidden(new_carry)
