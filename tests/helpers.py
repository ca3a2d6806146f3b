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


def _np_lstm_carry(params, carry, xs):
    (h, c), hs = np_lstm(params, carry.h, carry.c, xs)
    return jaxrnn.LSTMCarry(h, c), hs


class Cell:
    """One entry of the registry the contract tests run over."""

    def __init__(self, name, init, step, init_carry, numpy_fn):
        self.name, self.init, self.step = name, init, step
        self.init_carry, self.numpy_fn = init_carry, numpy_fn

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


CELLS = [
    *(
        Cell(
            f"rnn_{g}",
            jaxrnn.init_rnn,
            functools.partial(jaxrnn.rnn_step, activation=g),
            jaxrnn.init_rnn_carry,
            functools.partial(lambda p, h, xs, g: np_rnn(p, h, xs, g), g=g),
        )
        for g in ("tanh", "sigmoid", "relu")
    ),
    Cell(
        "lstm",
        jaxrnn.init_lstm,
        jaxrnn.lstm_step,
        jaxrnn.init_lstm_carry,
        _np_lstm_carry,
    ),
    Cell("gru", jaxrnn.init_gru, jaxrnn.gru_step, jaxrnn.init_gru_carry, np_gru),
]
CELL_IDS = [c.name for c in CELLS]

# Tolerances per dtype, for comparing against a float64 oracle.
TOL = {jnp.float64: 1e-10, jnp.float32: 1e-5, jnp.bfloat16: 5e-2}


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
