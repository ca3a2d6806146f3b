"""The Pallas kernels (impl="pallas"), in interpret mode.

`jaxrnn.fast._pallas.scan` runs a time loop as one Pallas kernel; impl="pallas"
runs both of the fused path's loops (the forward recurrence and the backward
recurrence of its VJP) through it. On a CPU the kernels run in Pallas'
interpret mode. test_fused.py runs its comparisons with the reference for
both impl="fused" and impl="pallas": every cell, T = 0, 1 and 2, masks with
holes, lengths, both directions, two layers, every supported layer option,
and float64 (to 1e-12), float32, bfloat16 and float16. This file tests the
kernel loop itself, sizes that no tile divides, the float32 arithmetic of
16-bit inputs, and the fallback.

No GPU or TPU runs here, but the kernels are lowered for both, as a program
for those machines is lowered on any machine: through Triton (the GPU) and
Mosaic (the TPU), for an H100 and a TPU v5e described by an abstract mesh.
That checks everything the lowering checks (every operation in the kernel
has a GPU and a TPU form, and every array has a size Triton takes); it
does not compile the kernels for those machines or run them.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from helpers import x64
from jaxrnn.fast import _kernel, _pallas


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("tile", [None, 1, 2, 3])
def test_kernel_scan_is_lax_scan(reverse, tile):
    """Any body, pytree carries and inputs (with None leaves), batch tiles
    that do not divide B = 5, either direction."""
    steps, batch, width = 6, 5, 4
    keys = jax.random.split(jax.random.key(0), 4)
    xs = jax.random.normal(keys[0], (steps, batch, width))
    keep = jax.random.bernoulli(keys[1], 0.7, (steps, batch))
    w = jax.random.normal(keys[2], (width, width))
    b = jax.random.normal(keys[3], (width,))

    def body(carry, inputs):
        (x, m), nothing = inputs
        assert nothing is None
        h, count = carry
        new = jnp.tanh(x + h @ w + b[None])
        new = jnp.where(m[:, None], new, h)
        return (new, count + m.astype(jnp.float32)), {"h": new, "twice": 2 * new}

    carry = (jnp.full((batch, width), 0.1), jnp.zeros(batch))
    inputs = ((xs, keep), None)
    got = jax.jit(
        lambda: _pallas.scan(body, carry, inputs, reverse=reverse, tile=tile)
    )()
    expected = jax.lax.scan(body, carry, inputs, reverse=reverse)
    assert jax.tree.structure(got) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
        assert a.shape == e.shape and a.dtype == e.dtype
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), atol=1e-6)


def test_odd_sizes():
    """Sizes that no tile divides: B = 19 (padded to 32, two programs of 16
    rows), T = 5, D = 7, H = 11 (padded to 16)."""
    with x64():
        layer = jaxrnn.init_layer(
            jax.random.key(3), "lstm", 7, 11, dtype=jnp.float64, bidirectional=True
        )
        xs = jax.random.normal(jax.random.key(4), (19, 5, 7), jnp.float64)
        lengths = jnp.arange(19) % 5 + 1

        def loss(layer, impl):
            ys, final = jaxrnn.apply_layer(layer, xs, lengths=lengths, impl=impl)
            return jnp.sum(jnp.sin(ys)) + jnp.sum(final.c**2)

        value, grads = jax.value_and_grad(loss)(layer, "pallas")
        ref_value, ref_grads = jax.value_and_grad(loss)(layer, "scan")
        assert float(value) == pytest.approx(float(ref_value), rel=1e-12)
        for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
            np.testing.assert_allclose(a, b, atol=1e-12)


def test_pallas_names_the_option_it_lacks():
    layer = jaxrnn.init_layer(jax.random.key(0), "lstm", 3, 4)
    xs = jnp.ones((2, 5, 3))
    reset = jnp.zeros((2, 5), bool)
    with pytest.raises(ValueError, match=r"with reset \(the pallas path lacks it\)"):
        jaxrnn.apply_layer(layer, xs, reset=reset, impl="pallas")
    with pytest.raises(ValueError, match="impl must be one of"):
        jaxrnn.apply_layer(layer, xs, impl="triton")


# Where each platform's kernels are lowered for, and the custom call that
# each kernel becomes in the lowered program.
TARGETS = {
    "cuda": (("NVIDIA H100 80GB HBM3", 132, "gpu"), "__gpu$xla.gpu.triton"),
    "tpu": (("TPU v5 lite", 1, "tpu"), "tpu_custom_call"),
}


def _lowered(platform, fn, *args):
    """fn(*args) lowered for `platform`: the targets of its custom calls, and
    for a GPU the grid of each kernel (its number of programs)."""
    (kind, cores, name), _ = TARGETS[platform]
    device = jax.sharding.AbstractDevice(
        device_kind=kind, num_cores=cores, platform=name
    )
    mesh = jax.sharding.AbstractMesh((1,), ("x",), abstract_device=device)
    with jax.sharding.use_abstract_mesh(mesh):
        text = jax.jit(fn).trace(*args).lower(lowering_platforms=(platform,)).as_text()
    calls = re.findall(r"custom_call @([^(\s]+)\(", text)
    return calls, [int(n) for n in re.findall(r"grid_x = (\d+) : i32", text)]


def _layer_loss(cell, dtype, **kwargs):
    """A two-layer bidirectional layer with lengths, and a loss of it."""
    layer = jaxrnn.init_layer(
        jax.random.key(0),
        cell,
        7,
        20,
        num_layers=2,
        bidirectional=True,
        dtype=dtype,
        **kwargs,
    )
    xs = jax.random.normal(jax.random.key(1), (20, 5, 7), dtype)
    lengths = jnp.arange(20) % 5 + 1

    def loss(layer, xs):
        ys, final = jaxrnn.apply_layer(layer, xs, lengths=lengths, impl="pallas")
        return jnp.sum(ys.astype(jnp.float32))

    return jax.value_and_grad(loss, argnums=(0, 1)), layer, xs


# jax 0.12 deprecates Pallas' Triton backend (see jaxrnn/fast/_pallas.py).
TRITON_DEPRECATED = "ignore:The Pallas Triton backend is deprecated:DeprecationWarning"


@pytest.mark.filterwarnings(TRITON_DEPRECATED)
@pytest.mark.parametrize(
    "platform, cell, dtype, kwargs",
    [
        ("cuda", "lstm", jnp.float32, {}),
        pytest.param("cuda", "gru", jnp.bfloat16, {}, marks=pytest.mark.slow),
        pytest.param(
            "cuda", "rnn", jnp.float16, {"activation": "relu"}, marks=pytest.mark.slow
        ),
        ("tpu", "lstm", jnp.bfloat16, {}),
        pytest.param("tpu", "gru", jnp.float32, {}, marks=pytest.mark.slow),
        pytest.param(
            "tpu", "rnn", jnp.float32, {"activation": "sigmoid"}, marks=pytest.mark.slow
        ),
    ],
)
def test_kernels_lower_for_gpu_and_tpu(platform, cell, dtype, kwargs):
    """Value and gradient of two bidirectional layers with lengths, at sizes
    that are not powers of two (B = 20, T = 5, D = 7, H = 20; B pads to 32,
    two programs of 16 rows): every loop is a kernel, 2 layers x 2
    directions x (forward, backward) = 8 of them. One
    case per platform runs in CI's Python 3.12 pass (the newest jax); all
    run in the README's command."""
    fn, layer, xs = _layer_loss(cell, dtype, **kwargs)
    calls, grids = _lowered(platform, fn, layer, xs)
    assert calls == [TARGETS[platform][1]] * 8
    assert grids == ([2] * 8 if platform == "cuda" else [])


