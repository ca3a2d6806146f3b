"""Multi-host data parallelism, for real: the recipe in docs/training.md,
run as it is written in two processes on this machine (JAX's distributed
runtime with a coordinator on 127.0.0.1 and its Gloo CPU collectives), each
with 2 forced CPU devices, one mesh of 4 devices over both. After 3 steps
the params equal those of one process's step on the whole batch."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import optax
import pytest

import jaxrnn
from jaxrnn import train

DOCS = Path(__file__).parents[2] / "docs" / "training.md"


def _recipe() -> str:
    found = re.search(r"```py\n(# multi_host\.py.*?)```", DOCS.read_text(), re.S)
    assert found, "docs/training.md has lost its multi-host recipe"
    return found.group(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_process(impl):
    """The recipe's 3 steps on one device, on the whole batch."""
    params = jaxrnn.init_layer(jax.random.key(0), "lstm", 8, 16)
    opt = train.make_optimizer(1e-2, optimizer=optax.sgd)

    def loss(params, xs, ys):
        out, _ = jaxrnn.apply_layer(params, xs, impl=impl)
        return train.mse_loss(out, ys)

    step = jax.jit(train.make_train_step(opt, loss))
    opt_state = opt.init(params)
    for i in range(3):
        data = np.random.default_rng(i).normal(size=(16, 10, 24)).astype(np.float32)
        params, opt_state, _ = step(params, opt_state, data[..., :8], data[..., 8:])
    return jax.tree.leaves(params)


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="Gloo CPU collectives: Linux only"
)
@pytest.mark.parametrize("impl", ["auto", "scan"])
def test_two_processes_train_as_one(impl, tmp_path):
    if getattr(jax.config, "jax_cpu_collectives_implementation", None) is None:
        pytest.skip("this jax has no CPU collectives for several processes")
    script = _recipe()
    assert 'IMPL = "auto"' in script
    script = script.replace('IMPL = "auto"', f'IMPL = "{impl}"')
    port = _free_port()
    flags = os.environ.get("XLA_FLAGS", "")
    runs = []
    for i in range(2):
        env = dict(
            os.environ,
            COORDINATOR=f"127.0.0.1:{port}",
            NUM_PROCESSES="2",
            PROCESS_ID=str(i),
            OUT=str(tmp_path / "params.npz"),
            XLA_FLAGS=f"{flags} --xla_force_host_platform_device_count=2".strip(),
        )
        runs.append(
            subprocess.Popen(
                [sys.executable, "-c", script],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    for run in runs:
        try:
            output, _ = run.communicate(timeout=600)
        finally:
            for other in runs:
                if other.poll() is None and run.returncode not in (None, 0):
                    other.kill()
        if run.returncode and "gloo" in output.lower() and "not" in output.lower():
            pytest.skip(f"JAX's Gloo CPU collectives are unavailable: {output[-500:]}")
        assert run.returncode == 0, output[-3000:]
    with np.load(tmp_path / "params.npz") as saved:
        leaves = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    expected = _one_process(impl)
    assert len(leaves) == len(expected)
    for got, want in zip(leaves, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
