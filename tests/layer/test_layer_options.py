"""The layer options, each against its definition, and all of them together.

The oracle here is the definition of each option written out by hand: a
packed row with resets is separate runs of its segments, the learned initial
state is an explicit one, a merge is arithmetic on the two directions, and a
residual connection is an addition. It is built from `unroll_loop`, the
Python-loop twin of the scan, one example and one direction at a time.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from helpers import assert_trees_close
from jaxrnn.cells import _registry

D, H, T, B = 3, 5, 8, 4
LENGTHS = jnp.array([8, 6, 1, 0])
# Every registered cell's reference step, from the registry.
STEPS = {name: spec.step for name, spec in _registry.CELLS.items()}
CELL_NAMES = [name for name in STEPS if name != "proj_lstm"]
MERGE = {
    "concat": lambda f, b: np.concatenate([f, b], -1),
    "sum": lambda f, b: f + b,
    "mean": lambda f, b: (f + b) / 2,
    "product": lambda f, b: f * b,
}


def _layer(key, cell, **kwargs):
    if cell == "proj_lstm":
        kwargs["proj_size"] = 3
        cell = "lstm"
    params = jaxrnn.init_layer(key, cell, D, H, init="torch", **kwargs)
    # Randomise every parameter (gains, peepholes, biases) away from init.
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.fold_in(key, 7), len(leaves))
    leaves = [a + 0.3 * jax.random.normal(k, a.shape) for a, k in zip(leaves, keys)]
    return jax.tree.unflatten(treedef, leaves)


def _random_state(key, params, batch=True):
    count = params.num_layers * params.num_directions
    lead = (count, B) if batch else (count,)
    k_h, k_c = jax.random.split(key)
    h = jax.random.normal(k_h, (*lead, params.output_size))
    if not _registry.CELLS[params.cell].lstm_carry:
        return h
    return jaxrnn.LSTMCarry(h, jax.random.normal(k_c, (*lead, params.hidden_size)))


def _hidden(carry):
    return carry.h if isinstance(carry, jaxrnn.LSTMCarry) else carry


def by_hand(params, xs, lengths=None, state=None, reset=None, include_initial=False):
    """Segments of each row run separately, layer by layer, direction by direction."""
    step = STEPS[params.cell]
    if _registry.CELLS[params.cell].activation:
        step = functools.partial(step, activation=params.activation)
    xs = np.asarray(xs)
    lengths = [T] * B if lengths is None else [int(n) for n in lengths]
    reset = np.zeros((B, T), bool) if reset is None else np.asarray(reset)
    inputs, finals, initial = xs, {}, None
    for layer, cells in enumerate(params.cells):
        outputs, initial = [], []
        for d, cell_params in enumerate(cells):
            index = layer * len(cells) + d
            ys = np.zeros((B, T, params.output_size))
            for b in range(B):
                carry0 = jax.tree.map(lambda a: a[index, b], state)
                n = lengths[b]
                starts = [0] + [t for t in range(1, n) if reset[b, t]]
                ends = starts[1:] + [n]
                final = carry0
                segments = list(zip(starts, ends))
                for s, e in segments if d == 0 else segments[::-1]:
                    x = jnp.asarray(inputs[b, s:e])
                    final, y = jaxrnn.unroll_loop(
                        step, cell_params, carry0, x, reverse=d == 1
                    )
                    ys[b, s:e] = np.asarray(y)
                finals[index, b] = final
            outputs.append(ys)
            initial.append(np.asarray(_hidden(jax.tree.map(lambda a: a[index], state))))
        merged = outputs[0] if len(outputs) == 1 else MERGE[params.merge](*outputs)
        if params.residual and merged.shape[-1] == inputs.shape[-1]:
            valid = np.arange(T)[None, :] < np.array(lengths)[:, None]
            merged = merged + np.where(valid[..., None], inputs, 0)
        inputs = merged
    if include_initial:
        front = initial[0] if len(initial) == 1 else MERGE[params.merge](*initial)
        inputs = np.concatenate([front[:, None], inputs], 1)
    return inputs, finals


def _check(params, xs, ys, final, expected_ys, finals, tol=1e-5):
    np.testing.assert_allclose(ys, expected_ys, rtol=tol, atol=tol)
    for (index, b), carry in finals.items():
        assert_trees_close(jax.tree.map(lambda a: a[index, b], final), carry, tol)


def _reset(key):
    """Random episode starts, at least one per row, within the valid part too."""
    reset = jax.random.bernoulli(key, 0.3, (B, T))
    return reset.at[:, 3].set(True)


@pytest.mark.slow
@pytest.mark.parametrize("cell", list(STEPS))
def test_every_cell_packed_rows_equal_separate_runs(cell, getkey):
    """Resets with lengths, bidirectional, two layers and an initial state."""
    params = _layer(getkey(), cell, num_layers=2, bidirectional=True)
    xs = jax.random.normal(getkey(), (B, T, D))
    state = _random_state(getkey(), params)
    reset = _reset(getkey())
    ys, final = jaxrnn.apply_layer(
        params, xs, lengths=LENGTHS, initial_state=state, reset=reset
    )
    assert ys.shape == (B, T, 2 * params.output_size)
    _check(params, xs, ys, final, *by_hand(params, xs, LENGTHS, state, reset))
    # Without resets, the same oracle is the plain layer.
    ys, final = jaxrnn.apply_layer(params, xs, lengths=LENGTHS, initial_state=state)
    _check(params, xs, ys, final, *by_hand(params, xs, LENGTHS, state))


def test_a_reset_row_equals_separate_sequences(getkey):
    """The issue's definition, literally: one packed row vs two batched rows."""
    params = _layer(getkey(), "lstm", bidirectional=True)
    a = jax.random.normal(getkey(), (1, 3, D))
    b = jax.random.normal(getkey(), (1, 5, D))
    packed = jnp.concatenate([a, b], axis=1)
    reset = jnp.zeros((1, 8), bool).at[0, 3].set(True)
    ys, _ = jaxrnn.apply_layer(params, packed, reset=reset)
    ys_a, _ = jaxrnn.apply_layer(params, a)
    ys_b, _ = jaxrnn.apply_layer(params, b)
    np.testing.assert_allclose(ys, jnp.concatenate([ys_a, ys_b], 1), atol=1e-6)