@pytest.mark.filterwarnings(TRITON_DEPRECATED)
def test_past_the_on_chip_budget_the_loops_are_lax_scan(monkeypatch):
    """Lowered for a GPU or TPU, a loop whose constants exceed ONCHIP_BYTES
    is a lax.scan, not a kernel; on a CPU the kernel runs interpreted."""
    fn, layer, xs = _layer_loss("lstm", jnp.float32)
    expected = fn(layer, xs)
    monkeypatch.setattr(_pallas, "ONCHIP_BYTES", 0)
    jax.clear_caches()  # the budget is read when a loop is traced
    for platform in TARGETS:
        assert _lowered(platform, fn, layer, xs) == ([], [])
    assert "pallas_call" in str(jax.make_jaxpr(fn)(layer, xs))
    for a, b in zip(jax.tree.leaves(fn(layer, xs)), jax.tree.leaves(expected)):
        np.testing.assert_array_equal(a, b)


def test_kernel_sizes_are_powers_of_two_of_at_least_16():
    sizes = [1, 2, 15, 16, 17, 20, 64, 65, 100, 1024, 1025]
    assert [_kernel.size(n) for n in sizes] == [
        16,
        16,
        16,
        16,
        32,
        32,
        64,
        128,
        128,
        1024,
        2048,
    ]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_16_bit_inputs_are_computed_in_float32(cell, dtype):
    """Over 200 steps, the kernel's float32 state and matmul accumulation
    keep the outputs closer to float64 than the reference, which computes in
    the input's dtype (it rounds c_t, h_t and every gate at every step)."""
    with x64():
        layer = jaxrnn.init_layer(jax.random.key(0), cell, 8, 24, dtype=jnp.float64)
        xs = jax.random.normal(jax.random.key(1), (4, 200, 8), jnp.float64)
        exact, _ = jaxrnn.apply_layer(layer, xs, impl="scan")
        low = jax.tree.map(lambda a: a.astype(dtype), layer)

        def error(impl):
            ys, _ = jax.jit(
                lambda: jaxrnn.apply_layer(low, xs.astype(dtype), impl=impl)
            )()
            return float(jnp.sqrt(jnp.mean((ys.astype(jnp.float64) - exact) ** 2)))

        assert error("pallas") < 0.7 * error("scan")


