"""Bad input raises ValueError/TypeError at trace time: argument, expected, given."""

import contextlib
import re

import jax
import jax.numpy as jnp
import pytest

import jaxrnn
from jaxrnn import train

D, H, T, B = 3, 5, 7, 4


@pytest.fixture
def lstm(getkey):
    return jaxrnn.init_lstm(getkey(), D, H)


@pytest.fixture
def layer(getkey):
    return jaxrnn.init_layer(getkey(), "lstm", D, H, num_layers=2, bidirectional=True)


@contextlib.contextmanager
def raises(kind, *patterns):
    """pytest.raises whose message must also match every regex in `patterns`."""
    with pytest.raises(kind) as info:
        yield info
    for pattern in patterns:
        assert re.search(pattern, str(info.value)), (pattern, str(info.value))


# ------------------------------------------------------------------------- inputs


def test_wrong_input_size(lstm):
    with raises(
        ValueError, r"lstm_step: x must have shape \[D\] = \(3,\)", r"got shape \(4,\)"
    ):
        jaxrnn.lstm_step(lstm, jaxrnn.init_lstm_carry(H), jnp.ones(4))


def test_integer_and_complex_inputs(lstm, layer):
    with raises(TypeError, r"lstm_step: x must have a real floating dtype", "int32"):
        jaxrnn.lstm_step(lstm, jaxrnn.init_lstm_carry(H), jnp.ones(D, jnp.int32))
    with raises(TypeError, r"unroll: xs must have a real floating dtype", "int32"):
        jaxrnn.unroll(
            jaxrnn.lstm_step,
            lstm,
            jaxrnn.init_lstm_carry(H),
            jnp.ones((T, D), jnp.int32),
        )
    with raises(TypeError, r"apply_layer: xs .*floating", "complex64"):
        jaxrnn.apply_layer(layer, jnp.ones((B, T, D), jnp.complex64))


def test_dtype_mismatch_names_both_dtypes(lstm):
    with raises(TypeError, r"x must have the dtype of params \(float32\)", "bfloat16"):
        jaxrnn.lstm_step(lstm, jaxrnn.init_lstm_carry(H), jnp.ones(D, jnp.bfloat16))
    with raises(
        TypeError, r"carry.c must have the dtype of params \(float32\)", "bfloat16"
    ):
        jaxrnn.lstm_step(
            lstm,
            jaxrnn.LSTMCarry(jnp.zeros(H), jnp.zeros(H, jnp.bfloat16)),
            jnp.ones(D),
        )


def test_batched_input_to_the_step_or_unroll_points_to_vmap(lstm):
    with raises(ValueError, r"x must be one example \[D\]", r"\(4, 3\)", "vmap"):
        jaxrnn.lstm_step(lstm, jaxrnn.init_lstm_carry(H), jnp.ones((B, D)))
    with raises(
        ValueError, r"unroll: xs must be 2-D", r"\(4, 7, 3\)", r"\[T, D\]", "vmap"
    ):
        jaxrnn.unroll(
            jaxrnn.lstm_step, lstm, jaxrnn.init_lstm_carry(H), jnp.ones((B, T, D))
        )


def test_unbatched_input_to_the_layer_points_to_a_batch_axis(layer):
    with raises(ValueError, r"apply_layer: xs must be 3-D", r"\(7, 3\)", r"xs\[None\]"):
        jaxrnn.apply_layer(layer, jnp.ones((T, D)))
    with raises(
        ValueError, r"apply_layer: xs must be \[B, T, D\] with D = 3", r"\(4, 7, 2\)"
    ):
        jaxrnn.apply_layer(layer, jnp.ones((B, T, 2)))


# ------------------------------------------------------------------------- carries


def test_carry_of_the_wrong_shape(lstm, getkey):
    with raises(ValueError, r"carry.h must have shape \[H\] = \(5,\)", r"\(6,\)"):
        jaxrnn.lstm_step(
            lstm, jaxrnn.LSTMCarry(jnp.zeros(6), jnp.zeros(H)), jnp.ones(D)
        )
    gru = jaxrnn.init_gru(getkey(), D, H)
    with raises(
        ValueError, r"gru_step: carry must have shape \[H\]", r"\(4, 5\)", "vmap"
    ):
        jaxrnn.gru_step(gru, jnp.zeros((B, H)), jnp.ones(D))


