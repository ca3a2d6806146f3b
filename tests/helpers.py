"""Oracles and small utilities shared by the tests.

The NumPy functions transcribe the lecture's equations in their textbook form,
W [h_{t-1}, x_t] + b with one matrix per gate, in float64. They share no code
with the library.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

import jaxrnn
from jaxrnn.cells import _registry


def x64():
    """A context in which float64 arrays are float64 (across JAX versions)."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64

    return enable_x64()


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


NP_ACTIVATIONS = {
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "relu": lambda z: np.maximum(z, 0),
    "identity": lambda z: z,
    # Feng et al.'s g: z + 1/2 above 0, the sigmoid below (positive everywhere).
    "positive": lambda z: np.where(z >= 0, z + 0.5, sigmoid(np.minimum(z, 0))),
}


def _gate(params, k, hidden):
    """Gate k's matrix W_k = [W_hh_k | W_ih_k], acting on [h, x], and its bias."""
    rows = slice(k * hidden, (k + 1) * hidden)
    w = np.concatenate(
        [np.asarray(params.w_hh)[rows], np.asarray(params.w_ih)[rows]], 1
    )
    b = np.zeros(hidden) if params.b is None else np.asarray(params.b)[rows]
    return w, b


def np_rnn(params, h, xs, activation="tanh"):
    """a_t = g1(W_aa a_{t-1} + W_ax x_t + b_a), for t = 1..T."""
    g1 = NP_ACTIVATIONS[activation]
    w, b = _gate(params, 0, len(h))
    hs = []
    for x in xs:
        h = g1(w @ np.concatenate([h, x]) + b)
        hs.append(h)
    return h, np.array(hs)


def np_lstm(params, h, c, xs):
    """f, i, C~, C, o, h of the lecture, one gate matrix each (order i, f, g, o)."""
    hidden = len(h)
    (w_i, b_i), (w_f, b_f), (w_g, b_g), (w_o, b_o) = (
        _gate(params, k, hidden) for k in range(4)
    )
    hs = []
    for x in xs:
        hx = np.concatenate([h, x])
        f = sigmoid(w_f @ hx + b_f)
        i = sigmoid(w_i @ hx + b_i)
        c_tilde = np.tanh(w_g @ hx + b_g)
        c = f * c + i * c_tilde
        o = sigmoid(w_o @ hx + b_o)
        h = o * np.tanh(c)
        hs.append(h)
    return (h, c), np.array(hs)


def np_gru(params, h, xs):
    """PyTorch's GRU: r, z, n with the reset gate applied after the W_hn matmul."""
    hidden = len(h)
    w_ih, w_hh = np.asarray(params.w_ih), np.asarray(params.w_hh)
    b = np.zeros(3 * hidden) if params.b is None else np.asarray(params.b)
    b_hn = np.zeros(hidden) if params.b_hn is None else np.asarray(params.b_hn)
    blocks = lambda a: (a[:hidden], a[hidden : 2 * hidden], a[2 * hidden :])
    (w_ir, w_iz, w_in), (w_hr, w_hz, w_hn) = blocks(w_ih), blocks(w_hh)
    b_r, b_z, b_in = blocks(b)
    hs = []
    for x in xs:
        r = sigmoid(w_ir @ x + w_hr @ h + b_r)
        z = sigmoid(w_iz @ x + w_hz @ h + b_z)
        n = np.tanh(w_in @ x + b_in + r * (w_hn @ h + b_hn))
        h = (1 - z) * n + z * h
        hs.append(h)
    return h, np.array(hs)


def _blocks(a, count):
    """Split a vector or matrix into `count` equal row blocks (None gives zeros)."""
    return np.split(np.asarray(a, np.float64), count)


def _np_bias(params, count, hidden):
    b = getattr(params, "b", None)
    return _blocks(np.zeros(count * hidden) if b is None else b, count)


def np_peephole_lstm(params, h, c, xs):
    """Gers & Schmidhuber: i and f see c_{t-1}, o sees c_t, through diagonals."""
    hidden = len(c)
    (w_i, b_i), (w_f, b_f), (w_g, b_g), (w_o, b_o) = (
        _gate(params, k, hidden) for k in range(4)
    )
    p_i, p_f, p_o = (np.asarray(v) for v in (params.w_ci, params.w_cf, params.w_co))
    hs = []
    for x in xs:
        hx = np.concatenate([h, x])
        i = sigmoid(w_i @ hx + p_i * c + b_i)
        f = sigmoid(w_f @ hx + p_f * c + b_f)
        c = f * c + i * np.tanh(w_g @ hx + b_g)
        o = sigmoid(w_o @ hx + p_o * c + b_o)
        h = o * np.tanh(c)
        hs.append(h)
    return (h, c), np.array(hs)


