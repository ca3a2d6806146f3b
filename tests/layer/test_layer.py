"""The stacked, bidirectional, variable-length layer."""

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from helpers import assert_trees_close, x64

D, H, T, B = 3, 5, 7, 4
LENGTHS = jnp.array([7, 5, 1, 3])
STEPS = {"rnn": jaxrnn.rnn_step, "lstm": jaxrnn.lstm_step, "gru": jaxrnn.gru_step}


def _by_hand(params, xs, lengths=None, state=None):
    """Compose single-direction unrolls layer by layer, example by example."""
    step = STEPS[params.cell]
    if params.cell == "rnn":
        step = functools.partial(step, activation=params.activation)
    inputs = np.asarray(xs)
    finals = []
    for layer, cells in enumerate(params.cells):
        per_direction = []
        for d, cell_params in enumerate(cells):
            index = layer * len(cells) + d
            ys_b = []
            for b in range(xs.shape[0]):
                if state is None:
                    carry = (
                        jaxrnn.init_lstm_carry(H)
                        if params.cell == "lstm"
                        else jnp.zeros(H)
                    )
                else:
                    carry = jax.tree.map(lambda a: a[index, b], state)
                x = jnp.asarray(inputs[b])
                n = T if lengths is None else int(lengths[b])
                # Only the valid part of the sequence exists for this example.
                final, ys = jaxrnn.unroll(
                    step, cell_params, carry, x[:n], reverse=d == 1
                )
                ys_b.append(np.concatenate([np.asarray(ys), np.zeros((T - n, H))]))
                finals.append((index, b, final))
            per_direction.append(np.stack(ys_b))
        inputs = np.concatenate(per_direction, -1)
    return inputs, finals


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("num_layers,bidirectional", [(1, True), (3, False), (2, True)])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_layer_equals_composition_by_hand(
    cell, num_layers, bidirectional, with_lengths, getkey
):
    params = jaxrnn.init_layer(
        getkey(),
        cell,
        D,
        H,
        num_layers=num_layers,
        bidirectional=bidirectional,
        init="torch",
    )
    xs = jax.random.normal(getkey(), (B, T, D))
    lengths = LENGTHS if with_lengths else None
    directions = 2 if bidirectional else 1
    shape = (num_layers * directions, B, H)
    state = jax.random.normal(getkey(), shape)
    state = jaxrnn.LSTMCarry(state, -state) if cell == "lstm" else state
    ys, final = jaxrnn.apply_layer(params, xs, lengths=lengths, initial_state=state)
    assert ys.shape == (B, T, directions * H)
    assert jax.tree.map(jnp.shape, final) == jax.tree.map(jnp.shape, state)
    expected_ys, expected_finals = _by_hand(params, xs, lengths, state)
    np.testing.assert_allclose(ys, expected_ys, rtol=1e-5, atol=1e-5)
    for index, b, carry in expected_finals:
        assert_trees_close(jax.tree.map(lambda a: a[index, b], final), carry, 1e-5)


def test_mask_and_lengths_agree(getkey):
    params = jaxrnn.init_layer(getkey(), "gru", D, H, bidirectional=True)
    xs = jax.random.normal(getkey(), (B, T, D))
    by_lengths = jaxrnn.apply_layer(params, xs, lengths=LENGTHS)
    by_mask = jaxrnn.apply_layer(params, xs, mask=jaxrnn.lengths_to_mask(LENGTHS, T))
    assert_trees_close(by_lengths, by_mask, 0)


def test_zero_length_sequence_keeps_initial_state(getkey):
    params = jaxrnn.init_layer(getkey(), "lstm", D, H, num_layers=2, bidirectional=True)
    xs = jax.random.normal(getkey(), (2, T, D))
    ys, final = jaxrnn.apply_layer(params, xs, lengths=jnp.array([0, T]))
    assert float(jnp.abs(ys[0]).max()) == 0.0
    assert float(jnp.abs(final.h[:, 0]).max()) == 0.0


def test_jit_equals_eager_and_params_are_a_pytree(getkey):
    params = jaxrnn.init_layer(
        getkey(), "rnn", D, H, num_layers=2, bidirectional=True, activation="relu"
    )
    xs = jax.random.normal(getkey(), (B, T, D))
    eager = jaxrnn.apply_layer(params, xs, lengths=LENGTHS)
    jitted = jax.jit(functools.partial(jaxrnn.apply_layer, lengths=LENGTHS))(params, xs)
    assert_trees_close(jitted, eager, 1e-6)
    leaves, treedef = jax.tree.flatten(params)
    assert len(leaves) == 2 * 2 * 3
    rebuilt = jax.tree.unflatten(treedef, leaves)
    assert rebuilt.activation == "relu" and rebuilt.cell == "rnn"
    # The activation is used: relu outputs of the last layer are >= 0.
    assert float(eager[0].min()) >= 0.0


def test_gradients_flow_through_the_layer(getkey):
    params = jaxrnn.init_layer(getkey(), "lstm", D, H, num_layers=2, bidirectional=True)
    xs = jax.random.normal(getkey(), (B, T, D))
    grads = jax.grad(
        lambda p: jnp.sum(jaxrnn.apply_layer(p, xs, lengths=LENGTHS)[0] ** 2)
    )(params)
    assert isinstance(grads, jaxrnn.LayerParams)
    for leaf in jax.tree.leaves(grads):
        assert float(jnp.abs(leaf).max()) > 0.0