def test_lstm_carry_must_be_an_lstm_carry(lstm):
    with raises(TypeError, r"carry must be LSTMCarry\(h, c\)", "tuple", "LSTMCarry"):
        jaxrnn.lstm_step(lstm, (jnp.zeros(H), jnp.zeros(H)), jnp.ones(D))
    with raises(TypeError, r"carry must be LSTMCarry", r"an array of shape \(5,\)"):
        jaxrnn.unroll(jaxrnn.lstm_step, lstm, jnp.zeros(H), jnp.ones((T, D)))


def test_layer_initial_state(layer):
    with raises(
        ValueError,
        r"initial_state.h must have shape \[num_layers \* num_directions, "
        r"B, H\] = \(4, 4, 5\)",
        r"\(2, 4, 5\)",
    ):
        zeros = jnp.zeros((2, B, H))
        jaxrnn.apply_layer(
            layer, jnp.ones((B, T, D)), initial_state=jaxrnn.LSTMCarry(zeros, zeros)
        )
    with raises(TypeError, r"initial_state must be LSTMCarry\(h, c\)"):
        jaxrnn.apply_layer(
            layer, jnp.ones((B, T, D)), initial_state=jnp.zeros((4, B, H))
        )


# -------------------------------------------------------------------------- params


def test_params_from_another_cell(lstm, getkey):
    with raises(TypeError, r"gru_step: params must be GRUParams", "LSTMParams"):
        jaxrnn.gru_step(lstm, jnp.zeros(H), jnp.ones(D))
    with raises(
        TypeError, r"rnn_step: params must be RNNParams", "LSTMParams", "init_rnn"
    ):
        jaxrnn.unroll(jaxrnn.rnn_step, lstm, jnp.zeros(H), jnp.ones((T, D)))
    with raises(TypeError, r"apply_layer: params must be LayerParams", "LSTMParams"):
        jaxrnn.apply_layer(lstm, jnp.ones((B, T, D)))


def test_inconsistent_params(lstm):
    with raises(ValueError, r"params.w_ih must have shape \[4H, D\]", r"\(19, 3\)"):
        jaxrnn.lstm_step(
            lstm._replace(w_ih=lstm.w_ih[:-1]), jaxrnn.init_lstm_carry(H), jnp.ones(D)
        )
    with raises(ValueError, r"params.b must have shape \[4H\] = \(20,\)", r"\(5,\)"):
        jaxrnn.lstm_step(
            lstm._replace(b=lstm.b[:H]), jaxrnn.init_lstm_carry(H), jnp.ones(D)
        )


@pytest.mark.parametrize(
    "value,kind",
    [
        (0, ValueError),
        (-3, ValueError),
        (2.5, TypeError),
        ("3", TypeError),
        (True, TypeError),
    ],
)
def test_bad_sizes(value, kind, getkey):
    with raises(kind, r"init_gru: hidden_size must be a positive int", repr(value)):
        jaxrnn.init_gru(getkey(), D, value)
    with raises(kind, r"init_layer: num_layers must be a positive int"):
        jaxrnn.init_layer(getkey(), "gru", D, H, num_layers=value)


def test_bad_init_options(getkey):
    with raises(TypeError, r"init_lstm: dtype must be a floating dtype", "int32"):
        jaxrnn.init_lstm(getkey(), D, H, dtype=jnp.int32)
    with raises(
        ValueError, r"init_lstm: init must be one of 'default', 'torch'", "'xavier'"
    ):
        jaxrnn.init_lstm(getkey(), D, H, init="xavier")
    with raises(
        ValueError,
        r"init_layer: cell must be one of 'rnn', 'lstm', 'gru'",
        "'transformer'",
    ):
        jaxrnn.init_layer(getkey(), "transformer", D, H)
    with raises(
        ValueError,
        r"activation applies to cell='rnn' and cell='indrnn' and cell='min_gru' "
        r"and cell='min_lstm' only",
    ):
        jaxrnn.init_layer(getkey(), "lstm", D, H, activation="relu")
    with raises(ValueError, r"forget_bias applies to the LSTM cells only"):
        jaxrnn.init_layer(getkey(), "gru", D, H, forget_bias=1.0)
    with raises(ValueError, r"forget_bias needs bias=True"):
        jaxrnn.init_lstm(getkey(), D, H, forget_bias=1.0, bias=False)


