"""`apply_layer`: resolved options, then a short loop over layers and directions.

Every layer and direction runs through the row of the impl table
(`_impls`) that `impl` picks: the reference (the cells' steps under the scan
of `unroll`, mapped over the batch by `jax.vmap`, with the regularisers of
`_regularise`), or a faster path that gives the same values and gradients.
There is no second implementation of the cells here.
"""

from __future__ import annotations

import inspect
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxrnn import _checks, _unroll
from jaxrnn.layer import _impls, _options, _regularise
from jaxrnn.layer._params import LayerParams, State


def apply_layer(
    params: LayerParams,
    xs: ArrayLike,
    *,
    lengths: ArrayLike | None = None,
    mask: ArrayLike | None = None,
    initial_state: State | None = None,
    reset: ArrayLike | None = None,
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
    time_major: bool = False,
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
        xs: batch-first inputs [B, T, D] (or [T, B, D] with time_major=True),
            in the params' dtype.
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
            the default, computes everything in the params' dtype. On a
            CPU, "auto" runs jnp.bfloat16 on the compiled kernels
            (docs/fast.md, "Mixed precision"); other dtypes on the scan.
        impl: which implementation runs each layer and direction: "auto"
            (the default: the compiled CPU kernels, else "fused", else
            "scan", whichever runs the layer here first), "scan" (the
            reference above), "fused", "pallas", "cpu" or "parallel". The
            table of what each runs is `jaxrnn.layer.IMPLS`'s
            (`jaxrnn/layer/_impls.py`, and docs/fast.md); every one gives the
            reference's values and gradients, and only "scan" has
            forward-mode derivatives (`jax.jvp`). An impl that lacks an
            option in use is an error that names the option.
        time_major: False (the default) reads xs as batch-first [B, T, D];
            True reads it as time-major [T, B, D], with mask and reset [T, B]
            and ys [T, B, F] (`torch.nn.LSTM(batch_first=False)`, PyTorch's
            default, and Flax's `time_major=True`). lengths stays [B] and the
            state keeps its layout.

    Returns:
        (ys, final_state): outputs of the last layer [B, T, F] ([T, B, F]
        with time_major=True), where F is D*R for merge="concat" (forward
        then backward features) and R for the other merges; and the final
        state of every layer and direction, in the layout of initial_state.

    Raises:
        ValueError, TypeError: at trace time, naming the argument, for an xs
            that is not [B, T, D], lengths not [B], a mask or reset not
            [B, T], an initial state of the wrong shape or dtype, or rates
            outside [0, 1).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxrnn import init_layer
        >>> p = init_layer(jax.random.key(0), "lstm", 3, 5, num_layers=2,
        ...                bidirectional=True)
        >>> ys, state = apply_layer(p, jnp.ones((4, 7, 3)),
        ...                         lengths=jnp.array([7, 5, 1, 0]))
        >>> ys.shape, state.h.shape
        ((4, 7, 10), (4, 4, 5))
    """
    options = dict(locals())
    del options["params"], options["xs"]
    return run("apply_layer", params, xs, **options)


# apply_layer's options and their defaults (which stream_layer keeps).
DEFAULTS = {
    name: p.default
    for name, p in inspect.signature(apply_layer).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY
}


def run(fn: str, params: LayerParams, xs: ArrayLike, *, impl: str, **options: Any):
    """`apply_layer` with `options` (all of DEFAULTS' names but impl), whose
    errors name `fn`, the function the user called (`stream_layer` runs its
    chunks through here)."""
    matmul_dtype = options["matmul_dtype"]
    return_sequences = options["return_sequences"]
    include_initial = options["include_initial"]
    time_major = options["time_major"]
    o = _options.resolve(fn, params, xs, **options)
    layer = _impls.Layer(
        o.spec,
        params.activation,
        params.dtype,
        matmul_dtype,
        {
            "reset": o.reset is not None,
            "recurrent_dropout": o.recurrent_rate > 0,
            "zoneout": o.zoning,
            "checkpoint": o.checkpoint is not None,
        },
    )
    row = _impls.lookup(fn, impl, layer)

    inputs, finals, key = o.xs, [], o.key
    for layer, cells in enumerate(params.cells):
        sequences = return_sequences or layer < params.num_layers - 1
        outputs, initial_outputs = [], []
        for direction, cell_params in enumerate(cells):
            index = layer * params.num_directions + direction
            carry0 = jax.tree.map(lambda a: a[index], o.state)
            initial_outputs.append(_regularise.hidden(carry0))
            try:
                final, ys = row.run(
                    o,
                    cell_params,
                    carry0,
                    inputs,
                    index=index,
                    direction=direction,
                    outputs=sequences,
                    key=key,
                )
            except TypeError as error:
                _forward_mode(fn, impl, row.name, error)
            finals.append(final)
            outputs.append(ys if sequences else _regularise.hidden(final))
        merged = _merge(params.merge, outputs)
        if params.residual and merged.shape[-1] == inputs.shape[-1]:
            merged = merged + _unroll.zero_masked(inputs, o.mask)
        if o.rate > 0 and layer < params.num_layers - 1:
            key, subkey = jax.random.split(key)
            merged = _regularise.dropout(subkey, o.rate, merged)
        inputs = merged
    final_state = jax.tree.map(lambda *carries: jnp.stack(carries), *finals)
    if include_initial and return_sequences:
        front = _merge(params.merge, initial_outputs)
        inputs = jnp.concatenate([front[:, None], inputs], axis=1)
    if time_major and return_sequences:
        inputs = jnp.swapaxes(inputs, 0, 1)
    return inputs, final_state


def _forward_mode(fn: str, impl: str, ran: str, error: TypeError) -> None:
    """Re-raise JAX's refusal of forward-mode autodiff through a custom VJP
    (every impl but the reference's) as an error that names the way out."""
    if "forward-mode autodiff" not in str(error):
        raise error
    got = repr(impl) if impl == ran else f"{impl!r}, which ran {ran!r}"
    _checks.fail(
        fn,
        "impl",
        "must be 'scan' under forward-mode autodiff (jax.jvp, jax.jacfwd, "
        "jax.hessian): the other impls are custom VJPs, which have no "
        "forward-mode derivative",
        got,
        "Reverse mode (jax.grad, jax.vjp) works on every impl.",
        kind=TypeError,
    )


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
