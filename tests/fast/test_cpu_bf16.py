"""The mixed-precision policy matmul_dtype=bfloat16 in the CPU kernels,
against the reference scan under the same policy (`cells/_ops.matmul`: the
matmuls' inputs rounded to bfloat16, the products summed in float32).

Each path this machine has runs: "round" (float32 products of rounded
operands, on any CPU) and "native" (AVX512-BF16's products, where the
kernels' build has them; skipped elsewhere, with the reason). The values
equal the reference's but for the order of the sums: far closer to it than
to the float32 layer's, which is what shows that the policy is applied.
The gradients are the reference's to bfloat16's precision: the kernels
keep the backward pass's cotangents in float32, where the reference rounds
them too.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from fast_paths import KERNEL_CELLS, ONE_EACH
from jaxrnn.cells import _registry
from jaxrnn.fast import _cpu, _cpu_build
from jaxrnn.layer import _impls

pytestmark = pytest.mark.skipif(
    _cpu_build._compiler() is None,
    reason="no C++ compiler: the kernels cannot be built",
)

BF16 = jnp.bfloat16
PATHS = ["round", "native"]


def _use(monkeypatch, path):
    """Run the policy by `path`, or skip where this machine lacks it."""
    state = _cpu.status()
    if not state.available:
        pytest.skip(f"no kernels: {state.reason}")
    if path == "native" and not state.bf16:
        pytest.skip(
            f"the kernels' build ({state.engine}) has no bfloat16 products: "
            "this CPU lacks AVX512-BF16"
        )
    monkeypatch.setenv("JAXRNN_CPU_BF16", path)


def _layer(cell, activation, inputs, hidden, **kwargs):
    if _registry.CELLS[cell].activation:
        kwargs["activation"] = activation
    return jaxrnn.init_layer(jax.random.key(0), cell, inputs, hidden, **kwargs)


def _max(a, b):
    return max(
        float(jnp.max(jnp.abs(x.astype(jnp.float32) - y.astype(jnp.float32))))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("cell, activation", KERNEL_CELLS)
@pytest.mark.parametrize(
    "batch, seq_len, inputs, hidden", [(5, 9, 33, 17), (3, 6, 7, 65)]
)
def test_values_are_the_policy_s(
    monkeypatch, path, cell, activation, batch, seq_len, inputs, hidden
):
    """K and N tails: D and H odd and not multiples of 32 (a pair padded
    with a zero, a vector filled in part)."""
    _use(monkeypatch, path)
    params = _layer(cell, activation, inputs, hidden)
    xs = jax.random.normal(jax.random.key(1), (batch, seq_len, inputs))

    def run(impl, policy):
        return jax.jit(
            lambda p, x: jaxrnn.apply_layer(p, x, impl=impl, matmul_dtype=policy)
        )(params, xs)

    ours, reference, float32 = run("cpu", BF16), run("scan", BF16), run("scan", None)
    assert ours[0].dtype == jnp.float32
    err, policy_effect = _max(ours, reference), _max(reference, float32)
    assert err <= 1e-5 + 0.05 * policy_effect, (err, policy_effect)
    assert policy_effect > 1e-4  # the policy changes these values measurably


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("cell, activation", [c for c in ONE_EACH if c in KERNEL_CELLS])
def test_gradients_with_lengths_and_nan_padding(monkeypatch, path, cell, activation):
    """Two bidirectional layers, lengths of 0 to past T, NaN where the
    lengths end: the gradients are the reference's to bfloat16's precision,
    and no NaN reaches them."""
    _use(monkeypatch, path)
    params = _layer(cell, activation, 6, 20, num_layers=2, bidirectional=True)
    lengths = jnp.array([0, 3, 8, 11])
    xs = jax.random.normal(jax.random.key(2), (4, 8, 6))
    xs = jnp.where((jnp.arange(8)[None] < lengths[:, None])[..., None], xs, jnp.nan)

    def loss(p, x, impl):
        ys, state = jaxrnn.apply_layer(
            p, x, lengths=lengths, impl=impl, matmul_dtype=BF16
        )
        weights = jnp.cos(jnp.arange(ys.size).reshape(ys.shape))
        return jnp.sum(jnp.nan_to_num(ys) * weights) + jnp.sum(
            state.h if _registry.CELLS[cell].lstm_carry else state
        )

    grad = lambda impl: jax.jit(jax.grad(loss, (0, 1)), static_argnums=2)(  # noqa: E731
        params, xs, impl
    )
    ours, reference = grad("cpu"), grad("scan")
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(reference), strict=True):
        assert bool(jnp.all(jnp.isfinite(a[jnp.isfinite(b)])))
        scale = max(1.0, float(jnp.max(jnp.abs(jnp.nan_to_num(b)))))
        assert float(jnp.max(jnp.abs(jnp.nan_to_num(a - b)))) <= 2e-2 * scale


@pytest.mark.parametrize("path", PATHS)
def test_a_nan_in_a_valid_step_comes_out_where_the_reference_s_does(monkeypatch, path):
    _use(monkeypatch, path)
    params = _layer("lstm", "tanh", 5, 18)
    xs = jax.random.normal(jax.random.key(3), (3, 7, 5)).at[1, 2, 4].set(jnp.nan)
    ours = jaxrnn.apply_layer(params, xs, impl="cpu", matmul_dtype=BF16)[0]
    reference = jaxrnn.apply_layer(params, xs, impl="scan", matmul_dtype=BF16)[0]
    np.testing.assert_array_equal(jnp.isnan(ours), jnp.isnan(reference))
    assert bool(jnp.any(jnp.isnan(ours)))


def test_auto_runs_the_kernels_for_bfloat16_and_the_scan_for_float16():
    if _cpu.usable(jnp.float32):
        pytest.skip(f"no kernels here: {_cpu.usable(jnp.float32)}")
    for cell, activation in KERNEL_CELLS:
        assert _impls.choose("auto", cell, activation, matmul_dtype=BF16) == "cpu"
        assert _impls.choose("cpu", cell, activation, matmul_dtype=BF16) == "cpu"
        assert (
            _impls.choose("auto", cell, activation, matmul_dtype=jnp.float16) == "scan"
        )
    with pytest.raises(
        ValueError, match=r"with matmul_dtype \(the fused path lacks it\)"
    ):
        _impls.choose("fused", "lstm", matmul_dtype=BF16)
    with pytest.raises(
        ValueError, match=r"with matmul_dtype \(the cpu path lacks it\)"
    ):
        _impls.choose("cpu", "lstm", matmul_dtype=jnp.float16)
    params = _layer("gru", "tanh", 3, 5)
    jaxpr = str(
        jax.make_jaxpr(
            lambda p: jaxrnn.apply_layer(p, jnp.ones((2, 4, 3)), matmul_dtype=BF16)
        )(params)
    )
    assert "jaxrnn_forward" in jaxpr


def test_the_path_is_chosen_by_the_probe_or_forced(monkeypatch):
    state = _cpu.status()
    if not state.available:
        pytest.skip(f"no kernels: {state.reason}")
    monkeypatch.delenv("JAXRNN_CPU_BF16", raising=False)
    native, why = _cpu_build.bf16_native(state)
    if state.bf16:
        assert state.bf16_speedup > 0
        assert native == (state.bf16_speedup > _cpu_build.BF16_MARGIN)
        assert why.startswith("probe: float32 / bfloat16 products")
    else:
        assert (native, why) == (False, "no AVX512-BF16")
    assert "matmul_dtype=bfloat16 runs" in state.describe()
    monkeypatch.setenv("JAXRNN_CPU_BF16", "round")
    assert _cpu_build.bf16_native(state) == (False, "JAXRNN_CPU_BF16")
    monkeypatch.setenv("JAXRNN_CPU_BF16", "fast")
    with pytest.raises(
        ValueError, match="JAXRNN_CPU_BF16 must be 'native' or 'round', got 'fast'"
    ):
        _cpu_build.bf16_native(state)
    without = state._replace(bf16=False, engine="avx2", bf16_speedup=0.0)
    monkeypatch.setenv("JAXRNN_CPU_BF16", "native")
    with pytest.raises(ValueError, match=r"build \(avx2\) has no bfloat16 products"):
        _cpu_build.bf16_native(without)
