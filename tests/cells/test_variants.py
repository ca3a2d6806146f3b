"""The cell variants: each against an identity that holds for it alone.

The NumPy transcriptions in helpers.py cover values, and test_unroll covers
finite differences, jit and vmap, for every cell in the registry. These tests
check what makes each variant what it is, with every parameter randomised.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from helpers import (
    CELL_IDS,
    CELLS,
    VARIANTS,
    assert_trees_close,
    randomise,
    sigmoid,
    x64,
)

D, H, T = 3, 5, 7


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_every_parameter_randomised_matches_numpy(cell, getkey):
    """Gains, peepholes and projections far from their initial values."""
    with x64():
        params = randomise(cell.init(getkey(), D, H, dtype=jnp.float64), getkey())
        carry = cell.random_carry(getkey(), H, jnp.float64)
        xs = jax.random.normal(getkey(), (T, D), jnp.float64)
        final, ys = jaxrnn.unroll(cell.step, params, carry, xs)
        expected_final, expected_ys = cell.numpy(params, carry, xs)
        assert_trees_close((final, ys), (expected_final, expected_ys), 1e-12)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_recurrent_mask_multiplies_h_where_it_enters_w_hh(cell, getkey):
    """step(p, h, x, recurrent_mask=m) == step(p with w_hh * m, h, x), exactly the
    identity w_hh @ (m * h) = (w_hh * m) @ h; the carry paths keep h unmasked.
    A cell without w_hh (the min cells) reads h once, in a * h: there the
    mask is the same as a masked carry."""
    with x64():
        params = randomise(cell.init(getkey(), D, H, dtype=jnp.float64), getkey())
        carry = cell.random_carry(getkey(), H, jnp.float64)
        x = jax.random.normal(getkey(), (D,), jnp.float64)
        m = jax.random.bernoulli(getkey(), 0.5, (cell.out(H),)).astype(jnp.float64) * 2
        masked = cell.step(params, carry, x, recurrent_mask=m)
        if hasattr(params, "w_hh"):
            rows = m if params.w_hh.ndim == 1 else m[None]  # IndRNN's w_hh is [H]
            by_weights = cell.step(params._replace(w_hh=params.w_hh * rows), carry, x)
        else:
            by_weights = cell.step(params, carry * m, x)
        assert_trees_close(masked, by_weights, 1e-12)
        ones = cell.step(params, carry, x, recurrent_mask=jnp.ones_like(m))
        assert_trees_close(ones, cell.step(params, carry, x), 0)


def test_peephole_lstm_without_peepholes_is_the_lstm(getkey):
    params = jaxrnn.init_peephole_lstm(getkey(), D, H, init="torch")
    assert float(jnp.abs(params.w_ci).max()) > 0  # "torch" draws them
    plain = jaxrnn.init_peephole_lstm(getkey(), D, H)  # "default": zeros
    lstm = jaxrnn.LSTMParams(plain.w_ih, plain.w_hh, plain.b)
    carry = jaxrnn.LSTMCarry(*jax.random.normal(getkey(), (2, H)))
    xs = jax.random.normal(getkey(), (T, D))
    assert_trees_close(
        jaxrnn.unroll(jaxrnn.peephole_lstm_step, plain, carry, xs),
        jaxrnn.unroll(jaxrnn.lstm_step, lstm, carry, xs),
        1e-6,
    )


def test_peepholes_read_the_old_cell_for_i_f_and_the_new_for_o(getkey):
    """With zero weights, the gates see only b + w_c * c: check each by hand."""
    zero = jaxrnn.init_peephole_lstm(getkey(), D, H, bias=False)
    zero = zero._replace(w_ih=zero.w_ih * 0, w_hh=zero.w_hh * 0)
    w_ci, w_cf, w_co = jax.random.normal(getkey(), (3, H))
    params = zero._replace(w_ci=w_ci, w_cf=w_cf, w_co=w_co)
    c = jax.random.normal(getkey(), (H,))
    new, h = jaxrnn.peephole_lstm_step(params, jaxrnn.LSTMCarry(c, c), jnp.ones(D))
    c_new = sigmoid(np.asarray(w_cf * c)) * np.asarray(c)  # tanh(g) = tanh(0) = 0
    np.testing.assert_allclose(new.c, c_new, rtol=1e-6)
    np.testing.assert_allclose(
        h, sigmoid(np.asarray(w_co) * c_new) * np.tanh(c_new), rtol=1e-5, atol=1e-7
    )


@pytest.mark.parametrize("name", ["layer_norm_lstm", "layer_norm_gru"])
def test_layer_norm_cells_are_invariant_to_the_scale_of_the_weights(name, getkey):
    """LN removes the scale of W_x x and W_h h: scaling them changes nothing."""
    cell = next(c for c in CELLS if c.name == name)
    with x64():
        params = randomise(cell.init(getkey(), D, H, dtype=jnp.float64), getkey())
        carry = cell.random_carry(getkey(), H, jnp.float64)
        xs = jax.random.normal(getkey(), (T, D), jnp.float64)
        base = jaxrnn.unroll(cell.step, params, carry, xs)
        scaled = params._replace(w_ih=params.w_ih * 7.0, w_hh=params.w_hh * 5.0)
        # Exact but for the 1e-5 added to the variance (the ratio is ~eps/var).
        assert_trees_close(jaxrnn.unroll(cell.step, scaled, carry, xs), base, 1e-4)
        # A plain (un-normalised) cell is not invariant: the check has teeth.
        plain = jaxrnn.init_lstm(getkey(), D, H, dtype=jnp.float64)
        lstm_carry = jaxrnn.init_lstm_carry(H, dtype=jnp.float64)
        a = jaxrnn.unroll(jaxrnn.lstm_step, plain, lstm_carry, xs)[1]
        b = jaxrnn.unroll(
            jaxrnn.lstm_step, plain._replace(w_ih=plain.w_ih * 7.0), lstm_carry, xs
        )[1]
        assert float(jnp.abs(a - b).max()) > 1e-2


def test_layer_norm_statistics_in_float32_for_half_precision(getkey):
    """bfloat16 cells normalise in float32 and track the float32 cell."""
    params = randomise(jaxrnn.init_layer_norm_lstm(getkey(), D, H), getkey())
    carry = jaxrnn.LSTMCarry(*jax.random.normal(getkey(), (2, H)))
    xs = 100.0 * jax.random.normal(getkey(), (T, D))  # large pre-activations
    _, ys32 = jaxrnn.unroll(jaxrnn.layer_norm_lstm_step, params, carry, xs)
    cast = lambda t: jax.tree.map(lambda a: a.astype(jnp.bfloat16), t)
    _, ys16 = jaxrnn.unroll(
        jaxrnn.layer_norm_lstm_step, cast(params), cast(carry), cast(xs)
    )
    assert ys16.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(ys16, np.float32), ys32, atol=6e-2)


def test_cifg_is_the_lstm_with_the_input_gate_tied_to_one_minus_forget(getkey):
    """sigmoid(-z) = 1 - sigmoid(z): an LSTM whose i block is minus its f block."""
    cifg = randomise(jaxrnn.init_cifg_lstm(getkey(), D, H), getkey())
    blocks = [jnp.split(w, 3) for w in (cifg.w_ih, cifg.w_hh, cifg.b)]
    lstm = jaxrnn.LSTMParams(*(jnp.concatenate([-f, f, g, o]) for f, g, o in blocks))
    carry = jaxrnn.LSTMCarry(*jax.random.normal(getkey(), (2, H)))
    xs = jax.random.normal(getkey(), (T, D))
    assert_trees_close(
        jaxrnn.unroll(jaxrnn.cifg_lstm_step, cifg, carry, xs),
        jaxrnn.unroll(jaxrnn.lstm_step, lstm, carry, xs),
        1e-5,
    )


def test_cifg_and_lstm_forget_bias_blocks(getkey):
    np.testing.assert_array_equal(
        jaxrnn.init_cifg_lstm(getkey(), D, H, forget_bias=2.0).b,
        np.r_[2.0 * np.ones(H), np.zeros(2 * H)],
    )
    for init in (jaxrnn.init_peephole_lstm, jaxrnn.init_layer_norm_lstm):
        np.testing.assert_array_equal(
            init(getkey(), D, H).b, np.r_[np.zeros(H), np.ones(H), np.zeros(2 * H)]
        )


def test_mgu_gate_extremes(getkey):
    """f shut: h is kept; f open: h is the candidate tanh(W_h x + U_h h + b_h)."""
    params = randomise(jaxrnn.init_mgu(getkey(), D, H), getkey())
    h, x = jax.random.normal(getkey(), (H,)), jax.random.normal(getkey(), (D,))
    for bias_f, expected in [(-60.0, h), (60.0, None)]:
        p = params._replace(b=params.b.at[:H].set(bias_f))
        new, _ = jaxrnn.mgu_step(p, h, x)
        if expected is None:
            u_n = np.asarray(p.w_hh[H:])
            expected = np.tanh(
                np.asarray(p.w_ih[H:]) @ np.asarray(x)
                + u_n @ np.asarray(h)
                + np.asarray(p.b[H:])
            )
        np.testing.assert_allclose(new, expected, rtol=1e-5, atol=1e-5)


def test_projection_sizes_and_init(getkey):
    p = jaxrnn.init_proj_lstm(getkey(), D, 8, 3, init="torch")
    assert (p.w_ih.shape, p.w_hh.shape, p.b.shape, p.w_hr.shape) == (
        (32, D),
        (32, 3),
        (32,),
        (3, 8),
    )
    assert float(jnp.abs(p.w_hr).max()) <= 1 / np.sqrt(8)
    default = jaxrnn.init_proj_lstm(getkey(), D, 8, 3)
    for k in range(4):  # orthonormal columns in each [H, P] block
        block = np.asarray(default.w_hh[8 * k : 8 * (k + 1)])
        np.testing.assert_allclose(block.T @ block, np.eye(3), atol=1e-5)
    with pytest.raises(ValueError, match=r"proj_size must be smaller than hidden_size"):
        jaxrnn.init_proj_lstm(getkey(), D, 4, 4)
    carry = jaxrnn.init_proj_lstm_carry(8, 3)
    assert carry.h.shape == (3,) and carry.c.shape == (8,)
    with pytest.raises(ValueError, match=r"carry.h must have shape \[H\] = \(3,\)"):
        jaxrnn.proj_lstm_step(p, jaxrnn.init_lstm_carry(8), jnp.ones(D))


@pytest.mark.parametrize("cell", VARIANTS, ids=repr)
def test_variant_errors_name_the_argument(cell, getkey):
    params = cell.init(getkey(), D, H)
    carry = cell.init_carry(H)
    other = jaxrnn.init_lstm(getkey(), D, H)
    with pytest.raises(TypeError, match=rf"{cell.spec.name}_step: params must be"):
        cell.step(other, carry, jnp.ones(D))
    with pytest.raises(ValueError, match=r"x must have shape \[D\] = \(3,\)"):
        cell.step(params, carry, jnp.ones(D + 1))
    with pytest.raises(ValueError, match=r"recurrent_mask must have shape \[H\]"):
        cell.step(params, carry, jnp.ones(D), recurrent_mask=jnp.ones(H + 1))
    with pytest.raises(TypeError, match=r"x must have a real floating dtype"):
        cell.step(params, carry, jnp.ones(D, jnp.int32))
    if hasattr(params, "w_hh"):
        bad = params._replace(w_hh=params.w_hh[..., :-1])
    else:
        bad = params._replace(w_ih=params.w_ih[:-1])
    with pytest.raises(ValueError, match=rf"{cell.spec.name}_step: params\."):
        cell.step(bad, carry, jnp.ones(D))
    vector = next((f for f in ("w_ci", "gain_ih", "w_hr") if hasattr(params, f)), None)
    if vector is not None:
        wrong = params._replace(**{vector: getattr(params, vector)[1:]})
        with pytest.raises(ValueError, match=rf"params\.{vector} (and .* )?must"):
            cell.step(wrong, carry, jnp.ones(D))
