"""Losses, clipping, the train step, truncated BPTT and the hand-written BPTT."""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxrnn
from helpers import assert_trees_close, x64
from jaxrnn import tasks, train

D, H, O, T = 3, 5, 2, 7


# ----------------------------------------------------------------------------- losses


def test_mse_loss_matches_numpy(getkey):
    p = jax.random.normal(getkey(), (4, T, O))
    y = jax.random.normal(getkey(), (4, T, O))
    mask = jax.random.bernoulli(getkey(), 0.5, (4, T))
    err = (np.asarray(p) - np.asarray(y)) ** 2
    m = np.asarray(mask)
    np.testing.assert_allclose(train.mse_loss(p, y, mask), err[m].mean(), rtol=1e-6)
    np.testing.assert_allclose(train.mse_loss(p, y), err.mean(), rtol=1e-6)
    assert float(train.mse_loss(p, y, jnp.zeros((4, T), bool))) == 0.0


def test_cross_entropy_matches_numpy(getkey):
    logits = 3 * jax.random.normal(getkey(), (4, T, 6))
    labels = jax.random.randint(getkey(), (4, T), 0, 6)
    mask = jax.random.bernoulli(getkey(), 0.5, (4, T))
    z = np.asarray(logits, np.float64)
    log_probs = z - np.log(np.exp(z).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, np.asarray(labels)[..., None], -1)[..., 0]
    np.testing.assert_allclose(
        train.cross_entropy_loss(logits, labels, mask),
        nll[np.asarray(mask)].mean(),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        train.cross_entropy_loss(logits, labels), nll.mean(), rtol=1e-5
    )
    assert (
        float(train.cross_entropy_loss(logits, labels, jnp.zeros((4, T), bool))) == 0.0
    )


def test_losses_compute_in_float32_for_bfloat16(getkey):
    p = jax.random.normal(getkey(), (64, O))
    y = jax.random.normal(getkey(), (64, O))
    low = train.mse_loss(p.astype(jnp.bfloat16), y.astype(jnp.bfloat16))
    assert low.dtype == jnp.float32
    np.testing.assert_allclose(low, train.mse_loss(p, y), rtol=2e-2)


# --------------------------------------------------------------------------- clipping


def _loss(params, xs, ys):
    _, hs = jaxrnn.unroll(jaxrnn.lstm_step, params.cell, jaxrnn.init_lstm_carry(H), xs)
    return train.mse_loss(jaxrnn.readout(params.head, hs), ys)


class Model(NamedTuple):
    cell: jaxrnn.LSTMParams
    head: jaxrnn.ReadoutParams


def _model(getkey, scale=1.0):
    cell = jaxrnn.init_lstm(getkey(), D, H)
    return Model(
        jax.tree.map(lambda a: scale * a, cell), jaxrnn.init_readout(getkey(), H, O)
    )


@pytest.mark.parametrize("max_norm", [1e-3, 0.1, 1e3])
def test_clipping_bounds_the_global_norm_and_reports_the_exact_pre_clip_norm(
    max_norm, getkey
):
    params = _model(getkey, scale=3.0)
    xs = jax.random.normal(getkey(), (T, D))
    ys = 10 * jax.random.normal(getkey(), (T, O))
    opt = train.make_optimizer(1.0, max_norm=max_norm, optimizer=optax.sgd)
    step = jax.jit(train.make_train_step(opt, _loss))
    new_params, _, metrics = step(params, opt.init(params), xs, ys)
    grads = jax.grad(_loss)(params, xs, ys)
    exact = np.sqrt(
        sum(np.sum(np.asarray(g, np.float64) ** 2) for g in jax.tree.leaves(grads))
    )
    np.testing.assert_allclose(metrics["grad_norm"], exact, rtol=1e-6)
    np.testing.assert_allclose(metrics["loss"], _loss(params, xs, ys), rtol=1e-6)
    # sgd with lr 1: the update is minus the clipped gradient.
    update = jax.tree.map(lambda new, old: old - new, new_params, params)
    update_norm = float(train.global_norm(update))
    assert update_norm <= max_norm * (1 + 1e-5)
    if exact > max_norm:  # clipped: norm max_norm, same direction
        np.testing.assert_allclose(update_norm, max_norm, rtol=1e-4)
        assert_trees_close(
            update, jax.tree.map(lambda g: g * max_norm / exact, grads), 1e-4
        )
    else:  # untouched
        assert_trees_close(update, grads, 1e-5)


