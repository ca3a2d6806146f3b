"""Reliability: extreme inputs, non-finite gradients, determinism, many devices."""

import json
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxrnn
from helpers import CELL_IDS, CELLS, randomise
from jaxrnn import train
from jaxrnn._cli import main

D, H, T = 3, 5, 7


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_gates_are_stable_for_extreme_pre_activations(cell, getkey):
    """|w x| ~ 1e4 and beyond: no NaN or infinity, forward or backward."""
    params = randomise(cell.init(getkey(), D, H), getkey())
    carry = cell.random_carry(getkey(), H)
    xs = 1e4 * jax.random.normal(getkey(), (T, D))

    def loss(params, carry, xs):
        final, ys = jaxrnn.unroll(cell.step, params, carry, xs)
        return jnp.sum(ys) + sum(jnp.sum(a) for a in jax.tree.leaves(final))

    value, grads = jax.value_and_grad(loss, argnums=(0, 1, 2))(params, carry, xs)
    assert bool(jnp.isfinite(value))
    for leaf in jax.tree.leaves(grads):
        assert bool(jnp.all(jnp.isfinite(leaf))), leaf


def test_non_finite_gradients_are_skipped_and_counted(standard_promotion):
    loss = lambda p, x: jnp.sum(p * x)
    params = jnp.ones(3)
    good, bad = jnp.ones(3), jnp.array([1.0, jnp.nan, 1.0])
    skipping = train.make_optimizer(0.1, optimizer=optax.sgd)  # skips by default
    step = jax.jit(train.make_train_step(skipping, loss))
    state = skipping.init(params)
    p, state, m = step(params, state, good)
    assert bool(m["finite"]) and float(train.skipped_steps(state)) == 0
    before = p
    for _ in range(3):
        p, state, m = step(p, state, bad)
        assert not bool(m["finite"])
        np.testing.assert_array_equal(p, before)  # the update was skipped
    assert int(train.skipped_steps(state)) == 3
    p, state, m = step(p, state, good)
    assert bool(m["finite"]) and not np.array_equal(p, before)
    # With skipping turned off, the NaN reaches the params.
    plain = train.make_optimizer(0.1, optimizer=optax.sgd, skip_nonfinite=False)
    step = jax.jit(train.make_train_step(plain, loss))
    p, _, _ = step(params, plain.init(params), bad)
    assert not bool(jnp.all(jnp.isfinite(p)))
    with pytest.raises(TypeError, match=r"skipped_steps: opt_state must come from"):
        train.skipped_steps(plain.init(params))


def test_training_stops_with_an_explanation_after_bad_steps(
    capsys, tmp_path, standard_promotion
):
    args = "train --steps 40 --chunk 10 --seq-len 12 --hidden-size 8 "
    args += "--batch-size 8 --eval-size 50 --cell lstm --learning-rate 1e30 "
    args += f"--max-bad-steps 5 --quiet --out {tmp_path / 'run'}"
    assert main(args.split()) == 3
    err = capsys.readouterr().err
    assert "5 consecutive steps had a non-finite loss or gradient" in err
    assert "no checkpoint had been written yet" in err
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


_TRAIN = """
import hashlib, json, jax, jax.numpy as jnp, jaxrnn
from jaxrnn import tasks, train
key = jax.random.key(0)
model = (jaxrnn.init_layer(key, "lstm", 2, 16, num_layers=2),
         jaxrnn.init_readout(jax.random.key(1), 16, 1))
def loss_fn(model, batch):
    hs, _ = jaxrnn.apply_layer(model[0], batch.xs)
    return train.mse_loss(jaxrnn.readout(model[1], hs), batch.ys, batch.mask)
opt = train.make_optimizer(1e-2)
step = jax.jit(train.make_train_step(opt, loss_fn))
state = opt.init(model)
for i in range(25):
    batch = tasks.make_adding_batch(jax.random.key(i), 16, 30)
    model, state, _ = step(model, state, batch)
digest = hashlib.sha256(b"".join(
    jax.device_get(x).tobytes() for x in jax.tree.leaves(model))).hexdigest()
print(json.dumps({"sha256": digest}))
"""


def _python(code, env=None):
    import os

    environment = {**os.environ, **(env or {})}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_same_seed_gives_bitwise_identical_params_in_two_processes():
    first, second = _python(_TRAIN), _python(_TRAIN)
    assert first["sha256"] == second["sha256"]