@pytest.mark.parametrize("merge", ["concat", "sum", "mean", "product"])
@pytest.mark.parametrize("residual", [False, True])
def test_merge_residual_and_initial_outputs(merge, residual, getkey):
    params = _layer(
        getkey(),
        "gru",
        num_layers=3,
        bidirectional=True,
        merge=merge,
        residual=residual,
    )
    width = 2 * H if merge == "concat" else H
    assert params.features == width and params.cells[1][0].w_ih.shape == (3 * H, width)
    xs = jax.random.normal(getkey(), (B, T, D))
    state = _random_state(getkey(), params)
    ys, final = jaxrnn.apply_layer(
        params, xs, lengths=LENGTHS, initial_state=state, include_initial=True
    )
    assert ys.shape == (B, T + 1, width)
    expected = by_hand(params, xs, LENGTHS, state, include_initial=True)
    _check(params, xs, ys, final, *expected)
    # Padding stays zero, residual or not.
    assert float(jnp.abs(ys[3, 1:]).max()) == 0.0


def test_residual_includes_the_first_layer_when_widths_match(getkey):
    params = jaxrnn.init_layer(getkey(), "lstm", H, H, num_layers=1, residual=True)
    xs = jax.random.normal(getkey(), (B, T, H))
    plain = jaxrnn.LayerParams(params.cells)
    np.testing.assert_allclose(
        jaxrnn.apply_layer(params, xs)[0],
        jaxrnn.apply_layer(plain, xs)[0] + xs,
        atol=1e-6,
    )


@pytest.mark.parametrize("cell", ["gru", "lstm", "proj_lstm"])
def test_learned_initial_state(cell, getkey):
    params = _layer(getkey(), cell, num_layers=2, bidirectional=True)
    learned = _random_state(getkey(), params, batch=False)
    learned_params = jaxrnn.LayerParams(params.cells, initial_state=learned)
    xs = jax.random.normal(getkey(), (B, T, D))
    reset = _reset(getkey())
    explicit = jax.tree.map(
        lambda a: jnp.broadcast_to(a[:, None], (a.shape[0], B, a.shape[1])), learned
    )
    run = functools.partial(jaxrnn.apply_layer, lengths=LENGTHS, reset=reset)
    assert_trees_close(
        run(learned_params, xs), run(params, xs, initial_state=explicit), 1e-6
    )
    # The gradient reaches the learned state, every layer and direction of it.
    grads = jax.grad(lambda p: jnp.sum(run(p, xs)[0] ** 2))(learned_params)
    for leaf in jax.tree.leaves(grads.initial_state):
        assert bool(jnp.all(jnp.any(jnp.abs(leaf) > 0, axis=-1)))
    # init_layer makes a zero one, which is a pytree leaf like any weight.
    fresh = jaxrnn.init_layer(
        getkey(), "lstm", D, H, num_layers=2, learn_initial_state=True
    )
    assert fresh.initial_state.h.shape == (2, H)
    assert float(jnp.abs(fresh.initial_state.c).max()) == 0.0
    assert len(jax.tree.leaves(fresh)) == len(jax.tree.leaves(fresh.cells)) + 2


