"""Keras 3 <-> jaxrnn: SimpleRNN, LSTM and GRU layers.

Keras stores `kernel` [D, G*u] and `recurrent_kernel` [u, G*u], the
transposes of jaxrnn's w_ih and w_hh, with one bias:

    SimpleRNN   bias [u]
    LSTM        columns i, f, c, o (= jaxrnn's i, f, g, o); bias [4u]
    GRU         columns z, r, h (jaxrnn: r, z, n); reset_after=True keeps a bias
                of shape [2, 3u] = [input_bias; recurrent_bias], so
                b = [b_ir + b_hr, b_iz + b_hz, input h-block], b_hn = recurrent h-block

A GRU with reset_after=False applies the reset gate *before* the recurrent
matmul, h_hat = tanh(W_h x + U_h (r * h) + b_h), with one bias [3u]: that is
jaxrnn's "cho_gru" cell (ChoGRUParams), not "gru", whose r * (U_h h + b_hn)
no choice of weights turns into it.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxrnn import _checks
from jaxrnn._unroll import resolve_mask, unroll
from jaxrnn.cells import _activations
from jaxrnn.cells._cho_gru import ChoGRUParams, cho_gru_step
from jaxrnn.cells._elman import RNNParams, rnn_step
from jaxrnn.cells._gru import GRUParams, gru_step
from jaxrnn.cells._lstm import LSTMCarry, LSTMParams, lstm_step
from jaxrnn.interop import _common
from jaxrnn.layer._params import LayerParams

_KINDS = {"SimpleRNN": "rnn", "LSTM": "lstm", "GRU": "gru"}
_MORE = {"cho_gru": ChoGRUParams}  # GRU(reset_after=False)
_KERAS_ACTIVATIONS = {
    "tanh": "tanh",
    "relu": "relu",
    "sigmoid": "sigmoid",
    "linear": "identity",
}


def _keras(fn: str):
    # Keras picks its backend at import; with none chosen, choose JAX (jaxrnn's).
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return _common.require("keras", "keras", fn)


def _name(activation: Any) -> str:
    if isinstance(activation, str):
        return activation
    return getattr(activation, "__name__", repr(activation))


def _swap_rz(w: jax.Array, units: int) -> jax.Array:
    """Swap the first two blocks of `units` along the last axis (z, r <-> r, z)."""
    return jnp.concatenate(
        [w[..., units : 2 * units], w[..., :units], w[..., 2 * units :]], axis=-1
    )


def from_keras(layer: Any) -> tuple[LayerParams, Callable]:
    """Convert a Keras 3 SimpleRNN, LSTM or GRU layer into params and an apply.

    Args:
        layer: a built keras.layers.SimpleRNN, LSTM or GRU; a GRU with
            reset_after=True becomes the "gru" cell, one with
            reset_after=False the "cho_gru" cell.
            LSTM and GRU must use activation "tanh" and recurrent_activation
            "sigmoid"; SimpleRNN may use tanh, relu, sigmoid or linear.

    Returns:
        (params, apply). params is a one-layer LayerParams. `apply(params, xs,
        initial_state=None, *, mask=None)` returns what `layer(xs,
        initial_state=..., mask=...)` returns in inference: the outputs [B, T,
        u] (return_sequences) or [B, u], followed by the states [h] or [h, c]
        when return_state. It follows Keras' semantics: go_backwards reads the
        sequence backwards and returns outputs in that order, and on masked
        steps the state is held and the output repeats the held state.

    Raises:
        ImportError: Keras is not installed.
        TypeError: another kind of layer.
        ValueError: other gate activations, or an unbuilt layer.
    """
    fn = "from_keras"
    _keras(fn)
    kind = _KINDS.get(type(layer).__name__)
    if kind is None:
        _checks.fail(
            fn,
            "layer",
            "must be a keras.layers.SimpleRNN, LSTM or GRU",
            _checks.describe(layer),
            kind=TypeError,
        )
    if not layer.built:
        _checks.fail(
            fn,
            "layer",
            "must be built",
            "an unbuilt layer",
            "Call it once or call layer.build((None, None, D)).",
        )
    config = layer.get_config()
    cell = layer.cell
    units = config["units"]
    kernel = _common.to_array(cell.kernel)
    recurrent = _common.to_array(cell.recurrent_kernel)
    bias = _common.to_array(cell.bias) if config["use_bias"] else None
    activation = "tanh"
    if kind == "rnn":
        name = _name(config["activation"])
        if name not in _KERAS_ACTIVATIONS:
            _checks.fail(
                fn,
                "layer.activation",
                f"must be one of {sorted(_KERAS_ACTIVATIONS)}",
                repr(name),
            )
        activation = _KERAS_ACTIVATIONS[name]
        params = RNNParams(kernel.T, recurrent.T, bias)
    else:
        if (
            _name(config["activation"]) != "tanh"
            or _name(config["recurrent_activation"]) != "sigmoid"
        ):
            _checks.fail(
                fn,
                "layer",
                "must use activation='tanh' and recurrent_activation='sigmoid'",
                f"{config['activation']!r} and {config['recurrent_activation']!r}",
            )
        if kind == "lstm":
            params = LSTMParams(kernel.T, recurrent.T, bias)
        else:
            w_ih, w_hh = _swap_rz(kernel, units).T, _swap_rz(recurrent, units).T
            if not config.get("reset_after", True):
                b = None if bias is None else _swap_rz(bias, units)
                params = ChoGRUParams(w_ih, w_hh, b)
            elif bias is None:
                params = GRUParams(w_ih, w_hh, None, None)
            else:
                input_bias, recurrent_bias = (
                    _swap_rz(bias[0], units),
                    _swap_rz(bias[1], units),
                )
                b = jnp.concatenate(
                    [
                        input_bias[: 2 * units] + recurrent_bias[: 2 * units],
                        input_bias[2 * units :],
                    ]
                )
                params = GRUParams(w_ih, w_hh, b, recurrent_bias[2 * units :])
    layer_params = _common.single_layer(params, activation)

    def apply(
        params: LayerParams,
        xs: ArrayLike,
        initial_state: Any = None,
        *,
        mask: ArrayLike | None = None,
    ):
        return _apply_keras(
            params,
            xs,
            initial_state,
            mask=mask,
            return_sequences=config["return_sequences"],
            return_state=config["return_state"],
            go_backwards=config["go_backwards"],
        )

    return layer_params, apply


def _apply_keras(
    params: LayerParams,
    xs: Any,
    initial_state: Any,
    *,
    mask: Any,
    return_sequences: bool,
    return_state: bool,
    go_backwards: bool,
):
    fn = "apply"
    cell_params, activation = _common.one_cell(fn, params, _MORE)
    xs = _checks.float_array(
        fn, "xs", xs, ndim=3, hint="Keras RNN layers take batch-major [B, T, D]."
    )
    batch, seq_len, _ = xs.shape
    mask = resolve_mask(fn, seq_len, mask, None, batch=(batch,))
    step = {
        "rnn": lambda p, c, x: rnn_step(p, c, x, activation=activation),
        "lstm": lstm_step,
        "gru": gru_step,
        "cho_gru": cho_gru_step,
    }[params.cell]
    hidden = cell_params.w_hh.shape[1]
    if initial_state is None:
        zeros = jnp.zeros((batch, hidden), cell_params.w_hh.dtype)
        carry = LSTMCarry(zeros, zeros) if params.cell == "lstm" else zeros
    else:
        states = [_checks.as_array(fn, "initial_state", s) for s in initial_state]
        carry = LSTMCarry(*states) if params.cell == "lstm" else states[0]
    if go_backwards:
        xs = xs[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]

    def repeat_held_state(previous, y_and_keep):
        y, keep = y_and_keep
        output = jnp.where(keep, y, previous)
        return output, output

    def run(x, c, m):
        final, ys = unroll(step, cell_params, c, x, mask=m)
        if m is not None:  # Keras outputs the held state h on masked steps
            h0 = c.h if isinstance(c, LSTMCarry) else c
            ys = jax.lax.scan(repeat_held_state, h0, (ys, m))[1]
        return final, ys

    final, ys = jax.vmap(run, in_axes=(0, 0, None if mask is None else 0))(
        xs, carry, mask
    )
    outputs = ys if return_sequences else ys[:, -1]
    if not return_state:
        return outputs
    states = [final.h, final.c] if params.cell == "lstm" else [final]
    return [outputs, *states]


def to_keras(params: Any, **layer_kwargs: Any) -> Any:
    """A built Keras layer (SimpleRNN, LSTM or GRU) computing what `params` compute.

    Args:
        params: one cell's params (RNNParams, LSTMParams, GRUParams, or
            ChoGRUParams for reset_after=False), or a one-cell LayerParams
            (which carries the Elman activation).
        **layer_kwargs: passed to the layer (return_sequences, return_state,
            go_backwards, ...). units, use_bias, activation and (GRU)
            reset_after are set from params.

    Returns:
        The layer, built for input size D, with its weights set. A GRU's
        input bias is b and its recurrent bias is [0, 0, b_hn] (in Keras'
        z, r, h order); a reset-before GRU's one bias is b.
    """
    fn = "to_keras"
    keras = _keras(fn)
    cell_params, activation = _common.one_cell(fn, params, _MORE)
    kind = _common.cell_name(fn, cell_params, _MORE)
    hidden, size = cell_params.w_hh.shape[1], cell_params.w_ih.shape[1]
    has_bias = cell_params.b is not None
    dtype = jnp.dtype(cell_params.w_hh.dtype).name
    common = dict(units=hidden, use_bias=has_bias, dtype=dtype, **layer_kwargs)
    if kind == "rnn":
        names = {v: k for k, v in _KERAS_ACTIVATIONS.items()}
        name = (
            activation
            if isinstance(activation, str)
            else next(
                (n for n, g in _activations.ELEMENTWISE.items() if g is activation),
                None,
            )
        )
        if name not in names:
            _checks.fail(
                fn,
                "params.activation",
                "must be tanh, relu, sigmoid or identity for Keras",
                repr(activation),
            )
        layer = keras.layers.SimpleRNN(activation=names[name], **common)
        weights = [cell_params.w_ih.T, cell_params.w_hh.T]
        if has_bias:
            weights.append(cell_params.b)
    elif kind == "lstm":
        layer = keras.layers.LSTM(**common)
        weights = [cell_params.w_ih.T, cell_params.w_hh.T]
        if has_bias:
            weights.append(cell_params.b)
    elif kind == "cho_gru":
        layer = keras.layers.GRU(reset_after=False, **common)
        weights = [
            _swap_rz(cell_params.w_ih.T, hidden),
            _swap_rz(cell_params.w_hh.T, hidden),
        ]
        if has_bias:
            weights.append(_swap_rz(cell_params.b, hidden))
    else:
        layer = keras.layers.GRU(reset_after=True, **common)
        weights = [
            _swap_rz(cell_params.w_ih.T, hidden),
            _swap_rz(cell_params.w_hh.T, hidden),
        ]
        if has_bias:
            recurrent = jnp.concatenate(
                [jnp.zeros((2 * hidden,), cell_params.b.dtype), cell_params.b_hn]
            )
            weights.append(
                jnp.stack(
                    [_swap_rz(cell_params.b, hidden), _swap_rz(recurrent, hidden)]
                )
            )
    layer.build((None, None, size))
    for variable, value in zip(layer.weights, weights):
        variable.assign(jnp.asarray(value, variable.dtype))
    return layer