def np_layer_norm(z, gain, bias=0.0, eps=1e-5):
    """Ba et al.'s LN of one block: (z - mean) / sqrt(var + eps) * gain + bias."""
    return (z - z.mean()) / np.sqrt(z.var() + eps) * gain + bias


def np_layer_norm_lstm(params, h, c, xs):
    """LN on each gate's input and recurrent pre-activation, and on c_t."""
    hidden = len(h)
    w_x, w_h = _blocks(params.w_ih, 4), _blocks(params.w_hh, 4)
    g_x, g_h = _blocks(params.gain_ih, 4), _blocks(params.gain_hh, 4)
    b = _np_bias(params, 4, hidden)
    bias_c = 0.0 if params.bias_c is None else np.asarray(params.bias_c)
    hs = []
    for x in xs:
        i, f, g, o = (
            np_layer_norm(w_x[k] @ x, g_x[k]) + np_layer_norm(w_h[k] @ h, g_h[k]) + b[k]
            for k in range(4)
        )
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(np_layer_norm(c, np.asarray(params.gain_c), bias_c))
        hs.append(h)
    return (h, c), np.array(hs)


def np_layer_norm_gru(params, h, xs):
    """The PyTorch GRU with LN on each gate's input and recurrent pre-activation."""
    hidden = len(h)
    w_x, w_h = _blocks(params.w_ih, 3), _blocks(params.w_hh, 3)
    g_x, g_h = _blocks(params.gain_ih, 3), _blocks(params.gain_hh, 3)
    b_r, b_z, b_n = _np_bias(params, 3, hidden)
    b_hn = np.zeros(hidden) if params.b_hn is None else np.asarray(params.b_hn)
    hs = []
    for x in xs:
        ln = lambda w, g, v: np_layer_norm(w @ v, g)
        r = sigmoid(ln(w_x[0], g_x[0], x) + b_r + ln(w_h[0], g_h[0], h))
        z = sigmoid(ln(w_x[1], g_x[1], x) + b_z + ln(w_h[1], g_h[1], h))
        n = np.tanh(ln(w_x[2], g_x[2], x) + b_n + r * (ln(w_h[2], g_h[2], h) + b_hn))
        h = (1 - z) * n + z * h
        hs.append(h)
    return h, np.array(hs)


def np_proj_lstm(params, h, c, xs):
    """PyTorch's LSTM with proj_size: h_t = W_hr (o * tanh(c_t))."""
    hidden = len(c)
    w_x, w_h = _blocks(params.w_ih, 4), _blocks(params.w_hh, 4)
    b = _np_bias(params, 4, hidden)
    w_hr = np.asarray(params.w_hr)
    hs = []
    for x in xs:
        i, f, g, o = (w_x[k] @ x + w_h[k] @ h + b[k] for k in range(4))
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = w_hr @ (sigmoid(o) * np.tanh(c))
        hs.append(h)
    return (h, c), np.array(hs)


def np_cifg_lstm(params, h, c, xs):
    """Coupled gates: the input gate is 1 - f (blocks f, g, o)."""
    hidden = len(h)
    (w_f, b_f), (w_g, b_g), (w_o, b_o) = (_gate(params, k, hidden) for k in range(3))
    hs = []
    for x in xs:
        hx = np.concatenate([h, x])
        f = sigmoid(w_f @ hx + b_f)
        c = f * c + (1 - f) * np.tanh(w_g @ hx + b_g)
        h = sigmoid(w_o @ hx + b_o) * np.tanh(c)
        hs.append(h)
    return (h, c), np.array(hs)


def np_mgu(params, h, xs):
    """Zhou et al.'s MGU: f gates both the candidate's h and the update."""
    hidden = len(h)
    w_f, w_n = _blocks(params.w_ih, 2)
    u_f, u_n = _blocks(params.w_hh, 2)
    b_f, b_n = _np_bias(params, 2, hidden)
    hs = []
    for x in xs:
        f = sigmoid(w_f @ x + u_f @ h + b_f)
        h_tilde = np.tanh(w_n @ x + u_n @ (f * h) + b_n)
        h = (1 - f) * h + f * h_tilde
        hs.append(h)
    return h, np.array(hs)