_PARALLEL = """
import json, jax, jax.numpy as jnp, numpy as np, jaxrnn
from jaxrnn import tasks, train
assert jax.device_count() == 8, jax.devices()
key = jax.random.key(0)
model = (jaxrnn.init_layer(key, "gru", 2, 16, num_layers=2, bidirectional=True),
         jaxrnn.init_readout(jax.random.key(1), 32, 1))
def loss_fn(model, batch):
    hs, _ = jaxrnn.apply_layer(model[0], batch.xs)
    return train.mse_loss(jaxrnn.readout(model[1], hs), batch.ys, batch.mask)
opt = train.make_optimizer(1e-2)
step = train.make_train_step(opt, loss_fn)
single, parallel = jax.jit(step), train.make_data_parallel(step)
state1 = state8 = opt.init(model)
model1 = model8 = model
for i in range(3):
    batch = tasks.make_adding_batch(jax.random.key(i), 32, 20)
    model1, state1, m1 = single(model1, state1, batch)
    model8, state8, m8 = parallel(model8, state8, batch)
diff = max(float(jnp.abs(a - b).max()) for a, b in
           zip(jax.tree.leaves(model1), jax.tree.leaves(model8)))
devices = {len(x.sharding.device_set) for x in jax.tree.leaves(model8)}
hlo = jax.jit(step).lower(*jax.device_put(
    (model, opt.init(model)), jax.sharding.NamedSharding(
        jax.sharding.Mesh(jax.devices(), ("batch",)), jax.sharding.PartitionSpec())),
    jax.device_put(batch, jax.sharding.NamedSharding(
        jax.sharding.Mesh(jax.devices(), ("batch",)),
        jax.sharding.PartitionSpec("batch")))).compile().as_text()
try:
    parallel(model, opt.init(model), tasks.make_adding_batch(key, 12, 20))
    error = None
except ValueError as e:
    error = str(e)
print(json.dumps({"diff": diff, "loss": [float(m1["loss"]), float(m8["loss"])],
                  "devices": sorted(devices), "all_reduce": "all-reduce" in hlo,
                  "error": error}))
"""


@pytest.mark.slow
def test_data_parallel_step_on_eight_devices_equals_one_device():
    result = _python(
        _PARALLEL, env={"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    )
    assert result["diff"] < 1e-5, result
    assert abs(result["loss"][0] - result["loss"][1]) < 1e-5
    assert result["devices"] == [8]  # the params live on all eight
    assert result["all_reduce"]  # XLA sums the gradients across devices
    assert "must have a batch axis 0 divisible by the 8 devices" in result["error"]
    assert "shape (12, 20, 2)" in result["error"]


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_mixed_precision_policy(cell, getkey):
    """matmul_dtype=bfloat16: float32 params and carries, bfloat16 matmul inputs."""
    params = randomise(cell.init(getkey(), D, H), getkey())
    carry = cell.random_carry(getkey(), H)
    xs = jax.random.normal(getkey(), (T, D))
    mixed = lambda p, c, x: cell.step(p, c, x, matmul_dtype=jnp.bfloat16)
    final, ys = jaxrnn.unroll(mixed, params, carry, xs)
    assert ys.dtype == jnp.float32
    assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(final))
    _, exact = jaxrnn.unroll(cell.step, params, carry, xs)
    error = float(jnp.abs(ys - exact).max())
    assert 0 < error < 5e-2  # bfloat16 rounding is there, and small


def test_mixed_precision_is_rounding_of_the_matmul_inputs_only(getkey):
    """For the Elman cell h enters only the matmul: the policy equals float32 on
    inputs rounded to bfloat16, with the bias and activation in float32."""
    params = randomise(jaxrnn.init_rnn(getkey(), D, H), getkey())
    h, x = jax.random.normal(getkey(), (H,)), jax.random.normal(getkey(), (D,))
    rounded = lambda a: a.astype(jnp.bfloat16).astype(jnp.float32)
    expected, _ = jaxrnn.rnn_step(
        params._replace(w_ih=rounded(params.w_ih), w_hh=rounded(params.w_hh)),
        rounded(h),
        rounded(x),
    )
    actual, _ = jaxrnn.rnn_step(params, h, x, matmul_dtype=jnp.bfloat16)
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)
    layer = jaxrnn.init_layer(getkey(), "lstm", D, H, bidirectional=True)
    xs = jax.random.normal(getkey(), (2, T, D))
    ys, state = jaxrnn.apply_layer(layer, xs, matmul_dtype=jnp.bfloat16)
    assert ys.dtype == state.c.dtype == jnp.float32
    np.testing.assert_allclose(ys, jaxrnn.apply_layer(layer, xs)[0], atol=5e-2)
    with pytest.raises(TypeError, match=r"apply_layer: dtype must be a floating"):
        jaxrnn.apply_layer(layer, xs, matmul_dtype=jnp.int8)
