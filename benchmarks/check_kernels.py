"""The Pallas kernels against the reference, on whatever machine this runs on.

For each cell and dtype, at a small odd size and at a size where the kernel
keeps W_hh on chip, it runs impl="pallas" and impl="scan" (the reference) on
the same weights and prints, per case:

- kernels: how many Pallas kernels the lowered program holds (value and
  gradient of one layer: 2 when the kernels apply, 0 where they fall back
  to lax.scan, and 0 on a CPU, where they run interpreted);
- value and grad: the largest difference from the reference, over the
  largest magnitude of the reference (values; then every gradient leaf);
- one run: the seconds of one call after compiling (not a benchmark: the
  harness, `python -m benchmarks`, times them).

It needs jax and jaxrnn only (no pytest), so a bare GPU machine can run it;
on a CPU the kernels run in interpret mode. A case fails when a difference
exceeds its dtype's tolerance (TOL), or when a GPU or TPU program lacks its
2 kernels (every size here fits on chip); the exit status is then 1.

    python benchmarks/check_kernels.py [--quick]
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
import time

import jax
import jax.numpy as jnp

import jaxrnn

# The largest difference from the float32 reference, relative to its scale.
# 16-bit inputs compute in float32 inside the kernel but round their inputs,
# weights and outputs; the reference computes in float32 from the same
# rounded weights.
TOL = {jnp.float32: 1e-4, jnp.bfloat16: 3e-2, jnp.float16: 5e-3}
CASES = [("lstm", {}), ("gru", {}), ("rnn", {"activation": "tanh"})]
SIZES = [(3, 5, 7, 20), (64, 100, 64, 64)]  # B, T, D, H
KERNEL_CALLS = r"custom_call @(__gpu\$xla\.gpu\.triton|tpu_custom_call)\("


def _case(cell, kwargs, dtype, batch, steps, width, hidden):
    layer = jaxrnn.init_layer(jax.random.key(0), cell, width, hidden, **kwargs)
    xs = jax.random.normal(jax.random.key(1), (batch, steps, width))
    lengths = jnp.maximum(steps - jnp.arange(batch) % 4, 1)
    low = jax.tree.map(lambda a: a.astype(dtype), layer)
    low_xs = xs.astype(dtype)
    # The reference in float32, from the weights and inputs rounded to dtype.
    ref_layer = jax.tree.map(lambda a: a.astype(jnp.float32), low)
    ref_xs = low_xs.astype(jnp.float32)

    def loss(layer, xs, *, impl):
        ys, final = jaxrnn.apply_layer(layer, xs, lengths=lengths, impl=impl)
        leaves = jax.tree.leaves((ys, final))
        return sum(jnp.sum(jnp.sin(a.astype(jnp.float32))) for a in leaves), ys

    def run(layer, xs, impl):
        grad = jax.value_and_grad(functools.partial(loss, impl=impl), (0, 1), True)
        lowered = jax.jit(grad).lower(layer, xs)
        kernels = len(re.findall(KERNEL_CALLS, lowered.as_text()))
        compiled = lowered.compile()
        start = time.perf_counter()
        (_, ys), grads = compiled(layer, xs)
        jax.block_until_ready((ys, grads))
        return ys, grads, kernels, time.perf_counter() - start

    ys, grads, kernels, seconds = run(low, low_xs, "pallas")
    ref_ys, ref_grads, _, _ = run(ref_layer, ref_xs, "scan")

    def relative(a, b):
        b = b.astype(jnp.float32)
        scale = jnp.maximum(jnp.max(jnp.abs(b)), 1e-30)
        return float(jnp.max(jnp.abs(a.astype(jnp.float32) - b)) / scale)

    value = relative(ys, ref_ys)
    grad = max(
        relative(a, b)
        for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads))
    )
    return kernels, value, grad, seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="the small size and float32 only"
    )
    args = parser.parse_args(argv)
    print(f"jax {jax.__version__}, backend {jax.default_backend()}: {jax.devices()}")
    sizes = SIZES[:1] if args.quick else SIZES
    dtypes = [jnp.float32] if args.quick else list(TOL)
    print(
        "| cell | dtype | B | T | D | H | kernels | value | grad | one run (s) | ok |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    # float32 matmuls in full float32 (not TF32) in the kernel and in the
    # reference alike: this checks the kernels' arithmetic, not TF32's.
    with jax.default_matmul_precision("float32"):
        failed = _table(sizes, dtypes)
    print(f"{failed} case(s) failed" if failed else "every case is within TOL")
    return 1 if failed else 0


def _table(sizes, dtypes) -> int:
    failed = 0
    for cell, kwargs in CASES:
        for dtype in dtypes:
            for size in sizes:
                try:
                    kernels, value, grad, seconds = _case(cell, kwargs, dtype, *size)
                except Exception as error:  # report it and go on to the next
                    failed += 1
                    name = type(error).__name__
                    print(
                        f"| {cell} | {dtype.__name__} | {size} | error: {name}: "
                        f"{str(error).splitlines()[0][:300]} |"
                    )
                    continue
                # Every case fits on chip: compiled, each loop is a kernel.
                expected = 0 if jax.default_backend() == "cpu" else 2
                ok = value <= TOL[dtype] and grad <= TOL[dtype]
                ok = ok and kernels == expected
                failed += not ok
                print(
                    f"| {cell} | {dtype.__name__} | {' | '.join(map(str, size))} "
                    f"| {kernels} | {value:.1e} | {grad:.1e} | {seconds:.3f} "
                    f"| {'yes' if ok else 'NO'} |"
                )
    return failed


if __name__ == "__main__":
    sys.exit(main())
