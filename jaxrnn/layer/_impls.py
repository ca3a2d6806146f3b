"""The table of impls: what runs one direction of one layer, and why not another.

    "scan"     the reference: the cell's step under the scan of `unroll`,
               mapped over the batch by `jax.vmap` (`_reference`). Every
               cell, every option, forward- and reverse-mode derivatives.
    "fused"    the whole batch at once in time-major blocks, the input
               projection as one matmul over all T, and a hand-written
               backward pass (`jaxrnn.fast`). Cells with fast forms
               (`CellSpec.fast`), no option of REFERENCE_ONLY; no
               forward-mode derivative.
    "pallas"   "fused" with its two time loops as Pallas kernels; interpret
               mode on a CPU, untimed on a GPU or TPU, so "auto" skips it.
    "cpu"      "fused" with its two time loops as the compiled C++ kernels
               (`CellSpec.kernel`), on a CPU, for float32 and the 16-bit
               floats (computed in float32), and matmul_dtype=bfloat16.
    "parallel" every step solved at once by Newton's method (DEER,
               `jaxrnn.parallel`), with a fallback to the sequential scan;
               every cell, not with SEQUENTIAL_ONLY's options; gradients by
               implicit differentiation. It pays only for small carries and
               long sequences on parallel hardware (docs/parallel.md), so
               "auto" skips it.
    "assoc", "assoc_log", "linear_scan"
               for the cells whose gates read x_t alone (`CellSpec.linear`:
               min_gru, min_lstm): every gate for all T in one matmul, then
               the elementwise recurrence h_t = a_t h_{t-1} + b_t solved
               exactly by an associative scan, the same in log space
               (activation "positive"; no reset), or a sequential scan
               (`_linear`). Not with recurrent dropout or zoneout.
    "auto"     the first of AUTO that can run the layer here: on a CPU the
               kernels, then "linear_scan", then "fused", then "scan"; on a
               GPU or TPU "assoc", then "fused", then "scan".

Each impl is one row: its `lacks` (which of the layer's features it cannot
run), its `here` (why it cannot run on this machine) and its `run`.
`choose` filters the rows, and `apply_layer` calls the chosen row's `run`.
Other docstrings link here rather than repeat the table.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn.cells import _registry
from jaxrnn.cells._registry import CellSpec
from jaxrnn.fast import _cpu, _fused, _vjp
from jaxrnn.layer import _linear, _reference
from jaxrnn.parallel import _api as _parallel

# The layer options that only the reference scan has (matmul_dtype aside:
# the CPU kernels run bfloat16).
REFERENCE_ONLY = ("reset", "recurrent_dropout", "zoneout", "checkpoint", "matmul_dtype")
# Those the parallel solve lacks: they change the step per step or per
# sequence, and checkpointing is the sequential scan's memory policy.
SEQUENTIAL_ONLY = ("reset", "recurrent_dropout", "zoneout", "checkpoint")

_log = logging.getLogger("jaxrnn")


class Layer(NamedTuple):
    """What the rows are asked about: the cell, g1, the params' dtype, the
    matmul policy, and each option of SEQUENTIAL_ONLY mapped to whether it is
    in use."""

    spec: CellSpec
    activation: Any
    dtype: Any
    matmul_dtype: Any
    options: dict


class Impl(NamedTuple):
    """One row of the table.

    lacks(layer) -> str: the layer's features this impl cannot run, by name
        ("" when none).
    here(dtype) -> str: why it cannot run on this machine ("" when it can).
    run(o, params, carry, xs, *, index, direction, outputs, key)
        -> (final carry, ys): one direction of one layer, `o` being the
        layer's resolved options (`_options.Options`).
    """

    name: str
    lacks: Callable[[Layer], str]
    here: Callable[[Any], str]
    run: Callable


def _bf16(matmul_dtype: Any) -> bool:
    if matmul_dtype is None or isinstance(matmul_dtype, bool):
        return False
    return jnp.dtype(matmul_dtype) == jnp.bfloat16


def _fast_lacks(layer: Layer, *, kernels: bool = False) -> str:
    spec = layer.spec
    if spec.fast is None or (kernels and spec.kernel is None):
        has = [
            s.name
            for s in _registry.CELLS.values()
            if s.fast and (s.kernel is not None or not kernels)
        ]
        return f"cell={spec.name!r} (it has {', '.join(map(repr, has))})"
    activations = _fused.activations(spec)
    if spec.activation and layer.activation not in activations:
        names = ", ".join(map(repr, activations))
        return f"activation={layer.activation!r} (it has {names})"
    using = [o for o, on in layer.options.items() if on]
    if layer.matmul_dtype is not None and not (kernels and _bf16(layer.matmul_dtype)):
        using.append("matmul_dtype")
    return ", ".join(using)


def _sequential_lacks(layer: Layer) -> str:
    return ", ".join(o for o in SEQUENTIAL_ONLY if layer.options.get(o))


def _linear_lacks(layer: Layer, *, log: bool = False) -> str:
    spec = layer.spec
    if spec.linear is None:
        has = [s.name for s in _registry.CELLS.values() if s.linear]
        return f"cell={spec.name!r} (it has {', '.join(map(repr, has))})"
    using = [o for o in ("recurrent_dropout", "zoneout") if layer.options.get(o)]
    if log:
        if layer.activation != "positive":
            using.append(f"activation={layer.activation!r} (it has 'positive')")
        if layer.options.get("reset"):
            using.append("reset")
    return ", ".join(using)


def _anywhere(dtype: Any) -> str:
    return ""


def _fast_run(loop, o, params, carry, xs, *, direction, **unused):
    """The fast paths compute every step's output and have no keyed option,
    so `index`, `outputs` and `key` (in `unused`) are the reference's alone."""
    if loop == "cpu" and _bf16(o.matmul_dtype):
        loop = "cpu_native" if _cpu.bf16_native() else "cpu_round"
    return _vjp.run(
        o.spec.name,
        o.activation,
        params,
        carry,
        xs,
        o.mask,
        reverse=direction == 1,
        unroll=o.unroll,
        loop=loop,
    )