def test_clipping_by_value(getkey):
    params = _model(getkey, scale=3.0)
    xs = jax.random.normal(getkey(), (T, D))
    ys = 10 * jax.random.normal(getkey(), (T, O))
    opt = train.make_optimizer(1.0, max_norm=None, clip_value=0.01, optimizer=optax.sgd)
    new_params, _, _ = train.make_train_step(opt, _loss)(
        params, opt.init(params), xs, ys
    )
    grads = jax.grad(_loss)(params, xs, ys)
    update = jax.tree.map(lambda new, old: old - new, new_params, params)
    assert_trees_close(
        update, jax.tree.map(lambda g: jnp.clip(g, -0.01, 0.01), grads), 1e-6
    )


def test_train_step_aux_metrics(getkey, standard_promotion):
    params = _model(getkey)
    xs = jax.random.normal(getkey(), (T, D))
    ys = jax.random.normal(getkey(), (T, O))
    loss_aux = lambda p, xs, ys: (_loss(p, xs, ys), {"twice": 2 * _loss(p, xs, ys)})
    opt = train.make_optimizer()
    _, _, metrics = train.make_train_step(opt, loss_aux, has_aux=True)(
        params, opt.init(params), xs, ys
    )
    np.testing.assert_allclose(metrics["twice"], 2 * metrics["loss"], rtol=1e-6)


# --------------------------------------------------------------------------- learning


def _adding_model(key, cell, hidden):
    key_layer, key_head = jax.random.split(key)
    return (
        jaxrnn.init_layer(key_layer, cell, 2, hidden),
        jaxrnn.init_readout(key_head, hidden, 1),
    )


def _adding_loss(model, batch):
    ys, _ = jaxrnn.apply_layer(model[0], batch.xs)
    return train.mse_loss(jaxrnn.readout(model[1], ys), batch.ys, batch.mask)


def _train_adding(steps, seq_len):
    model = _adding_model(jax.random.key(0), "lstm", 16)
    opt = train.make_optimizer(1e-2, max_norm=1.0)
    step = train.make_train_step(opt, _adding_loss)

    @jax.jit
    def run(model, opt_state):
        def body(state, i):
            batch = tasks.make_adding_batch(
                jax.random.fold_in(jax.random.key(1), i), 32, seq_len
            )
            model, opt_state, metrics = step(*state, batch)
            return (model, opt_state), metrics["loss"]

        return jax.lax.scan(body, (model, opt_state), jnp.arange(steps))

    (model, _), losses = run(model, opt.init(model))
    test = tasks.make_adding_batch(jax.random.key(99), 500, seq_len)
    return losses, float(_adding_loss(model, test))


def test_small_lstm_learns_the_adding_problem_deterministically(standard_promotion):
    losses, test_mse = _train_adding(steps=400, seq_len=10)
    # Always answering 1 scores 1/6; a model that learned the sum is far below.
    assert test_mse < 0.01, test_mse
    assert float(losses[:20].mean()) > 0.1
    again, again_mse = _train_adding(steps=400, seq_len=10)
    np.testing.assert_array_equal(losses, again)
    assert test_mse == again_mse


def test_adding_batch_matches_its_definition(getkey):
    batch = tasks.make_adding_batch(getkey(), 256, 20)
    markers = np.asarray(batch.xs[..., 1])
    assert ((markers[:, :10].sum(1) == 1) & (markers[:, 10:].sum(1) == 1)).all()
    total = (np.asarray(batch.xs[..., 0]) * markers).sum(1)
    np.testing.assert_allclose(batch.ys[:, -1, 0], total, rtol=1e-6)
    assert np.asarray(batch.mask).sum() == 256 and np.asarray(batch.mask)[:, -1].all()
    # The constant answer 1 scores about 1/6.
    big = tasks.make_adding_batch(getkey(), 20000, 20)
    mse_of_one = float(jnp.mean((big.ys[:, -1, 0] - 1.0) ** 2))
    assert abs(mse_of_one - tasks.ADDING_BASELINE_MSE) < 0.01
    key = getkey()
    assert_trees_close(
        tasks.make_adding_batch(key, 4, 9), tasks.make_adding_batch(key, 4, 9), 0
    )


# ----------------------------------------------------------------------- truncated BPTT


def _window_loss(params, carry, window):
    xs, ys = window
    carry, hs = jax.vmap(lambda c, x: jaxrnn.unroll(jaxrnn.gru_step, params, c, x))(
        carry, xs
    )
    return jnp.mean((hs[..., :1] - ys) ** 2), carry


