"""The `impl` rule: which implementation runs a layer, and why not another.

    "scan"    the reference: each cell's step under the scan of `unroll`,
              mapped over the batch with `jax.vmap`. Every cell, every
              option, forward- and reverse-mode derivatives.
    "fused"   the fast path (`_vjp`): the whole batch at once in time-major
              blocks, the input projection as one matmul over all T, and a
              hand-written backward pass. The Elman RNN (tanh, sigmoid,
              relu), the LSTM and the GRU, with every layer option but
              those in REFERENCE_ONLY. No forward-mode derivative.
    "pallas"  "fused" with its two time loops as Pallas kernels
              (`_pallas`); what "fused" covers. Interpret mode on a CPU.
    "cpu"     "fused" with its two time loops as compiled C++ kernels
              called through the XLA FFI (`_cpu`): what "fused" covers, on a
              CPU, for float32 and the 16-bit floats (which compute in
              float32), where a C++ compiler built them; and the
              mixed-precision policy matmul_dtype=bfloat16 (by AVX512-BF16's
              products or by float32 products of rounded operands, the
              faster here: `jaxrnn info` says which).
    "parallel" every step solved at once by Newton's method (DEER, in
              `jaxrnn.parallel`), for every cell, with a fallback to the
              sequential scan when Newton has not converged, and gradients
              by implicit differentiation. Not with the options in
              SEQUENTIAL_ONLY; no forward-mode derivative. It pays only for
              small carries and long sequences on parallel hardware
              (docs/parallel.md), so "auto" never picks it.
    "auto"    on a CPU, "cpu" where it runs and `cpu_wins` says it measured
              faster (every cell it has, matmul_dtype=bfloat16 included);
              else "fused" wherever it applies; else "scan". The
              Pallas kernels have not been measured on a GPU or a TPU, so
              "auto" does not pick "pallas".

`apply_layer` asks `choose` for the impl and `runner` for the function that
runs one direction of one layer. The rule and its messages live here only.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable

import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn.fast import _cpu, _elman, _fused, _vjp
from jaxrnn.parallel import _api as _parallel

IMPLS = ("auto", "scan", "fused", "pallas", "cpu", "parallel")
FAST_CELLS = tuple(_fused.LAYOUTS)
FAST_ACTIVATIONS = _elman.FAST_ACTIVATIONS
# The layer options that only the reference scan has (but for matmul_dtype =
# bfloat16, which the CPU kernels run too).
REFERENCE_ONLY = ("reset", "recurrent_dropout", "zoneout", "checkpoint", "matmul_dtype")
# The layer options that "parallel" lacks: resets and the regularisers change
# the step's equations per step or per sequence, and checkpointing is the
# sequential scan's memory policy.
SEQUENTIAL_ONLY = ("reset", "recurrent_dropout", "zoneout", "checkpoint")

# run(cell_params, carry [B, .], xs [B, T, D], *, index, direction, outputs)
#     -> (final carry, ys [B, T, H], or None when outputs is False)
Runner = Callable[..., tuple[Any, Any]]

_log = logging.getLogger("jaxrnn")


def unsupported(cell: str, activation: Any = "tanh", **options: bool) -> str:
    """Why the fast path cannot run this layer ("" when it can).

    Args:
        cell: the cell's name ("lstm", "gru", ...).
        activation: the Elman RNN's g1 (ignored for the other cells).
        **options: each of REFERENCE_ONLY, mapped to whether it is in use.

    Examples:
        >>> unsupported("lstm", zoneout=True)
        'zoneout'
        >>> unsupported("gru")
        ''
    """
    _known(options)
    if cell not in FAST_CELLS:
        return f"cell={cell!r} (it has {', '.join(map(repr, FAST_CELLS))})"
    if cell == "rnn" and activation not in FAST_ACTIVATIONS:
        names = ", ".join(map(repr, FAST_ACTIVATIONS))
        return f"activation={activation!r} (it has {names})"
    return ", ".join(option for option, on in options.items() if on)


def _known(options: dict) -> None:
    """Every option named is one of REFERENCE_ONLY (a caller's typo fails)."""
    unknown = sorted(set(options) - set(REFERENCE_ONLY))
    if unknown:
        raise ValueError(f"unsupported: unknown options {unknown}")


def cpu_wins(cell: str, dtype: Any) -> bool:
    """Where "auto" runs the compiled CPU kernels rather than "fused": every
    cell they have. Measured on the CPU grid (two harness runs, 2026-12-05,
    2-core Intel Xeon, benchmarks/README.md), their training step took
    0.50x to 0.72x the fused path's for the LSTM and the GRU, and 0.93x and
    0.97x for the Elman RNN (0.95x for a wide one, H = 512); their forward
    pass 0.54x to 0.76x, and 1.07x and 1.00x for the Elman RNN. Beside a
    competing process they took 0.45x to 0.96x the fused path's time."""
    return cell in FAST_CELLS


def _bf16_policy(matmul_dtype: Any) -> bool:
    """Whether a matmul_dtype (None, a bool, or a dtype) is bfloat16."""
    if matmul_dtype is None or isinstance(matmul_dtype, bool):
        return False
    return jnp.dtype(matmul_dtype) == jnp.bfloat16


def choose(
    impl: str,
    cell: str,
    activation: Any = "tanh",
    *,
    dtype: Any = jnp.float32,
    fn: str = "choose",
    matmul_dtype: Any = None,
    **options: bool,
) -> str:
    """The impl that runs: "scan", "fused", "pallas", "cpu" or "parallel".

    Args:
        impl: what the caller asked for, one of IMPLS.
        cell: the cell's name.
        activation: the Elman RNN's g1.
        dtype: the params' dtype.
        fn: the public function to name in errors.
        **options: each of REFERENCE_ONLY, mapped to whether it is in use.

    Raises:
        ValueError: an impl outside IMPLS; "fused", "pallas" or "cpu" for a
            cell, activation or option they lack; "cpu" where the kernels
            cannot run (float64, another backend, no compiled kernels);
            "parallel" with an option in SEQUENTIAL_ONLY. The message names
            why.

    Examples:
        >>> choose("auto", "lstm", dtype="float64"), choose("auto", "lstm", reset=True)
        ('fused', 'scan')
    """
    if impl not in IMPLS:
        _checks.fail(fn, "impl", f"must be one of {IMPLS}", repr(impl))
    if impl == "parallel":
        _known(options)
        lacking = [o for o in SEQUENTIAL_ONLY if options.get(o)]
        if lacking:
            _checks.fail(
                fn,
                "impl",
                f"must not be 'parallel' with {', '.join(lacking)} (the parallel "
                "solve lacks it)",
                repr(impl),
                "Use impl='scan' or 'auto'.",
            )
        return impl
    mixed = matmul_dtype is not None and matmul_dtype is not False
    why_not = unsupported(cell, activation, matmul_dtype=mixed, **options)
    if (
        impl in ("cpu", "auto")
        and why_not == "matmul_dtype"
        and _bf16_policy(matmul_dtype)
        and not _cpu.usable(dtype)
    ):
        why_not = ""  # the kernels run the bfloat16 policy
    if impl in ("fused", "pallas", "cpu") and why_not:
        _checks.fail(
            fn,
            "impl",
            f"must be 'auto' or 'scan' with {why_not} (the {impl} path lacks it)",
            repr(impl),
        )
    # The kernels' own limits; asking costs nothing off a CPU, and builds
    # them (once per process) on one.
    wanted = impl == "cpu" or (impl == "auto" and cpu_wins(cell, dtype))
    no_cpu = _cpu.usable(dtype) if wanted and not why_not else ""
    if impl == "cpu" and no_cpu:
        _checks.fail(fn, "impl", f"must not be 'cpu' with {no_cpu}", repr(impl))
    if why_not or impl == "scan":
        chosen = "scan"
    elif impl == "auto":
        chosen = "cpu" if wanted and not no_cpu else ("scan" if mixed else "fused")
    else:
        chosen = impl
    if impl == "auto":
        _log.debug("%s: impl='auto' runs %r %s", fn, chosen, why_not or no_cpu)
    return chosen


def runner(
    impl: str,
    *,
    reference: Runner,
    cell: str,
    activation: Any,
    mask: Any,
    unroll: int | bool,
    step: Any = None,
    matmul_dtype: Any = None,
) -> Runner:
    """The function that runs one direction of one layer under `impl`.

    `impl` is what `choose` returned; `reference` is the layer's reference
    runner, returned for "scan". The fast runners compute every step's
    output and the layer keeps what it needs; "parallel" runs `step`, the
    layer's reference step; "cpu" with matmul_dtype=bfloat16 runs the
    policy by the kernels' path for it here ("cpu_native" or "cpu_round").
    """
    if impl == "scan":
        return reference
    if impl == "parallel":
        return functools.partial(_parallel_runner, step, mask)
    loop = {"fused": "scan"}.get(impl, impl)
    if impl == "cpu" and _bf16_policy(matmul_dtype):
        loop = "cpu_native" if _cpu.bf16_native() else "cpu_round"
    return functools.partial(_fast, cell, activation, mask, unroll, loop)


def _fast(
    cell, activation, mask, unroll, loop, params, carry, xs, *, direction, **unused
):
    """A fast runner: `index`, `outputs` and `key` (in `unused`) are the
    reference's alone, since the fast paths cover no keyed option and always
    compute every step's output."""
    return _vjp.run(
        cell,
        activation,
        params,
        carry,
        xs,
        mask,
        reverse=direction == 1,
        unroll=unroll,
        loop=loop,
    )


def _parallel_runner(step, mask, params, carry, xs, *, direction, **unused):
    """The parallel runner, with `parallel_unroll`'s default tolerance,
    iteration cap and fallback; it drops the solve's `Info`."""
    options = _parallel.resolve("apply_layer", "newton", None, None, True, xs.dtype)
    final, ys, _ = _parallel.run(
        step, params, carry, xs, mask, reverse=direction == 1, **options
    )
    return final, ys