def np_cho_gru(params, h, xs):
    """Cho et al.'s GRU: the reset gate scales h inside the candidate's matmul."""
    hidden = len(h)
    w_r, w_z, w_n = _blocks(params.w_ih, 3)
    u_r, u_z, u_n = _blocks(params.w_hh, 3)
    b_r, b_z, b_n = _np_bias(params, 3, hidden)
    hs = []
    for x in xs:
        r = sigmoid(w_r @ x + u_r @ h + b_r)
        z = sigmoid(w_z @ x + u_z @ h + b_z)
        n = np.tanh(w_n @ x + u_n @ (r * h) + b_n)
        h = z * h + (1 - z) * n
        hs.append(h)
    return h, np.array(hs)


def np_indrnn(params, h, xs, activation="relu"):
    """Li et al.'s IndRNN, unit by unit: h_j = g1(W_j . x + u_j h_j + b_j)."""
    g1 = NP_ACTIVATIONS[activation]
    w, u = np.asarray(params.w_ih, np.float64), np.asarray(params.w_hh, np.float64)
    b = np.zeros(len(h)) if params.b is None else np.asarray(params.b, np.float64)
    hs = []
    for x in xs:
        h = np.array([g1(w[j] @ x + u[j] * h[j] + b[j]) for j in range(len(h))])
        hs.append(h)
    return h, np.array(hs)


def np_min_gru(params, h, xs, activation="identity"):
    """Feng et al.'s minGRU: gates from x alone, h = (1 - z) h + z g(W_h x)."""
    g = NP_ACTIVATIONS[activation]
    w_z, w_h = _blocks(params.w_ih, 2)
    b_z, b_h = _np_bias(params, 2, len(h))
    hs = []
    for x in xs:
        z = sigmoid(w_z @ x + b_z)
        h = (1 - z) * h + z * g(w_h @ x + b_h)
        hs.append(h)
    return h, np.array(hs)


def np_min_lstm(params, h, xs, activation="identity"):
    """Feng et al.'s minLSTM: f' = f / (f + i), h = f' h + i' g(W_h x)."""
    g = NP_ACTIVATIONS[activation]
    w_i, w_f, w_h = _blocks(params.w_ih, 3)
    b_i, b_f, b_h = _np_bias(params, 3, len(h))
    hs = []
    for x in xs:
        i, f = sigmoid(w_i @ x + b_i), sigmoid(w_f @ x + b_f)
        h = f / (f + i) * h + i / (f + i) * g(w_h @ x + b_h)
        hs.append(h)
    return h, np.array(hs)


def _carry_of(np_fn):
    """Adapt an (h, c) NumPy oracle to LSTMCarry in and out."""

    def run(params, carry, xs):
        (h, c), hs = np_fn(params, carry.h, carry.c, xs)
        return jaxrnn.LSTMCarry(h, c), hs

    return run


_np_lstm_carry = _carry_of(np_lstm)


def proj_size(hidden):
    """The projection size the tests use for a given H: H - 1 (P < H, P != H)."""
    return max(hidden - 1, 1)


class Cell:
    """One entry of the registry the contract tests run over."""

    def __init__(
        self, name, init, step, init_carry, numpy_fn, out=lambda h: h, spec=None
    ):
        self.name, self.init, self.step = name, init, step
        self.init_carry, self.numpy_fn = init_carry, numpy_fn
        self.spec = spec
        self.out = out  # the size of h (and of the outputs) for a given H

    def __repr__(self):
        return self.name

    def random_carry(self, key, hidden, dtype=jnp.float32):
        """A non-zero carry, so that carry handling is really exercised."""
        zeros = self.init_carry(hidden, dtype=dtype)
        keys = iter(jax.random.split(key, 2))
        return jax.tree.map(
            lambda z: (0.5 * jax.random.normal(next(keys), z.shape)).astype(dtype),
            zeros,
        )

    def numpy(self, params, carry, xs):
        """(final carry, outputs) from the NumPy transcription."""
        carry = jax.tree.map(lambda a: np.asarray(a, np.float64), carry)
        return self.numpy_fn(params, carry, np.asarray(xs, np.float64))


# The NumPy oracle of every registered cell, by name: a cell registered
# without one fails here, at import, rather than going untested.
ORACLES = {
    "rnn": np_rnn,
    "lstm": _np_lstm_carry,
    "gru": np_gru,
    "peephole_lstm": _carry_of(np_peephole_lstm),
    "layer_norm_lstm": _carry_of(np_layer_norm_lstm),
    "layer_norm_gru": np_layer_norm_gru,
    "proj_lstm": _carry_of(np_proj_lstm),
    "cifg_lstm": _carry_of(np_cifg_lstm),
    "mgu": np_mgu,
    "indrnn": np_indrnn,
    "cho_gru": np_cho_gru,
    "min_gru": np_min_gru,
    "min_lstm": np_min_lstm,
}
# The sizes a cell is built with beyond (D, H): the projected LSTM's P.
_EXTRA_SIZES = {"proj_lstm": lambda h: (proj_size(h),)}