@pytest.mark.parametrize("window", [1, 3, 4, 9, 12])
def test_tbptt_equals_a_hand_written_window_loop(window, getkey):
    batch_size, seq_len = 2, 9
    params = jaxrnn.init_gru(getkey(), D, H)
    xs = jax.random.normal(getkey(), (batch_size, seq_len, D))
    ys = jax.random.normal(getkey(), (batch_size, seq_len, 1))
    carry = jax.random.normal(getkey(), (batch_size, H))
    opt = train.make_optimizer(0.05, optimizer=optax.sgd)
    step = jax.jit(train.make_tbptt_step(opt, _window_loss, window))
    got = step(params, opt.init(params), carry, (xs, ys))

    # The same thing by hand: a Python loop over windows.
    p, state, c, losses = params, opt.init(params), carry, []
    for start in range(0, seq_len, window):
        chunk = (xs[:, start : start + window], ys[:, start : start + window])
        (loss, new_c), grads = jax.value_and_grad(_window_loss, has_aux=True)(
            p, c, chunk
        )
        updates, state = opt.update(grads, state, p)
        p = optax.apply_updates(p, updates)
        c = new_c
        losses.append(loss)
    assert got[3]["loss"].shape == (len(losses),)
    np.testing.assert_allclose(got[3]["loss"], losses, rtol=1e-5, atol=1e-6)
    assert_trees_close(got[0], p, 1e-5)
    assert_trees_close(got[2], c, 1e-5)


def test_tbptt_cuts_the_gradient_at_window_boundaries(getkey):
    """The carry handed to the next window is a constant: no gradient crosses it."""
    params = jaxrnn.init_gru(getkey(), D, H)
    xs = jax.random.normal(getkey(), (1, 6, D))
    ys = jax.random.normal(getkey(), (1, 6, 1))
    opt = train.make_optimizer(1.0, max_norm=None, optimizer=optax.sgd)
    step = train.make_tbptt_step(opt, _window_loss, 3)
    carry0 = jnp.zeros((1, H))
    # The carry a tbptt step returns is stop_gradient'ed: differentiating it w.r.t.
    # the initial carry gives zero, where an untruncated unroll would not.
    grad_carry = jax.grad(
        lambda c: jnp.sum(step(params, opt.init(params), c, (xs, ys))[2])
    )(carry0)
    assert float(jnp.abs(grad_carry).max()) == 0.0


# ------------------------------------------------------------------ hand-written BPTT


def _reference_loss(rnn, head, h0, xs, targets, mask, activation, loss):
    step = functools.partial(jaxrnn.rnn_step, activation=activation)
    _, hs = jaxrnn.unroll(step, rnn, h0, xs)
    ys = jaxrnn.readout(head, hs)
    if loss == "mse":
        return train.mse_loss(ys, targets, mask)
    return train.cross_entropy_loss(ys, targets, mask)


BPTT_CASES = (
    # every activation with both losses, on a random loss mask
    [
        (a, loss, "random", True)
        for a in ("tanh", "sigmoid", "relu", "softsign")
        for loss in ("mse", "cross_entropy")
    ]
    # many-to-many and many-to-one, with and without bias
    + [
        ("tanh", loss, mask, bias)
        for loss in ("mse", "cross_entropy")
        for mask in ("all", "last")
        for bias in (True, False)
    ]
)


@pytest.mark.parametrize("activation,loss,mask,bias", BPTT_CASES)
def test_hand_written_bptt_equals_jax_grad(activation, loss, mask, bias, getkey):
    if activation == "softsign":
        activation = lambda z: z / (1 + jnp.abs(z))
    with x64():
        rnn = jaxrnn.init_rnn(
            getkey(), D, H, init="torch", bias=bias, dtype=jnp.float64
        )
        head = jaxrnn.init_readout(getkey(), H, O, init="torch", dtype=jnp.float64)
        h0 = jax.random.normal(getkey(), (H,), jnp.float64)
        xs = jax.random.normal(getkey(), (T, D), jnp.float64)
        if loss == "mse":
            targets = jax.random.normal(getkey(), (T, O), jnp.float64)
        else:
            targets = jax.random.randint(getkey(), (T,), 0, O)
        m = {
            "all": None,
            "last": jnp.arange(T) == T - 1,
            "random": jnp.array([1, 0, 1, 1, 0, 0, 1], bool),
        }[mask]
        value, grads = train.rnn_bptt(
            rnn, head, h0, xs, targets, mask=m, activation=activation, loss=loss
        )
        expected_value, expected = jax.value_and_grad(
            _reference_loss, argnums=(0, 1, 2, 3)
        )(rnn, head, h0, xs, targets, m, activation, loss)
    np.testing.assert_allclose(value, expected_value, rtol=1e-12)
    assert_trees_close(grads.rnn, expected[0], 1e-10)
    assert_trees_close(grads.readout, expected[1], 1e-10)
    assert_trees_close(grads.h0, expected[2], 1e-10)
    assert_trees_close(grads.xs, expected[3], 1e-10)
