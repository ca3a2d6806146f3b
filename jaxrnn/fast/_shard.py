"""The fast path's passes under data parallelism and under `jax.vmap`.

A kernel call is opaque to XLA, and the fused path's hand-written passes
reshape time and batch together: left alone, a batch sharded over devices
is gathered onto every device before them, and every device runs the
whole batch. So each pass (the kernels' forward and backward calls, the
fused path's forward and backward) is a `custom_partitioning` whose rule
says what a data-parallel layer is:

    an array with a batch axis        keeps the batch's sharding; each
                                      device runs the pass on its own rows
    an input without one (weights)    replicated
    an output without one             a sum over the batch (the weight and
                                      bias gradients): each device's sum
                                      over its rows, summed over the
                                      devices (`lax.psum`), as XLA's own
                                      data parallelism does

A pass is told how many of the mesh's devices share this host, so that
the kernels split the host's cores between them. Inside `shard_map` a
pass lowers as it is; where there is one device, or the program is lowered
for another platform (an abstract mesh), it is not partitioned at all.

Under `jax.vmap` (`custom_vmap`): where no input without a batch axis is
mapped and no output is a sum over the batch, the mapped members are
stacked along the batch axis and run once; otherwise a pure JAX pass is
vmapped as it is, and a kernel call runs the members one after another
(`lax.map`). A pure JAX pass also differentiates again (its VJP is that of
the unpartitioned pass), which second derivatives of a layer need.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding, PartitionSpec

# A pass: fn(*static, devices, *arrays) -> tuple of arrays, where `devices`
# is how many devices of the mesh share this host (1 when not partitioned).
Pass = Callable[..., tuple]


def run(fn: Pass, static: tuple, ins: tuple, outs: tuple, pure: bool, *arrays):
    """fn(*static, devices, *arrays), partitioned over a sharded batch.

    Args:
        fn: the pass, a module-level function.
        static: its hashable leading arguments.
        ins: each array's batch axis, or None (replicated).
        outs: each result's batch axis, or None (a sum over the batch).
        pure: whether fn is JAX all through (then vmap maps it directly).
        *arrays: the arrays; a [0] placeholder is replicated.
    """
    return _wrapped(fn, static, ins, outs, pure, _splittable())(*arrays)


def _splittable() -> bool:
    """Whether the program being traced can run on more than one device:
    there are several, and it is not being lowered for a platform that has
    none here (an abstract mesh naming its device, which
    `custom_partitioning` cannot lower for)."""
    if jax.device_count() < 2:
        return False
    return getattr(jax.sharding.get_abstract_mesh(), "abstract_device", None) is None


def _dims(shapes, dims):
    """The batch axis of each array, None for a [0] placeholder."""
    return [None if tuple(s) == (0,) else d for s, d in zip(shapes, dims)]


def _batch_axes(arg_shapes, ins):
    """The mesh axes that split the batch: those of the first input with a
    batch axis (None when it is not split)."""
    for shape, dim in zip(arg_shapes, _dims([a.shape for a in arg_shapes], ins)):
        if dim is not None:
            spec = getattr(shape.sharding, "spec", None)
            return spec[dim] if spec is not None and len(spec) > dim else None
    return None


def _on_this_host(mesh) -> int:
    here = jax.process_index()
    return max(1, sum(1 for d in mesh.devices.flat if d.process_index == here))


def _shardings(mesh, axes, shapes, dims):
    out = []
    for shape, dim in zip(shapes, _dims([s.shape for s in shapes], dims)):
        spec = [None] * len(shape.shape)
        if dim is not None:
            spec[dim] = axes
        out.append(NamedSharding(mesh, PartitionSpec(*spec)))
    return tuple(out)


def _rule(ins, outs):
    """The Shardy rule: the batch axis is one factor "b" everywhere; every
    other dimension is a factor of its own."""

    def rule(mesh, operands, results):
        def names(types, dims, side):
            shapes = [tuple(t.shape) for t in types]
            return ", ".join(
                " ".join(
                    "b" if axis == dim else f"{side}{i}_{axis}"
                    for axis in range(len(shape))
                )
                for i, (shape, dim) in enumerate(zip(shapes, _dims(shapes, dims)))
            )

        return names(operands, ins, "x") + " -> " + names(results, outs, "y")

    return rule


@functools.cache
def _wrapped(fn, static, ins, outs, pure, splittable):
    def call(devices, *arrays):
        return tuple(fn(*static, devices, *arrays))

    if splittable:
        partitioned = _partitioned(call, ins, outs)
    else:

        def partitioned(*arrays):
            return call(1, *arrays)

    @custom_vmap
    def mapped(*arrays):
        return partitioned(*arrays)

    @mapped.def_vmap
    def rule(size, batched, *arrays):
        dims = _dims(
            [a.shape[1:] if b else a.shape for a, b in zip(arrays, batched)], ins
        )
        shared = not any(b for b, d in zip(batched, ins) if d is None)
        if shared and all(d is not None for d in outs):
            return _fold(partitioned, size, batched, arrays, dims, outs), (True,) * len(
                outs
            )
        if pure:
            axes = [0 if b else None for b in batched]
            return jax.vmap(lambda *a: call(1, *a), in_axes=axes)(*arrays), (
                True,
            ) * len(outs)
        members = [a for a, b in zip(arrays, batched) if b]

        def one(member):
            it = iter(member)
            return partitioned(*[next(it) if b else a for a, b in zip(arrays, batched)])

        return tuple(jax.lax.map(one, members)), (True,) * len(outs)

    if not pure:
        return mapped

    # A pure pass is JAX code, so it differentiates again (second derivatives
    # of a layer): its VJP is that of the unpartitioned pass.
    @jax.custom_vjp
    def differentiable(*arrays):
        return mapped(*arrays)

    def forward(*arrays):
        return mapped(*arrays), arrays

    def backward(arrays, cotangents):
        return jax.vjp(lambda *a: call(1, *a), *arrays)[1](cotangents)

    differentiable.defvjp(forward, backward)
    return differentiable


def _partitioned(call, ins, outs):
    """call(1, *arrays) as a `custom_partitioning` over the batch axis."""

    @custom_partitioning
    def partitioned(*arrays):
        return call(1, *arrays)

    def partition(mesh, arg_shapes, result_shape):
        axes = _batch_axes(arg_shapes, ins)
        devices = _on_this_host(mesh)

        def lower(*arrays):
            results = call(devices, *arrays)
            if axes is None:
                return results
            dims = _dims([r.shape for r in results], outs)
            return tuple(
                jax.lax.psum(r, axes) if d is None and r.shape != (0,) else r
                for r, d in zip(results, dims)
            )

        return (
            mesh,
            lower,
            _shardings(mesh, axes, result_shape, outs),
            _shardings(mesh, axes, arg_shapes, ins),
        )

    def infer(mesh, arg_shapes, result_shape):
        return _shardings(mesh, _batch_axes(arg_shapes, ins), result_shape, outs)

    partitioned.def_partition(
        partition, infer_sharding_from_operands=infer, sharding_rule=_rule(ins, outs)
    )
    return partitioned


def _fold(run, size, batched, arrays, dims, outs):
    """One call for `size` members that share every array without a batch
    axis: the members stacked along the batch axis (an unmapped array
    repeated for each), the results split back."""
    stacked = []
    for a, b, dim in zip(arrays, batched, dims):
        if b and dim is None:
            a = a[0]  # a mapped placeholder
        elif b:
            a = jnp.moveaxis(a, 0, dim)
            a = a.reshape(*a.shape[:dim], -1, *a.shape[dim + 2 :])
        elif dim is not None:
            a = jnp.concatenate([a] * size, axis=dim)
        stacked.append(a)
    results = []
    for r, dim in zip(run(*stacked), outs):
        if r.shape == (0,):
            results.append(jnp.zeros((size, 0), r.dtype))
            continue
        r = r.reshape(*r.shape[:dim], size, -1, *r.shape[dim + 1 :])
        results.append(jnp.moveaxis(r, dim, 0))
    return tuple(results)