def _carry_maker(spec):
    """The zero carry of a cell for a given H: h of the output's size, and
    the LSTM-like cells' c of size H."""
    extra = _EXTRA_SIZES.get(spec.name, lambda h: ())

    def init_carry(hidden, dtype=jnp.float32):
        out = (*extra(hidden), hidden)[0]
        h = jnp.zeros((out,), dtype)
        return (
            jaxrnn.LSTMCarry(h, jnp.zeros((hidden,), dtype)) if spec.lstm_carry else h
        )

    return init_carry


def _registered_cells():
    """One Cell per registered cell, and per activation for those taking one."""
    for spec in _registry.CELLS.values():
        extra = _EXTRA_SIZES.get(spec.name, lambda h: ())
        init = functools.partial(
            lambda key, d, h, spec, extra, **kw: spec.init(key, d, h, *extra(h), **kw),
            spec=spec,
            extra=extra,
        )
        out = lambda h, extra=extra: (*extra(h), h)[0]
        oracle = ORACLES[spec.name]
        for g in spec.activations or (None,):
            step, numpy_fn, name = spec.step, oracle, spec.name
            if g is not None:
                step = functools.partial(step, activation=g)
                numpy_fn = functools.partial(
                    lambda p, h, xs, g, oracle: oracle(p, h, xs, g), g=g, oracle=oracle
                )
                name = f"{spec.name}_{g}"
            yield Cell(
                name, init, step, _carry_maker(spec), numpy_fn, out=out, spec=spec
            )


CELLS = list(_registered_cells())
BY_NAME = {c.name: c for c in CELLS}
# The lecture's three cells and their activations; the rest are variants.
VARIANTS = [c for c in CELLS if c.spec.name not in ("rnn", "lstm", "gru")]
CELL_IDS = [c.name for c in CELLS]

# The one tolerance table: atol = rtol, by what is compared and its dtype.
# "oracle": jaxrnn against a float64 NumPy transcription or another form of
# the same reference computation; "fast": a fast path or kernel against the
# reference (float64 agrees to rounding; 16-bit inputs round at every step);
# "peer": jaxrnn against PyTorch, Flax, Keras or Equinox.
TOLERANCES = {
    "oracle": {jnp.float64: 1e-10, jnp.float32: 1e-5, jnp.bfloat16: 5e-2},
    "fast": {
        jnp.float64: 1e-12,
        jnp.float32: 1e-5,
        jnp.bfloat16: 5e-2,
        jnp.float16: 1e-2,
    },
    "peer": {jnp.float64: 1e-10, jnp.float32: 1e-5},
}
TOL = TOLERANCES["oracle"]


def assert_trees_close(actual, expected, tol):
    """Every leaf of two pytrees of the same structure agrees within `tol`."""
    actual_leaves, actual_def = jax.tree.flatten(actual)
    expected_leaves, expected_def = jax.tree.flatten(expected)
    assert len(actual_leaves) == len(expected_leaves), (actual_def, expected_def)
    for a, e in zip(actual_leaves, expected_leaves):
        a = np.asarray(a, np.float64)
        e = np.asarray(e, np.float64)
        assert a.shape == e.shape, (a.shape, e.shape)
        np.testing.assert_allclose(a, e, rtol=tol, atol=tol)


# How many generated examples each property test ran (printed by conftest).
HYPOTHESIS_EXAMPLES: dict = {}


def count_example(name: str, outcome: str) -> None:
    """Tally one generated example of `name` as `outcome` (worked, refused,
    checked...), for conftest's summary."""
    key = f"{name}: {outcome}"
    HYPOTHESIS_EXAMPLES[key] = HYPOTHESIS_EXAMPLES.get(key, 0) + 1


# The largest differences seen against each peer library, printed at the end of
# the test session (see conftest.pytest_terminal_summary).
MAX_ERRORS: dict = {}


def record_error(library, dtype, actual, expected):
    """Note max |actual - expected| over two pytrees for the session summary."""
    diff = max(
        (
            float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(e, np.float64))))
            for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected))
            if np.size(a)
        ),
        default=0.0,
    )
    key = (library, jnp.dtype(dtype).name)
    MAX_ERRORS[key] = max(MAX_ERRORS.get(key, 0.0), diff)


def randomise(tree, key):
    """The same pytree with N(0, 0.25) values everywhere (peers init biases to 0)."""
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(
        treedef,
        [0.5 * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)],
    )