def _parallel_run(o, params, carry, xs, *, direction, **unused):
    """`parallel_unroll`'s default tolerance, iteration cap and fallback; the
    solve's `Info` is dropped."""
    options = _parallel.resolve("apply_layer", "newton", None, None, True, xs.dtype)
    final, ys, _ = _parallel.run(
        o.step, params, carry, xs, o.mask, reverse=direction == 1, **options
    )
    return final, ys


TABLE = {
    row.name: row
    for row in (
        Impl("scan", lambda layer: "", _anywhere, _reference.run),
        Impl("fused", _fast_lacks, _anywhere, functools.partial(_fast_run, "scan")),
        Impl("pallas", _fast_lacks, _anywhere, functools.partial(_fast_run, "pallas")),
        Impl(
            "cpu",
            functools.partial(_fast_lacks, kernels=True),
            _cpu.usable,
            functools.partial(_fast_run, "cpu"),
        ),
        Impl("parallel", _sequential_lacks, _anywhere, _parallel_run),
        Impl(
            "assoc",
            _linear_lacks,
            _anywhere,
            functools.partial(_linear.run, "assoc"),
        ),
        Impl(
            "assoc_log",
            functools.partial(_linear_lacks, log=True),
            _anywhere,
            functools.partial(_linear.run, "assoc_log"),
        ),
        Impl(
            "linear_scan",
            _linear_lacks,
            _anywhere,
            functools.partial(_linear.run, "linear_scan"),
        ),
    )
}
IMPLS = ("auto", *TABLE)
# What "auto" tries, in order. On the CPU grid (benchmarks/README.md) the
# kernels' training step took 0.50x-0.97x the fused path's, and the fused
# path's is below the reference scan's everywhere it runs; for the minimal
# cells the sequential linear scan beat the associative one at every size
# measured on a CPU, where a GPU or TPU runs the associative scan's depth
# in parallel.
AUTO = {
    "cpu": ("cpu", "linear_scan", "fused", "scan"),
    "other": ("assoc", "fused", "scan"),
}


def auto() -> tuple[str, ...]:
    """What "auto" tries here, in order (AUTO for this backend)."""
    return AUTO["cpu" if jax.default_backend() == "cpu" else "other"]


def lookup(fn: str, impl: str, layer: Layer) -> Impl:
    """The row that runs `layer` under `impl`, or a ValueError naming why
    the one asked for cannot."""
    if impl not in IMPLS:
        _checks.fail(fn, "impl", f"must be one of {IMPLS}", repr(impl))
    if impl != "auto":
        row = TABLE[impl]
        lacking = row.lacks(layer)
        if lacking:
            _checks.fail(
                fn,
                "impl",
                f"must be 'auto' or 'scan' with {lacking} (the {impl} path lacks it)",
                repr(impl),
            )
        unavailable = row.here(layer.dtype)
        if unavailable:
            _checks.fail(
                fn, "impl", f"must not be {impl!r} with {unavailable}", repr(impl)
            )
        return row
    for name in auto():
        row = TABLE[name]
        why = row.lacks(layer) or row.here(layer.dtype)
        if not why:
            return row
        _log.debug("%s: impl='auto' passes over %r: %s", fn, name, why)
    raise AssertionError("the reference scan runs every layer")


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
    """The impl that runs a layer: one of TABLE's names (the rule is the
    table's, in this module's docstring).

    Args:
        impl: what the caller asked for, one of IMPLS.
        cell: the cell's name.
        activation: the Elman RNN's g1.
        dtype: the params' dtype.
        fn: the public function to name in errors.
        matmul_dtype: the mixed-precision policy, or None.
        **options: each of SEQUENTIAL_ONLY, mapped to whether it is in use.

    Raises:
        ValueError: an impl outside IMPLS, or one that lacks a feature of the
            layer or cannot run here; the message names why.

    Examples:
        >>> choose("auto", "lstm", dtype="float64"), choose("auto", "lstm", reset=True)
        ('fused', 'scan')
    """
    return lookup(fn, impl, layer(cell, activation, dtype, matmul_dtype, options)).name


def layer(cell, activation, dtype, matmul_dtype, options) -> Layer:
    """The `Layer` the rows are asked about; an unknown option is an error."""
    unknown = sorted(set(options) - set(SEQUENTIAL_ONLY))
    if unknown:
        raise ValueError(f"unknown options {unknown}: they are {SEQUENTIAL_ONLY}")
    if matmul_dtype is False:
        matmul_dtype = None
    spec = _registry.CELLS[cell]
    return Layer(spec, activation, dtype, matmul_dtype, dict(options))


def unsupported(cell: str, activation: Any = "tanh", **options: Any) -> str:
    """Why the fused path cannot run this layer ("" when it can).

    Examples:
        >>> unsupported("lstm", zoneout=True), unsupported("gru")
        ('zoneout', '')
    """
    matmul_dtype = options.pop("matmul_dtype", None)
    return TABLE["fused"].lacks(layer(cell, activation, None, matmul_dtype, options))