def test_dropout_between_layers(getkey):
    params = jaxrnn.init_layer(getkey(), "gru", D, H, num_layers=3)
    xs = jax.random.normal(getkey(), (B, T, D))
    evaluation = jaxrnn.apply_layer(params, xs)
    key = getkey()
    a = jaxrnn.apply_layer(params, xs, dropout=0.5, key=key)
    b = jaxrnn.apply_layer(params, xs, dropout=0.5, key=key)
    c = jaxrnn.apply_layer(params, xs, dropout=0.5, key=getkey())
    assert_trees_close(a, b, 0)  # keyed: reproducible
    assert not np.allclose(a[0], c[0])  # another key, another mask
    assert not np.allclose(a[0], evaluation[0])  # dropout changes training outputs
    assert_trees_close(
        jaxrnn.apply_layer(params, xs, dropout=0.0, key=key), evaluation, 0
    )
    # It acts between layers only: with one layer it changes nothing, and warns.
    one = jaxrnn.init_layer(getkey(), "gru", D, H)
    with pytest.warns(UserWarning, match="no effect with num_layers=1"):
        dropped = jaxrnn.apply_layer(one, xs, dropout=0.5, key=key)
    assert_trees_close(dropped, jaxrnn.apply_layer(one, xs), 0)


def test_dropout_scales_kept_units(getkey):
    """Inverted dropout: E[output] is unchanged, so evaluation needs no rescaling."""
    params = jaxrnn.init_layer(
        getkey(), "rnn", D, H, num_layers=2, activation="relu", bias=False
    )
    # Identity second layer: its input is what dropout produced.
    eye = jnp.eye(H)
    second = params.cells[1][0]._replace(w_ih=eye, w_hh=jnp.zeros((H, H)))
    params = jaxrnn.LayerParams((params.cells[0], (second,)), "relu")
    xs = jnp.abs(jax.random.normal(getkey(), (B, T, D)))
    first = jaxrnn.apply_layer(jaxrnn.LayerParams((params.cells[0],), "relu"), xs)[0]
    out = jaxrnn.apply_layer(params, xs, dropout=0.25, key=getkey())[0]
    kept = out != 0
    np.testing.assert_allclose(out[kept], first[kept] / 0.75, rtol=1e-5)
    assert 0.6 < float(kept[first != 0].mean()) < 0.9


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float64])
def test_layer_preserves_dtype(dtype, getkey):
    with x64():
        params = jaxrnn.init_layer(
            getkey(), "lstm", D, H, num_layers=2, bidirectional=True, dtype=dtype
        )
        xs = jax.random.normal(getkey(), (B, T, D)).astype(dtype)
        ys, final = jaxrnn.apply_layer(params, xs, lengths=LENGTHS)
        assert ys.dtype == dtype and final.h.dtype == dtype and final.c.dtype == dtype


def test_cell_options_reach_the_cells_initialiser(getkey):
    """init_layer's cell_options go to every layer's and direction's
    initialiser: the IndRNN's horizon gives the paper's range for u."""
    key = getkey()
    p = jaxrnn.init_layer(key, "indrnn", D, 64, cell_options={"horizon": 1})
    alone = jaxrnn.init_indrnn(jax.random.split(key, 1)[0], D, 64, horizon=1)
    assert_trees_close(p.cells[0][0], alone, 0.0)
    # U(0, 2^(1/T)) with T = 1 reaches above the default's U(0, 1).
    assert float(p.cells[0][0].w_hh.max()) > 1.0
    p = jaxrnn.init_layer(
        key,
        "indrnn",
        D,
        H,
        num_layers=2,
        bidirectional=True,
        cell_options={"horizon": 50},
    )
    for cell in (c for cells in p.cells for c in cells):
        assert bool(jnp.all(cell.w_hh <= 2 ** (1 / 50)))


@pytest.mark.parametrize(
    "cell, options, kind, words",
    [
        (
            "indrnn",
            {"horizn": 3},
            ValueError,
            "init_indrnn beyond init_layer's own (horizon)",
        ),
        (
            "gru",
            {"horizon": 3},
            ValueError,
            "init_gru beyond init_layer's own (it has none)",
        ),
        ("lstm", {"forget_bias": 1.0}, ValueError, "['forget_bias']"),
        ("lstm", [("horizon", 3)], TypeError, "must be a dict or None, got a list"),
    ],
)
def test_bad_cell_options_are_refused_by_name(getkey, cell, options, kind, words):
    with pytest.raises(kind, match=r"init_layer: cell_options") as info:
        jaxrnn.init_layer(getkey(), cell, D, H, cell_options=options)
    assert words in str(info.value)


def test_init_layer_options(getkey):
    p = jaxrnn.init_layer(
        getkey(),
        "lstm",
        D,
        H,
        num_layers=2,
        bidirectional=True,
        bias=False,
        forget_bias=None,
    )
    assert all(c.b is None for cells in p.cells for c in cells)
    assert p.cells[1][1].w_ih.shape == (4 * H, 2 * H)
    assert (p.num_layers, p.num_directions, p.input_size, p.hidden_size) == (2, 2, D, H)
    p = jaxrnn.init_layer(getkey(), "lstm", D, H, forget_bias=3.0)
    np.testing.assert_array_equal(p.cells[0][0].b[H : 2 * H], 3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jaxrnn.init_layer(getkey(), "gru", D, H, init="torch")