@pytest.mark.slow
@pytest.mark.filterwarnings(TRITON_DEPRECATED)
@pytest.mark.parametrize(
    "cell, dtype, largest",
    [
        ("lstm", jnp.float32, 64),
        ("gru", jnp.bfloat16, 128),
        ("rnn", jnp.float32, 128),
        ("rnn", jnp.bfloat16, 256),
    ],
)
def test_the_on_chip_budget_in_hidden_units(cell, dtype, largest):
    """What the docs say fits: up to `largest` hidden units both loops are
    GPU kernels; one more unit pads to the next power of two, past
    ONCHIP_BYTES, and both loops are lax.scan."""

    def kernels(hidden):
        layer = jaxrnn.init_layer(jax.random.key(0), cell, 3, hidden, dtype=dtype)
        xs = jnp.ones((2, 4, 3), dtype)

        def loss(layer):
            ys, _ = jaxrnn.apply_layer(layer, xs, impl="pallas")
            return jnp.sum(ys.astype(jnp.float32))

        return len(_lowered("cuda", jax.grad(loss), layer)[0])

    assert (kernels(largest), kernels(largest + 1)) == (2, 0)


@pytest.mark.slow
def test_the_gpu_check_script_runs_and_fails_on_a_difference(monkeypatch, capsys):
    """benchmarks/check_kernels.py, which a GPU session runs without pytest:
    here in interpret mode, within its tolerance; and it fails (exit 1) when
    a difference exceeds the tolerance."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[2] / "benchmarks" / "check_kernels.py"
    spec = importlib.util.spec_from_file_location("check_kernels", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert out.count("| yes |") == len(script.CASES)
    monkeypatch.setattr(script, "CASES", script.CASES[:1])
    monkeypatch.setitem(script.TOL, jnp.float32, 0.0)
    assert script.main(["--quick"]) == 1
    assert "| NO |" in capsys.readouterr().out