def _counting_rnn(key, bidirectional=True):
    """h_t = m * h_{t-1} + 1 (identity g1, w_ih = 0, w_hh = I, b = 1)."""
    params = jaxrnn.init_layer(
        key, "rnn", D, 16, activation="identity", bidirectional=bidirectional
    )
    cell = jaxrnn.RNNParams(jnp.zeros((16, D)), jnp.eye(16), jnp.ones(16))
    return jaxrnn.LayerParams(((cell,) * params.num_directions,), "identity")


def test_recurrent_dropout_is_one_mask_per_sequence(getkey):
    params = _counting_rnn(getkey())
    xs = jnp.zeros((8, T, D))
    lengths = jnp.array([8, 8, 8, 8, 6, 6, 5, 4])
    ys, _ = jaxrnn.apply_layer(
        params, xs, lengths=lengths, recurrent_dropout=0.5, key=getkey()
    )
    forward, backward = ys[..., :16], ys[..., 16:]
    # m is 0 or 2; a mask constant in time gives h_t = 1 or h_t = 2^t - 1 exactly.
    t = jnp.arange(1, T + 1, dtype=jnp.float32)[None, :, None]
    for b in range(8):
        n = int(lengths[b])
        f = forward[b, :n]
        kept = f[1] == 3.0  # h_2 = m + 1
        expected = jnp.where(kept, 2.0 ** t[0, :n] - 1, 1.0)
        np.testing.assert_array_equal(f, expected)
        # The backward direction runs down from t = n - 1 with its own mask.
        back = backward[b, :n][::-1]
        kept_b = back[1] == 3.0 if n > 1 else None
        if kept_b is not None:
            np.testing.assert_array_equal(
                back, jnp.where(kept_b, 2.0 ** t[0, :n] - 1, 1.0)
            )
    masks = forward[:, 1] == 3.0
    assert 0.3 < float(masks.mean()) < 0.7
    assert len({tuple(np.asarray(m)) for m in masks}) > 1  # differs across rows
    assert not np.array_equal(masks, backward[:, T - 2] == 3.0)  # and directions


def test_stochastic_options_are_keyed_and_off_in_evaluation(getkey):
    params = _layer(getkey(), "layer_norm_lstm", num_layers=2, bidirectional=True)
    xs = jax.random.normal(getkey(), (B, T, D))
    options = dict(dropout=0.3, recurrent_dropout=0.3, lengths=LENGTHS)
    key = getkey()
    a = jaxrnn.apply_layer(params, xs, key=key, **options)
    assert_trees_close(a, jaxrnn.apply_layer(params, xs, key=key, **options), 0)
    other = jaxrnn.apply_layer(params, xs, key=getkey(), **options)
    assert not np.allclose(a[0], other[0])
    evaluation = jaxrnn.apply_layer(params, xs, training=False, key=getkey(), **options)
    assert_trees_close(evaluation, jaxrnn.apply_layer(params, xs, lengths=LENGTHS), 0)


def test_zoneout_keeps_or_updates_each_unit(getkey):
    params = _layer(getkey(), "gru")
    cell = params.cells[0][0]
    xs = jax.random.normal(getkey(), (B, 40, D))
    ys, _ = jaxrnn.apply_layer(params, xs, zoneout=0.3, key=getkey())
    previous = jnp.concatenate([jnp.zeros((B, 1, H)), ys[:, :-1]], 1)
    updated = jax.vmap(jax.vmap(lambda h, x: jaxrnn.gru_step(cell, h, x)[0]))(
        previous, xs
    )
    kept = jnp.abs(ys - previous) < 1e-7
    took_new = jnp.abs(ys - updated) < 1e-6
    assert bool(jnp.all(kept | took_new))
    changed = jnp.abs(updated - previous) > 1e-4  # where the two differ
    assert 0.2 < float(kept[changed].mean()) < 0.4


def test_zoneout_in_evaluation_is_the_expectation(getkey):
    params = _layer(getkey(), "lstm", bidirectional=True)
    xs = jax.random.normal(getkey(), (B, T, D))
    rates = (0.1, 0.4)
    ys, final = jaxrnn.apply_layer(
        params, xs, zoneout=rates, training=False, lengths=LENGTHS
    )
    for d, cell in enumerate(params.cells[0]):
        for b in range(B):
            n = int(LENGTHS[b])
            h = c = jnp.zeros(H)
            steps = range(n) if d == 0 else reversed(range(n))
            for t in steps:
                new, _ = jaxrnn.lstm_step(cell, jaxrnn.LSTMCarry(h, c), xs[b, t])
                h = rates[0] * h + (1 - rates[0]) * new.h
                c = rates[1] * c + (1 - rates[1]) * new.c
                np.testing.assert_allclose(ys[b, t, d * H : (d + 1) * H], h, atol=1e-6)
            np.testing.assert_allclose(final.c[d, b], c, atol=1e-6)


