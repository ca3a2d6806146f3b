"""Rematerialisation (`checkpoint=`): the same values and gradients, in less memory."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from helpers import BY_NAME, assert_trees_close, x64

D, H, B = 3, 5, 3
CHOICES = [None, "step", 1, 4, 7, "sqrt", 1000]


@pytest.mark.parametrize("seq_len", [0, 1, 10, 13])
@pytest.mark.parametrize("reverse", [False, True])
def test_unroll_gradients_are_identical_for_every_choice(seq_len, reverse, getkey):
    """Segments that divide T, that do not, longer than T, and T = 0 or 1."""
    cell = BY_NAME["lstm"]
    with x64():
        params = cell.init(getkey(), D, H, init="torch", dtype=jnp.float64)
        carry = cell.random_carry(getkey(), H, jnp.float64)
        xs = jax.random.normal(getkey(), (seq_len, D), jnp.float64)
        mask = jax.random.bernoulli(getkey(), 0.8, (seq_len,))
        reset = jax.random.bernoulli(getkey(), 0.2, (seq_len,))
        weights = jax.random.normal(getkey(), (seq_len, H), jnp.float64)

        def loss(params, carry, xs, checkpoint):
            final, ys = jaxrnn.unroll(
                cell.step,
                params,
                carry,
                xs,
                mask=mask,
                reset=reset,
                reverse=reverse,
                checkpoint=checkpoint,
            )
            return jnp.sum(ys * weights) + jnp.sum(final.c**2), (final, ys)

        grad = jax.jit(
            jax.grad(loss, argnums=(0, 1, 2), has_aux=True), static_argnums=3
        )
        expected = grad(params, carry, xs, None)
        for checkpoint in CHOICES[1:]:
            assert_trees_close(grad(params, carry, xs, checkpoint), expected, 1e-12)


@pytest.mark.slow  # the Python 3.12 pass checks checkpointing on the cells
@pytest.mark.parametrize("checkpoint", ["step", 4, "sqrt"])
def test_layer_with_every_option_is_unchanged_by_checkpointing(checkpoint, getkey):
    params = jaxrnn.init_layer(
        getkey(),
        "layer_norm_gru",
        D,
        H,
        num_layers=2,
        bidirectional=True,
        learn_initial_state=True,
    )
    xs = jax.random.normal(getkey(), (B, 11, D))
    options = dict(
        lengths=jnp.array([11, 6, 0]),
        reset=jax.random.bernoulli(getkey(), 0.2, (B, 11)),
        recurrent_dropout=0.2,
        zoneout=0.1,
        dropout=0.1,
        key=getkey(),
    )

    def loss(params, checkpoint):
        ys, state = jaxrnn.apply_layer(params, xs, checkpoint=checkpoint, **options)
        return jnp.sum(ys**2) + jnp.sum(state**2)

    grad = jax.jit(jax.value_and_grad(loss), static_argnums=1)
    assert_trees_close(grad(params, checkpoint), grad(params, None), 1e-5)


def _temp_bytes(checkpoint, seq_len):
    params = jaxrnn.init_layer(jax.random.key(0), "lstm", 8, 32)
    xs = jnp.zeros((2, seq_len, 8))

    def loss(params):  # many-to-one: no [T, ...] outputs are kept at all
        last, _ = jaxrnn.apply_layer(
            params, xs, checkpoint=checkpoint, return_sequences=False
        )
        return jnp.sum(last)

    compiled = jax.jit(jax.grad(loss)).lower(params).compile()
    return compiled.memory_analysis().temp_size_in_bytes


@pytest.mark.slow
def test_segments_bound_the_memory_of_the_backward_pass():
    """XLA's own accounting of the compiled gradient: O(T) without checkpointing,
    O(sqrt(T)) with segments of sqrt(T) (4x the length, about 2x the memory)."""
    none_1k, none_4k = _temp_bytes(None, 1024), _temp_bytes(None, 4096)
    sqrt_1k, sqrt_4k = _temp_bytes("sqrt", 1024), _temp_bytes("sqrt", 4096)
    assert none_4k > 3.5 * none_1k  # linear in T
    assert sqrt_4k < 2.5 * sqrt_1k  # about sqrt(4) = 2
    assert sqrt_4k * 10 < none_4k
    assert _temp_bytes("step", 4096) < none_4k


def test_outputs_of_every_step_are_an_o_t_floor():
    """With return_sequences=True the outputs and their cotangent are O(T) by
    nature; checkpointing still removes everything else."""
    params = jaxrnn.init_layer(jax.random.key(0), "lstm", 8, 32)
    xs = jnp.zeros((2, 4096, 8))

    def temp(checkpoint):
        loss = lambda p: jnp.sum(jaxrnn.apply_layer(p, xs, checkpoint=checkpoint)[0])
        compiled = jax.jit(jax.grad(loss)).lower(params).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    outputs = 2 * 4096 * 32 * 4  # ys [B, T, H] in float32
    assert temp("sqrt") < 3 * outputs < temp(None) / 2


def test_return_sequences_false_is_the_final_h(getkey):
    params = jaxrnn.init_layer(
        getkey(), "gru", D, H, num_layers=2, bidirectional=True, merge="mean"
    )
    xs = jax.random.normal(getkey(), (B, 9, D))
    lengths = jnp.array([9, 4, 0])
    last, state = jaxrnn.apply_layer(
        params, xs, lengths=lengths, return_sequences=False, checkpoint=3
    )
    ys, expected_state = jaxrnn.apply_layer(params, xs, lengths=lengths)
    assert_trees_close(state, expected_state, 1e-6)
    np.testing.assert_allclose(last, (state[2] + state[3]) / 2, atol=1e-6)
    # The forward half is the output at each sequence's last valid step.
    one_way = jaxrnn.init_layer(getkey(), "gru", D, H)
    last, _ = jaxrnn.apply_layer(one_way, xs, lengths=lengths, return_sequences=False)
    ys, _ = jaxrnn.apply_layer(one_way, xs, lengths=lengths)
    np.testing.assert_allclose(last[0], ys[0, 8], atol=1e-6)
    np.testing.assert_allclose(last[1], ys[1, 3], atol=1e-6)
    np.testing.assert_allclose(last[2], 0.0)
    with pytest.raises(ValueError, match=r"return_sequences must be True"):
        jaxrnn.apply_layer(one_way, xs, return_sequences=False, include_initial=True)


def test_checkpoint_argument_errors(getkey):
    params = jaxrnn.init_gru(getkey(), D, H)
    run = functools.partial(jaxrnn.unroll, jaxrnn.gru_step, params, jnp.zeros(H))
    xs = jnp.ones((4, D))
    with pytest.raises(ValueError, match=r"unroll: checkpoint must be None, 'step'"):
        run(xs, checkpoint="segment")
    with pytest.raises(ValueError, match=r"unroll: checkpoint must be a positive int"):
        run(xs, checkpoint=0)
    with pytest.raises(TypeError, match=r"unroll: checkpoint must be None"):
        run(xs, checkpoint=2.5)
    layer = jaxrnn.init_layer(getkey(), "gru", D, H)
    with pytest.raises(TypeError, match=r"apply_layer: checkpoint must be None"):
        jaxrnn.apply_layer(layer, xs[None], checkpoint=True)
    np.testing.assert_array_equal(run(xs, checkpoint=2)[1], run(xs)[1])
