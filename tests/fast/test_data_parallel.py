"""Every impl under data parallelism: a layer whose batch is sharded over
devices runs its own rows on each device, gathers nothing, and gives the
one-device step's results.

Each case runs in a fresh process with 2 or 8 forced CPU devices (the
count is fixed when jax starts). There, one compiled training step
(value and gradients, a bidirectional layer with per-sequence lengths)
runs with the batch sharded over all the devices, and its HLO is read:
no all-gather, and, for the kernels, each call on the device's share of
the batch.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from jaxrnn.fast import _cpu_build

_STEP = """
import json, re, jax, jax.numpy as jnp, jaxrnn
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
devices = jax.device_count()
mesh = Mesh(jax.devices(), ("batch",))
out = {}
for impl in IMPLS:
    for cell in ("lstm", "gru", "rnn") if impl in ("fused", "cpu") else ("gru",):
        p = jaxrnn.init_layer(jax.random.key(0), cell, 5, 12, bidirectional=True)
        xs = jax.random.normal(jax.random.key(1), (16, 9, 5))
        lengths = jnp.arange(16) % 9 + 1
        def loss(p, xs, lengths):
            ys, final = jaxrnn.apply_layer(p, xs, lengths=lengths, impl=impl)
            return jnp.mean(ys ** 2) + jnp.mean(jax.tree.leaves(final)[0] ** 3)
        step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
        one = step(p, xs, lengths)
        args = (jax.device_put(p, NamedSharding(mesh, P())),
                jax.device_put(xs, NamedSharding(mesh, P("batch"))),
                jax.device_put(lengths, NamedSharding(mesh, P("batch"))))
        many = step(*args)
        hlo = step.lower(*args).compile().as_text()
        calls = [l for l in hlo.splitlines() if "custom_call_target=\\"jaxrnn_" in l]
        diff = max(float(jnp.max(jnp.abs(a - b)))
                   for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(many)))
        out[f"{impl} {cell}"] = {
            "all_gather": hlo.count("all-gather"),
            "diff": diff,
            "kernel_batches": sorted({int(m) for l in calls
                                      for m in re.findall(r"f32\\[9,(\\d+),", l)}),
        }
print(json.dumps({"devices": devices, "cases": out}))
"""


@pytest.mark.parametrize("devices", [2, 8])
def test_every_impl_splits_the_batch_and_equals_one_device(devices):
    impls = ["scan", "fused", "pallas", "parallel"]
    if _cpu_build._compiler() is not None:
        impls.append("cpu")
    flags = os.environ.get("XLA_FLAGS", "")
    env = dict(
        os.environ,
        XLA_FLAGS=f"{flags} --xla_force_host_platform_device_count={devices}",
    )
    code = f"IMPLS = {impls!r}\n" + textwrap.dedent(_STEP)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["devices"] == devices
    for case, got in result["cases"].items():
        assert got["all_gather"] == 0, (case, got)
        assert got["diff"] < 1e-5, (case, got)
        if case.startswith("cpu"):
            # Each call runs the device's 16 / devices sequences.
            assert got["kernel_batches"] == [16 // devices], (case, got)