def test_unknown_activation(getkey):
    rnn = jaxrnn.init_rnn(getkey(), D, H)
    with raises(
        ValueError,
        r"rnn_step: activation must be one of 'tanh', 'sigmoid', 'relu', "
        r"'identity', 'positive' or a callable",
        "'gelu'",
    ):
        jaxrnn.rnn_step(rnn, jnp.zeros(H), jnp.ones(D), activation="gelu")
    with raises(ValueError, r"init_layer: activation must be one of", "'softmax'"):
        jaxrnn.init_layer(getkey(), "rnn", D, H, activation="softmax")
    with raises(TypeError, r"activation must be one of", "3"):
        jaxrnn.rnn_step(rnn, jnp.zeros(H), jnp.ones(D), activation=3)


# --------------------------------------------------------------------- masks, lengths


def test_mask_and_lengths_that_do_not_fit(lstm, layer):
    carry, xs = jaxrnn.init_lstm_carry(H), jnp.ones((T, D))
    with raises(ValueError, r"unroll: mask must have shape \[T\] = \(7,\)", r"\(6,\)"):
        jaxrnn.unroll(jaxrnn.lstm_step, lstm, carry, xs, mask=jnp.ones(6, bool))
    with raises(
        TypeError, r"unroll: mask must have dtype bool", "float32", r"astype\(bool\)"
    ):
        jaxrnn.unroll(jaxrnn.lstm_step, lstm, carry, xs, mask=jnp.ones(T))
    with raises(TypeError, r"unroll: length must have an integer dtype", "float32"):
        jaxrnn.unroll(jaxrnn.lstm_step, lstm, carry, xs, length=jnp.float32(3))
    with raises(
        ValueError, r"unroll: length must have shape \[\] \(a scalar\)", r"\(4,\)"
    ):
        jaxrnn.unroll(jaxrnn.lstm_step, lstm, carry, xs, length=jnp.array([1, 2, 3, 4]))
    with raises(ValueError, r"mask and length are exclusive"):
        jaxrnn.unroll(
            jaxrnn.lstm_step, lstm, carry, xs, mask=jnp.ones(T, bool), length=3
        )
    batch = jnp.ones((B, T, D))
    with raises(
        ValueError, r"apply_layer: lengths must have shape \[B\] = \(4,\)", r"\(3,\)"
    ):
        jaxrnn.apply_layer(layer, batch, lengths=jnp.array([1, 2, 3]))
    with raises(
        ValueError,
        r"apply_layer: mask must have shape \[B, T\] = \(4, 7\)",
        r"\(7, 4\)",
    ):
        jaxrnn.apply_layer(layer, batch, mask=jnp.ones((T, B), bool))


def test_dropout_arguments(layer):
    xs = jnp.ones((B, T, D))
    for option in ("dropout", "recurrent_dropout", "zoneout"):
        with raises(ValueError, r"apply_layer: key is needed when training", "None"):
            jaxrnn.apply_layer(layer, xs, **{option: 0.3})
        with raises(ValueError, rf"apply_layer: {option} must be in \[0, 1\)", "1.5"):
            jaxrnn.apply_layer(layer, xs, key=jax.random.key(0), **{option: 1.5})
        with raises(TypeError, rf"apply_layer: {option} must be a number", "'0.1'"):
            jaxrnn.apply_layer(layer, xs, key=jax.random.key(0), **{option: "0.1"})
    # Evaluation needs no key, whatever the rates.
    jaxrnn.apply_layer(
        layer, xs, dropout=0.3, recurrent_dropout=0.3, zoneout=0.3, training=False
    )
    with raises(ValueError, r"apply_layer: zoneout must be a rate, or a pair"):
        jaxrnn.apply_layer(layer, xs, zoneout=(0.1, 0.2, 0.3), training=False)


# ---------------------------------------------------------------- at trace time