@pytest.mark.slow  # each option has its own test in the Python 3.12 pass
def test_all_options_together_with_lengths_and_bidirectional(getkey):
    params = jaxrnn.init_layer(
        getkey(),
        "layer_norm_lstm",
        D,
        H,
        num_layers=3,
        bidirectional=True,
        merge="sum",
        residual=True,
        learn_initial_state=True,
    )
    xs = jax.random.normal(getkey(), (B, T, D))
    options = dict(
        lengths=LENGTHS,
        reset=_reset(getkey()),
        dropout=0.2,
        recurrent_dropout=0.2,
        zoneout=(0.1, 0.2),
        include_initial=True,
    )
    key = getkey()
    run = functools.partial(jaxrnn.apply_layer, **options)
    ys, final = run(params, xs, key=key)
    assert ys.shape == (B, T + 1, H) and final.c.shape == (6, B, H)
    assert_trees_close(jax.jit(run)(params, xs, key=key), (ys, final), 1e-5)
    for b in range(B):  # padding is zero
        assert float(jnp.abs(ys[b, 1 + int(LENGTHS[b]) :]).max(initial=0)) == 0.0

    def loss(p):
        return jnp.sum(run(p, xs, key=key)[0] ** 2)

    grads = jax.grad(loss)(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert float(jnp.abs(grads.initial_state.h).max()) > 0
    # Evaluation is deterministic: the key no longer matters.
    first = run(params, xs, training=False, key=getkey())
    assert_trees_close(run(params, xs, training=False), first, 0)


def test_projected_layer_shapes(getkey):
    params = jaxrnn.init_layer(
        getkey(), "lstm", D, H, proj_size=2, num_layers=2, bidirectional=True
    )
    assert (params.cell, params.proj_size, params.output_size) == ("proj_lstm", 2, 2)
    assert params.cells[1][0].w_ih.shape == (4 * H, 4)
    ys, state = jaxrnn.apply_layer(params, jnp.ones((B, T, D)), lengths=LENGTHS)
    assert ys.shape == (B, T, 4)
    assert state.h.shape == (4, B, 2) and state.c.shape == (4, B, H)
    with pytest.raises(
        ValueError, match=r"initial_state.h must have shape .*\(4, 4, 2\)"
    ):
        jaxrnn.apply_layer(
            params,
            jnp.ones((B, T, D)),
            initial_state=jaxrnn.LSTMCarry(jnp.zeros((4, B, H)), jnp.zeros((4, B, H))),
        )


def test_layer_option_errors(getkey):
    layer = jaxrnn.init_layer(getkey(), "gru", D, H, bidirectional=True)
    xs = jnp.ones((B, T, D))
    with pytest.raises(
        ValueError, match=r"apply_layer: reset must have shape \[B, T\]"
    ):
        jaxrnn.apply_layer(layer, xs, reset=jnp.zeros((T, B), bool))
    with pytest.raises(TypeError, match=r"apply_layer: reset must have dtype bool"):
        jaxrnn.apply_layer(layer, xs, reset=jnp.zeros((B, T)))
    with pytest.raises(ValueError, match=r"merge applies to bidirectional layers only"):
        jaxrnn.init_layer(getkey(), "gru", D, H, merge="sum")
    with pytest.raises(ValueError, match=r"init_layer: merge must be one of"):
        jaxrnn.init_layer(getkey(), "gru", D, H, bidirectional=True, merge="max")
    with pytest.raises(ValueError, match=r"init_layer: residual needs a layer"):
        jaxrnn.init_layer(getkey(), "gru", D, H, residual=True)
    with pytest.raises(ValueError, match=r"proj_size applies to cell='lstm' only"):
        jaxrnn.init_layer(getkey(), "gru", D, H, proj_size=2)
    with pytest.raises(ValueError, match=r"proj_size is needed for cell='proj_lstm'"):
        jaxrnn.init_layer(getkey(), "proj_lstm", D, H)
    with pytest.raises(ValueError, match=r"init_layer: cell must be one of 'rnn'"):
        jaxrnn.init_layer(getkey(), "transformer", D, H)
    learned = jaxrnn.init_layer(getkey(), "lstm", D, H, learn_initial_state=True)
    broken = jaxrnn.LayerParams(
        learned.cells,
        initial_state=jaxrnn.LSTMCarry(jnp.zeros((1, H + 1)), jnp.zeros((1, H))),
    )
    with pytest.raises(
        ValueError, match=r"params.initial_state.h must have shape \[L\*D, H\]"
    ):
        jaxrnn.apply_layer(broken, xs)
    with pytest.raises(TypeError, match=r"params.initial_state must be LSTMCarry"):
        jaxrnn.apply_layer(
            jaxrnn.LayerParams(learned.cells, initial_state=jnp.zeros((1, H))), xs
        )
