"""unroll against its loop oracle, masking semantics, and finite differences."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxrnn
from helpers import BY_NAME, CELL_IDS, CELLS, assert_trees_close, x64

D, H, T = 3, 5, 7
MASK = jnp.array([True, True, False, True, False, False, True])


def _setup(cell, getkey, dtype=jnp.float32):
    params = cell.init(getkey(), D, H, init="torch", dtype=dtype)
    carry = cell.random_carry(getkey(), H, dtype)
    xs = jax.random.normal(getkey(), (T, D)).astype(dtype)
    return params, carry, xs


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("masking", [None, "mask", "length"])
def test_unroll_equals_loop_oracle(cell, reverse, masking, getkey):
    params, carry, xs = _setup(cell, getkey)
    kwargs = {None: {}, "mask": {"mask": MASK}, "length": {"length": jnp.int32(4)}}[
        masking
    ]
    scanned = jaxrnn.unroll(cell.step, params, carry, xs, reverse=reverse, **kwargs)
    looped = jaxrnn.unroll_loop(cell.step, params, carry, xs, reverse=reverse, **kwargs)
    assert_trees_close(scanned, looped, 1e-6)


def test_loop_oracle_is_the_plain_python_loop(getkey):
    """unroll_loop with no mask is literally step after step."""
    cell = BY_NAME["lstm"]
    params, carry, xs = _setup(cell, getkey)
    c, ys = carry, []
    for t in range(T):
        c, y = jaxrnn.lstm_step(params, c, xs[t])
        ys.append(y)
    assert_trees_close(
        jaxrnn.unroll_loop(cell.step, params, carry, xs), (c, jnp.stack(ys)), 0
    )


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("reverse", [False, True])
def test_masked_steps_hold_the_carry_and_zero_the_output(cell, reverse, getkey):
    params, carry, xs = _setup(cell, getkey)
    final, ys = jaxrnn.unroll(cell.step, params, carry, xs, mask=MASK, reverse=reverse)
    assert float(jnp.abs(ys[~MASK]).max()) == 0.0
    # Running only the unmasked steps, in order, gives the same carry and outputs.
    valid = np.flatnonzero(np.asarray(MASK))
    compact_final, compact_ys = jaxrnn.unroll(
        cell.step, params, carry, xs[valid], reverse=reverse
    )
    assert_trees_close(final, compact_final, 1e-6)
    assert_trees_close(ys[valid], compact_ys, 1e-6)
    # Masked inputs have no influence at all.
    garbage = xs.at[~MASK].set(1e3)
    assert_trees_close(
        jaxrnn.unroll(cell.step, params, carry, garbage, mask=MASK, reverse=reverse),
        (final, ys),
        0,
    )


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_length_gives_the_carry_at_the_last_valid_step(cell, getkey):
    params, carry, xs = _setup(cell, getkey)
    for length in (0, 1, 4, T):
        final, ys = jaxrnn.unroll(cell.step, params, carry, xs, length=length)
        expected_final, expected_ys = jaxrnn.unroll(cell.step, params, carry, xs)
        if length == 0:
            assert_trees_close(final, carry, 0)
        else:
            carry_at = jaxrnn.unroll(cell.step, params, carry, xs[:length])[0]
            assert_trees_close(final, carry_at, 1e-6)
        assert_trees_close(ys[:length], expected_ys[:length], 1e-6)
        assert float(jnp.abs(ys[length:]).max(initial=0.0)) == 0.0
    # Lengths beyond T act as T; negative lengths as 0.
    assert_trees_close(
        jaxrnn.unroll(cell.step, params, carry, xs, length=T + 5),
        jaxrnn.unroll(cell.step, params, carry, xs),
        1e-6,
    )
    assert_trees_close(
        jaxrnn.unroll(cell.step, params, carry, xs, length=-2)[0], carry, 0
    )


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_reverse_with_length_starts_at_the_last_valid_step(cell, getkey):
    """Right padding is skipped: reverse over padding = reverse over the valid part."""
    params, carry, xs = _setup(cell, getkey)
    final, ys = jaxrnn.unroll(cell.step, params, carry, xs, length=4, reverse=True)
    expected_final, expected_ys = jaxrnn.unroll(
        cell.step, params, carry, xs[:4], reverse=True
    )
    assert_trees_close(final, expected_final, 1e-6)
    assert_trees_close(ys[:4], expected_ys, 1e-6)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_reverse_is_the_flipped_sequence(cell, getkey):
    params, carry, xs = _setup(cell, getkey)
    final, ys = jaxrnn.unroll(cell.step, params, carry, xs, reverse=True)
    flipped_final, flipped_ys = jaxrnn.unroll(cell.step, params, carry, xs[::-1])
    assert_trees_close(final, flipped_final, 1e-6)
    assert_trees_close(ys, flipped_ys[::-1], 1e-6)


@pytest.mark.parametrize("factor", [2, 3, True])
def test_unroll_factor_changes_nothing(factor, getkey):
    cell = BY_NAME["lstm"]
    params, carry, xs = _setup(cell, getkey)
    assert_trees_close(
        jaxrnn.unroll(cell.step, params, carry, xs, mask=MASK, unroll=factor),
        jaxrnn.unroll(cell.step, params, carry, xs, mask=MASK),
        1e-6,
    )


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_empty_and_single_step_sequences(cell, getkey):
    params, carry, xs = _setup(cell, getkey)
    for fn in (jaxrnn.unroll, jaxrnn.unroll_loop):
        final, ys = fn(cell.step, params, carry, xs[:0])
        assert ys.shape == (0, cell.out(H))
        assert_trees_close(final, carry, 0)
        final, ys = fn(cell.step, params, carry, xs[:1])
        assert_trees_close((final, ys[0]), cell.step(params, carry, xs[0]), 1e-6)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_gradients_match_finite_differences(cell, getkey):
    """jax.grad through the scan (BPTT) against central differences, in float64."""
    with x64():
        params, carry, xs = _setup(cell, getkey, jnp.float64)
        if cell.name == "rnn_relu":  # keep pre-activations away from the kink at 0
            params = params._replace(b=params.b + 0.5)
        readout = jax.random.normal(getkey(), (T, cell.out(H)), jnp.float64)

        def loss(params, carry, xs):
            final, ys = jaxrnn.unroll(cell.step, params, carry, xs, mask=MASK)
            last = final.h if isinstance(final, jaxrnn.LSTMCarry) else final
            return jnp.sum(ys * readout) + jnp.sum(last**2)

        check_grads(
            loss,
            (params, carry, xs),
            order=1,
            modes=["rev"],
            eps=1e-6,
            atol=1e-6,
            rtol=1e-6,
        )


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_gradients_are_zero_for_masked_inputs(cell, getkey):
    params, carry, xs = _setup(cell, getkey)
    grad = jax.grad(
        lambda xs: jnp.sum(jaxrnn.unroll(cell.step, params, carry, xs, mask=MASK)[1])
    )(xs)
    assert float(jnp.abs(grad[~MASK]).max()) == 0.0
    assert float(jnp.abs(grad[MASK]).max()) > 0.0


def test_lengths_to_mask():
    np.testing.assert_array_equal(
        jaxrnn.lengths_to_mask(jnp.array([0, 2, 5, -1]), 3),
        [[0, 0, 0], [1, 1, 0], [1, 1, 1], [0, 0, 0]],
    )
    assert jaxrnn.lengths_to_mask(jnp.int32(2), 4).tolist() == [
        True,
        True,
        False,
        False,
    ]
    assert jaxrnn.lengths_to_mask(jnp.array([1]), 0).shape == (1, 0)


def test_partial_step_with_keyword_activation(getkey):
    params = jaxrnn.init_rnn(getkey(), D, H)
    xs = jax.random.normal(getkey(), (T, D))
    relu = functools.partial(jaxrnn.rnn_step, activation="relu")
    _, ys = jaxrnn.unroll(relu, params, jaxrnn.init_rnn_carry(H), xs)
    assert float(ys.min()) >= 0.0