def test_errors_are_raised_at_trace_time_under_jit(lstm, layer):
    carry = jaxrnn.init_lstm_carry(H)
    with raises(ValueError, r"unroll: mask must have shape"):
        jax.jit(lambda xs, m: jaxrnn.unroll(jaxrnn.lstm_step, lstm, carry, xs, mask=m))(
            jnp.ones((T, D)), jnp.ones(T + 1, bool)
        )
    with raises(ValueError, r"x must have shape \[D\]"):
        jax.jit(lambda xs: jaxrnn.unroll(jaxrnn.lstm_step, lstm, carry, xs))(
            jnp.ones((T, 9))
        )
    with raises(ValueError, r"apply_layer: lengths must have shape \[B\]"):
        jax.jit(lambda xs, n: jaxrnn.apply_layer(layer, xs, lengths=n))(
            jnp.ones((B, T, D)), jnp.ones(B + 1, jnp.int32)
        )
    with raises(ValueError, r"apply_layer: xs must be \[B, T, D\]"):
        jax.vmap(lambda xs: jaxrnn.apply_layer(layer, xs))(jnp.ones((2, B, T, 1)))


# ------------------------------------------------------------------ training pieces


def test_loss_errors():
    with raises(
        ValueError,
        r"mse_loss: targets must have shape the shape of predictions",
        r"\(4, 2\)",
    ):
        train.mse_loss(jnp.ones((4, 3)), jnp.ones((4, 2)))
    with raises(
        TypeError, r"cross_entropy_loss: labels must have an integer dtype", "float32"
    ):
        train.cross_entropy_loss(jnp.ones((4, 3)), jnp.ones(4))
    with raises(
        ValueError,
        r"cross_entropy_loss: labels must have the shape of logits "
        r"without its last \(class\) axis, \(4,\)",
        r"\(4, 3\)",
    ):
        train.cross_entropy_loss(jnp.ones((4, 3)), jnp.ones((4, 3), jnp.int32))
    with raises(ValueError, r"mse_loss: mask must have a leading part of shape"):
        train.mse_loss(jnp.ones((4, 3)), jnp.ones((4, 3)), jnp.ones(5, bool))


def test_optimizer_errors():
    with raises(
        ValueError,
        r"make_optimizer: learning_rate must be a positive finite number",
        "-0.1",
    ):
        train.make_optimizer(-0.1)
    with raises(
        ValueError, r"make_optimizer: max_norm must be a positive finite number", "0"
    ):
        train.make_optimizer(max_norm=0)
    with raises(
        TypeError, r"make_train_step: optimizer must be an optax.GradientTransformation"
    ):
        train.make_train_step(lambda p: p, lambda p: 0.0)
    with raises(ValueError, r"make_tbptt_step: window must be a positive int", "0"):
        train.make_tbptt_step(train.make_optimizer(), lambda p, c, b: (0.0, c), 0)


@pytest.mark.parametrize(
    "make",
    [
        lambda dt: jaxrnn.init_layer(jax.random.key(0), "lstm", 3, 4, dtype=dt),
        lambda dt: jaxrnn.init_gru(jax.random.key(0), 3, 4, dtype=dt),
        lambda dt: jaxrnn.init_lstm_carry(4, dtype=dt),
    ],
)
def test_float64_without_x64_is_one_clear_error(make):
    """Not six JAX warnings and float32 arrays: one message that says how."""
    import warnings

    assert not jax.config.read("jax_enable_x64")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"64-bit mode.*jax_enable_x64"):
            make(jnp.float64)


def test_float64_and_float32_mixed_are_named_with_x64_on():
    from helpers import x64

    with x64():
        p64 = jaxrnn.init_layer(jax.random.key(0), "gru", 3, 4, dtype=jnp.float64)
        p32 = jaxrnn.init_layer(jax.random.key(0), "gru", 3, 4)
        with pytest.raises(TypeError, match=r"params \(float32\), got dtype float64"):
            jaxrnn.apply_layer(p32, jnp.ones((1, 2, 3), jnp.float64))
        with pytest.raises(TypeError, match=r"params \(float64\), got dtype float32"):
            jaxrnn.apply_layer(p64, jnp.ones((1, 2, 3), jnp.float32))
