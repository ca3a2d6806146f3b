"""Streaming (`init_state`, `stream_layer`) and time-major data.

A sequence fed in chunks of any sizes gives the outputs and final state of
one `apply_layer` call over the whole of it; per-stream resets give a fresh
run; idle steps hold the state; a bidirectional layer is refused. The
time-major layout is the batch-first one transposed.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn.cells import _registry

D, H, B, T = 3, 4, 3, 11
# Float32 reassociation only: the chunked and whole runs are the same steps.
TOL = 2e-6


def _layer(key, cell, **kw):
    if cell == "proj_lstm":
        kw["proj_size"] = 2
    return jaxrnn.init_layer(key, cell, D, H, **kw)


def _close(actual, expected, tol=TOL):
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=tol, atol=tol)


def _chunkings(seed):
    """Three partitions of T: all ones, one random, and the whole in one chunk."""
    rng = np.random.default_rng(seed)
    cuts = sorted(rng.choice(np.arange(1, T), size=3, replace=False))
    return [[1] * T, list(np.diff([0, *cuts, T])), [0, T]]


def _run_in_chunks(params, xs, sizes, mask=None, impl="auto"):
    state, outs, start = jaxrnn.init_state(params, xs.shape[0]), [], 0
    for size in sizes:
        part = None if mask is None else mask[:, start : start + size]
        ys, state = jaxrnn.stream_layer(
            params, state, xs[:, start : start + size], mask=part, impl=impl
        )
        outs.append(ys)
        start += size
    return jnp.concatenate(outs, axis=1), state


@pytest.mark.parametrize("cell", list(_registry.CELLS))
def test_chunks_of_any_size_equal_the_whole_sequence(getkey, cell):
    params = _layer(getkey(), cell, num_layers=2, learn_initial_state=True)
    # A learned initial state away from zero, so that init_state is tested.
    params = jax.tree.map(lambda a: a + 0.1, params)
    xs = jax.random.normal(getkey(), (B, T, D))
    whole, final = jaxrnn.apply_layer(params, xs)
    for sizes in _chunkings(len(cell)):
        got, state = _run_in_chunks(params, xs, sizes)
        _close((got, state), (whole, final))


@pytest.mark.parametrize("impl", ["scan", "fused", "cpu"])
def test_streams_that_start_and_end_at_different_times(getkey, impl):
    """Idle steps (mask False) hold a stream's state, as lengths do."""
    params = _layer(getkey(), "lstm")
    xs = jax.random.normal(getkey(), (B, T, D))
    mask = np.arange(T) < np.array([T, 5, 8])[:, None]
    mask[2, :3] = False  # stream 2 starts late
    whole, final = jaxrnn.apply_layer(params, xs, mask=mask, impl="scan")
    got, state = _run_in_chunks(params, xs, [4, 1, 6], mask=mask, impl=impl)
    _close((got, state), (whole, final))


def test_one_step_at_a_time_with_a_jitted_step(getkey):
    params = _layer(getkey(), "gru", num_layers=2)
    xs = jax.random.normal(getkey(), (B, T, D))
    step = jax.jit(jaxrnn.stream_layer)
    state, outs = jaxrnn.init_state(params, B), []
    for t in range(T):
        y, state = step(params, state, xs[:, t])
        assert y.shape == (B, H)
        outs.append(y)
    whole, final = jaxrnn.apply_layer(params, xs)
    _close((jnp.stack(outs, 1), state), (whole, final))


def test_reset_starts_a_stream_afresh(getkey):
    params = _layer(getkey(), "lstm", learn_initial_state=True)
    params = jax.tree.map(lambda a: a + 0.2, params)
    xs = jax.random.normal(getkey(), (B, T, D))
    _, state = jaxrnn.stream_layer(params, jaxrnn.init_state(params, B), xs[:, :6])
    reset = np.array([False, True, False])
    ys, state = jaxrnn.stream_layer(params, state, xs[:, 6:], reset=reset)
    fresh, fresh_final = jaxrnn.apply_layer(params, xs[:, 6:])
    carried, carried_final = jaxrnn.apply_layer(params, xs)
    _close(ys[1], fresh[1])
    _close(ys[0], carried[0, 6:])
    _close(
        jax.tree.map(lambda a: a[:, 1], state),
        jax.tree.map(lambda a: a[:, 1], fresh_final),
    )
    _close(
        jax.tree.map(lambda a: a[:, 2], state),
        jax.tree.map(lambda a: a[:, 2], carried_final),
    )


