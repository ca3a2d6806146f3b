"""Inside the gated cells: every gate's activation at every step.

For the LSTM (gate blocks i, f, g, o, as in `lstm_step`):

    f_t = sigmoid(...)    forget: 1 keeps C_{t-1}, 0 erases it
    i_t = sigmoid(...)    input: how much of the candidate is written
    g_t = tanh(...)       the candidate C~_t
    o_t = sigmoid(...)    output: how much of tanh(C_t) is shown as h_t

For the GRU (r, z, n, as in `gru_step`): r_t, the reset gate; z_t, the update
gate (1 keeps h_{t-1}); n_t, the candidate.

The traces compute the gates with the cells' own gate functions
(`jaxrnn.cells._lstm.lstm_gates` and `lstm_state`, `jaxrnn.cells._gru.gru_gates`
and `gru_state`), the ones `lstm_step` and `gru_step` call, so the equations
are written once; the tests check that the states they report are exactly
those of `unroll` over the reference step.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxrnn import _checks
from jaxrnn.cells import _gru, _lstm, _validate
from jaxrnn.cells._gru import GRUParams
from jaxrnn.cells._lstm import LSTMCarry, LSTMParams


class LSTMGates(NamedTuple):
    """Each field is [T, H]: the gates i, f, g (C~), o and the states c, h."""

    i: jax.Array
    f: jax.Array
    g: jax.Array
    o: jax.Array
    c: jax.Array
    h: jax.Array


class GRUGates(NamedTuple):
    """Each field is [T, H]: the gates r, z, the candidate n and the state h."""

    r: jax.Array
    z: jax.Array
    n: jax.Array
    h: jax.Array


class GateStats(NamedTuple):
    """Per gate (a dict keyed by its field name), a scalar each.

    Attributes:
        mean: the mean activation over every step and unit.
        saturated: the fraction of activations within `margin` of the ends
            of the gate's range (0 and 1 for sigmoid gates, -1 and 1 for the
            tanh candidate), where its derivative is nearly zero.
        low: the fraction within `margin` of the lower end (0, or -1).
        high: the fraction within `margin` of the upper end (1).
    """

    mean: dict
    saturated: dict
    low: dict
    high: dict


# The gates of each trace and the lower end of their range.
_RANGES = {
    LSTMGates: {"i": 0.0, "f": 0.0, "g": -1.0, "o": 0.0},
    GRUGates: {"r": 0.0, "z": 0.0, "n": -1.0},
}


def _inputs(fn: str, params: Any, kind: type, xs: Any) -> jax.Array:
    if not isinstance(params, kind):
        _checks.fail(
            fn,
            "params",
            f"must be {kind.__name__}",
            _checks.describe(params),
            "For a layer, pass one cell: layer.cells[layer_index][0].",
            kind=TypeError,
        )
    xs = _checks.float_array(
        fn, "xs", xs, ndim=2, hint="Gates run one sequence [T, D]; vmap for a batch."
    )
    _checks.same_dtype(fn, "xs", xs, params.w_ih.dtype, "params")
    _checks.shape(fn, "xs", xs, (xs.shape[0], params.w_ih.shape[1]), "[T, D]")
    return xs


def _state(fn: str, a: Any, size: int, dtype: Any) -> jax.Array:
    a = _checks.float_array(fn, "carry", a)
    _checks.shape(
        fn, "carry", a, (size,), "[H]", "Gates run one sequence; vmap for a batch."
    )
    _checks.same_dtype(fn, "carry", a, dtype, "params")
    return a


def lstm_gates(params: LSTMParams, xs: ArrayLike, carry: Any = None) -> LSTMGates:
    """The LSTM's gates and states at every step of one sequence.

    Args:
        params: LSTMParams (w_ih [4H, D], w_hh [4H, H], b [4H] or None).
        xs: inputs [T, D].
        carry: the initial LSTMCarry(h, c), zeros by default.

    Returns:
        LSTMGates(i, f, g, o, c, h), each [T, H].

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> p = init_lstm(jax.random.key(0), 2, 3)
        >>> gates = lstm_gates(p, jnp.ones((5, 2)))
        >>> gates.f.shape
        (5, 3)
    """
    xs = _inputs("lstm_gates", params, LSTMParams, xs)
    size = params.w_hh.shape[1]
    if carry is None:
        carry = LSTMCarry(*(jnp.zeros(size, xs.dtype),) * 2)
    carry = LSTMCarry(*(_state("lstm_gates", a, size, xs.dtype) for a in carry))

    def body(state, x):
        h, c = state
        z = params.w_ih @ x + params.w_hh @ h
        if params.b is not None:
            z = z + params.b
        gates = _lstm.lstm_gates(z)
        c, h = _lstm.lstm_state(gates, c)
        return LSTMCarry(h, c), LSTMGates(*gates, c, h)

    return jax.lax.scan(body, carry, xs)[1]


def gru_gates(params: GRUParams, xs: ArrayLike, carry: Any = None) -> GRUGates:
    """The GRU's gates and state at every step of one sequence.

    Args:
        params: GRUParams (w_ih [3H, D], w_hh [3H, H], b [3H], b_hn [H]).
        xs: inputs [T, D].
        carry: the initial h [H], zeros by default.

    Returns:
        GRUGates(r, z, n, h), each [T, H].

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> p = init_gru(jax.random.key(0), 2, 3)
        >>> gru_gates(p, jnp.ones((5, 2))).z.shape
        (5, 3)
    """
    xs = _inputs("gru_gates", params, GRUParams, xs)
    _validate.both_biases("gru_gates", params)
    if carry is None:
        carry = jnp.zeros(params.w_hh.shape[1], xs.dtype)
    carry = _state("gru_gates", carry, params.w_hh.shape[1], xs.dtype)

    def body(h, x):
        x_gates = params.w_ih @ x
        if params.b is not None:
            x_gates = x_gates + params.b
        gates = _gru.gru_gates(x_gates, params.w_hh @ h, params.b_hn)
        h = _gru.gru_state(gates, h)
        return h, GRUGates(*gates, h)

    return jax.lax.scan(body, carry, xs)[1]


def gate_statistics(gates: LSTMGates | GRUGates, margin: float = 0.1) -> GateStats:
    """The mean and the saturated fraction of each gate.

    Works on one sequence's trace or on a batch of them (from `jax.vmap`):
    the statistics pool every axis.

    Args:
        gates: from `lstm_gates` or `gru_gates`.
        margin: how close to an end of the range counts as saturated.

    Returns:
        GateStats(mean, saturated, low, high), dicts keyed by gate name.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> p = init_lstm(jax.random.key(0), 2, 3)
        >>> stats = gate_statistics(lstm_gates(p, jnp.ones((5, 2))))
        >>> sorted(stats.mean)
        ['f', 'g', 'i', 'o']
    """
    fn = "gate_statistics"
    if type(gates) not in _RANGES:
        _checks.fail(
            fn,
            "gates",
            "must be LSTMGates or GRUGates (from lstm_gates or gru_gates)",
            _checks.describe(gates),
            kind=TypeError,
        )
    margin = _checks.positive_float(fn, "margin", margin)
    if margin >= 0.5:
        _checks.fail(fn, "margin", "must be below 0.5", repr(margin))
    mean, saturated, low, high = {}, {}, {}, {}
    for name, bottom in _RANGES[type(gates)].items():
        a = getattr(gates, name)
        span = 1.0 - bottom
        at_low = a < bottom + margin * span
        at_high = a > 1.0 - margin * span
        mean[name] = jnp.mean(a)
        low[name] = jnp.mean(at_low.astype(a.dtype))
        high[name] = jnp.mean(at_high.astype(a.dtype))
        saturated[name] = low[name] + high[name]
    return GateStats(mean, saturated, low, high)