def test_streaming_is_differentiable_like_the_whole(getkey):
    """Truncated BPTT's building block: gradients through two chunks."""
    params = _layer(getkey(), "lstm")
    xs = jax.random.normal(getkey(), (B, T, D))

    def chunked(params):
        ys, state = _run_in_chunks(params, xs, [5, 6])
        return jnp.sum(jnp.sin(ys)) + jnp.sum(state.c)

    def whole(params):
        ys, state = jaxrnn.apply_layer(params, xs)
        return jnp.sum(jnp.sin(ys)) + jnp.sum(state.c)

    _close(jax.grad(chunked)(params), jax.grad(whole)(params), 1e-5)


def test_stream_refusals_name_the_argument(getkey):
    bidir = _layer(getkey(), "lstm", bidirectional=True)
    with pytest.raises(
        ValueError, match="stream_layer: params must be a unidirectional"
    ):
        jaxrnn.stream_layer(bidir, jaxrnn.init_state(bidir, B), jnp.ones((B, 2, D)))
    params = _layer(getkey(), "gru")
    state = jaxrnn.init_state(params, B)
    with pytest.raises(
        ValueError, match=r"stream_layer: xs must be a chunk \[B, T, D\]"
    ):
        jaxrnn.stream_layer(params, state, jnp.ones((1, B, 2, D)))
    with pytest.raises(
        ValueError, match=r"stream_layer: initial_state must have shape"
    ):
        jaxrnn.stream_layer(params, state, jnp.ones((B + 1, 2, D)))
    with pytest.raises(ValueError, match=r"stream_layer: reset must have shape \[B\]"):
        jaxrnn.stream_layer(
            params, state, jnp.ones((B, 2, D)), reset=np.ones((B, 2), bool)
        )
    with pytest.raises(ValueError, match=r"init_state: batch_size"):
        jaxrnn.init_state(params, 0)
    # What the layer refuses of a chunk names stream_layer too, not the
    # apply_layer it runs the chunk through.
    with pytest.raises(ValueError, match=r"stream_layer: impl must be one of"):
        jaxrnn.stream_layer(params, state, jnp.ones((B, 2, D)), impl="cudnn")
    with pytest.raises(ValueError, match=r"stream_layer: mask must have shape"):
        jaxrnn.stream_layer(
            params, state, jnp.ones((B, 2, D)), mask=np.ones((B, 3), bool)
        )


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_time_major_is_the_transposed_batch_first_layer(getkey, cell):
    params = _layer(getkey(), cell, num_layers=2, bidirectional=True)
    xs = jax.random.normal(getkey(), (B, T, D))
    lengths = jnp.array([T, 4, 0])
    reset = np.eye(B, T, 3, dtype=bool)
    ys, final = jaxrnn.apply_layer(params, xs, lengths=lengths, include_initial=True)
    tm, tm_final = jaxrnn.apply_layer(
        params,
        jnp.swapaxes(xs, 0, 1),
        lengths=lengths,
        include_initial=True,
        time_major=True,
    )
    _close((jnp.swapaxes(tm, 0, 1), tm_final), (ys, final), 0)
    mask = np.arange(T) < np.array([T, 4, 0])[:, None]
    ys, _ = jaxrnn.apply_layer(params, xs, mask=mask, reset=reset)
    tm, _ = jaxrnn.apply_layer(
        params, jnp.swapaxes(xs, 0, 1), mask=mask.T, reset=reset.T, time_major=True
    )
    _close(jnp.swapaxes(tm, 0, 1), ys, 0)
    last, _ = jaxrnn.apply_layer(
        params, jnp.swapaxes(xs, 0, 1), time_major=True, return_sequences=False
    )
    assert last.shape == (B, 2 * H)


def test_time_major_data_read_batch_first_gets_a_hint(getkey):
    params = _layer(getkey(), "lstm")
    time_major = jnp.ones((T, B, D))
    with pytest.raises(ValueError, match="pass time_major=True"):
        jaxrnn.apply_layer(params, time_major, lengths=jnp.array([T, 4, 2]))
    with pytest.raises(ValueError, match="pass time_major=True"):
        jaxrnn.apply_layer(params, time_major, mask=np.ones((B, T), bool))
    with pytest.raises(ValueError, match=r"mask must have shape \[T, B\]"):
        jaxrnn.apply_layer(
            params, time_major, mask=np.ones((B, T), bool), time_major=True
        )
    with pytest.raises(TypeError, match="time_major must be True or False"):
        jaxrnn.apply_layer(params, time_major, time_major="yes")
