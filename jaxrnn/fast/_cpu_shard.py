"""The kernels' two calls under data parallelism and under `jax.vmap`.

A kernel call is opaque to XLA: left alone, a batch sharded over devices
would be gathered onto every device before it, and every device would run
the whole batch. So each call is a `custom_partitioning` whose rule says
what a data-parallel layer is:

    forward    every array with a batch axis (x, h0, c0, the mask; hs, cs,
               saved and the final carry) keeps the batch's sharding; the
               weights are replicated; each device runs the call on its own
               rows
    backward   the same for x, the saved arrays, the cotangents, dx and the
               initial carry's gradient; the weight and bias gradients are
               each device's sum over its rows, summed over the devices
               (`lax.psum`), which is what XLA's own data parallelism does

Each device's call takes its share of the host's cores: this process's
kernel threads divided by the devices of the mesh on this host. On one
device, and inside `shard_map`, the call lowers as it is.

Under `jax.vmap` (`custom_vmap`): a forward call whose weights are shared
by the mapped members runs once, with the members stacked along the batch;
otherwise, and for every backward call (each member has weight gradients
of its own), the members run one after another (`lax.map`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding, PartitionSpec

from jaxrnn.fast import _cpu

# Each operand's and result's batch axis, by position (None: no batch axis,
# replicated); a [0] placeholder (the cell does not use it) is replicated.
_FORWARD_IN = (1, None, None, None, None, 0, 0, 1)  # x w_ih w_hh b b_hn h0 c0 mask
_FORWARD_OUT = (1, 1, 1, 0, 0)  # hs cs saved h_t c_t
_BACKWARD_IN = (1, None, None, 1, 1, 1, 0, 0, 1, 0, 0, 1)
# dx dw_ih dw_hh db db_hn dh0 dc0; the None ones are sums over the batch.
_BACKWARD_OUT = (1, None, None, None, None, 0, 0)


def _forward_call(name, activation, save, count, *args):
    seq_len, batch, _ = args[0].shape
    shapes = _cpu.forward_shapes(name, seq_len, batch, args[5].shape[1], save)
    return tuple(
        _cpu.call(_cpu._FORWARD, shapes, args, name, activation, count, save=save)
    )


def _backward_call(name, activation, needs, count, *args):
    (seq_len, batch, features), (gates, hidden) = args[0].shape, args[2].shape
    shapes = _cpu.backward_shapes(name, seq_len, batch, features, hidden, gates, *needs)
    return tuple(_cpu.call(_cpu._BACKWARD, shapes, args, name, activation, count))


def _batch_axes(arg_shapes):
    """The mesh axes that split x's batch axis (None: not split)."""
    spec = getattr(arg_shapes[0].sharding, "spec", None)
    return spec[1] if spec is not None and len(spec) > 1 else None


def _per_call_threads(mesh) -> int:
    """This process's kernel threads over its devices in the mesh."""
    here = jax.process_index()
    local = sum(1 for d in mesh.devices.flat if d.process_index == here)
    return max(1, _cpu.threads() // max(1, local))


def _shardings(mesh, axes, shapes, batch_dims):
    out = []
    for shape, dim in zip(shapes, batch_dims):
        spec = [None] * len(shape.shape)
        if dim is not None and len(spec) > dim and shape.shape != (0,):
            spec[dim] = axes
        out.append(NamedSharding(mesh, PartitionSpec(*spec)))
    return tuple(out)


def _names(shapes, letters, first=0):
    """The sharding rule's factors: `letters` per array, or a fresh factor
    for a [0] placeholder."""
    return ", ".join(
        f"z{first + i}" if shape == (0,) else dims
        for i, (shape, dims) in enumerate(zip(shapes, letters))
    )


def _partitioned(kind: str, name: str, activation: str, save: bool, needs=()):
    """The custom_partitioning of one call, for one cell."""
    if kind == "forward":
        call = functools.partial(_forward_call, name, activation, save)
        ins, outs = _FORWARD_IN, _FORWARD_OUT
        in_dims = ("t b d", "g d", "g h", "g", "h", "b h", "b h", "t b")
        out_dims = ("t b h", "t b h", "t b s", "b h", "b h")
        reduced = ()
    else:
        call = functools.partial(_backward_call, name, activation, needs)
        ins, outs = _BACKWARD_IN, _BACKWARD_OUT
        in_dims = ("t b d", "g d", "g h", "t b s", "t b h", "t b h", "b h", "b h")
        in_dims += ("t b h", "b h", "b h", "t b")
        out_dims = ("t b d", "g d", "g h", "g", "h", "b h", "b h")
        reduced = ("b",)

    @custom_partitioning
    def run(*args):
        return call(_cpu.threads(), *args)

    def partition(mesh, arg_shapes, result_shape):
        axes = _batch_axes(arg_shapes)
        count = _per_call_threads(mesh) if axes is not None else _cpu.threads()
        arg_shardings = _shardings(mesh, axes, arg_shapes, ins)
        result_shardings = _shardings(mesh, axes, result_shape, outs)

        def lower(*args):
            results = call(count, *args)
            if axes is None or kind == "forward":
                return results
            return tuple(
                r if dim is not None else jax.lax.psum(r, axes)
                for r, dim in zip(results, outs)
            )

        return mesh, lower, result_shardings, arg_shardings

    def infer(mesh, arg_shapes, result_shape):
        return _shardings(mesh, _batch_axes(arg_shapes), result_shape, outs)

    def rule(mesh, operands, results):
        shape = lambda t: tuple(t.shape)  # noqa: E731
        text = (
            _names([shape(t) for t in operands], in_dims)
            + " -> "
            + _names([shape(t) for t in results], out_dims, len(operands))
        )
        return text, {"reduction_factors": reduced} if reduced else {}

    run.def_partition(partition, infer_sharding_from_operands=infer, sharding_rule=rule)
    return run


def _stack(x, dim):
    """x [V, ...] with the members stacked into axis `dim` (the batch)."""
    x = jnp.moveaxis(x, 0, dim)
    shape = x.shape
    return x.reshape(*shape[:dim], shape[dim] * shape[dim + 1], *shape[dim + 2 :])


def _unstack(x, dim, size):
    """The inverse of _stack: [..., V*B, ...] -> [V, ..., B, ...]."""
    shape = x.shape
    x = x.reshape(*shape[:dim], size, shape[dim] // size, *shape[dim + 1 :])
    return jnp.moveaxis(x, dim, 0)


def _fold(run, size, batched, args, ins, outs):
    """One call for `size` members that share the weights: the members
    stacked along the batch axis (repeated where an array is shared), the
    results split back."""
    stacked = []
    for a, b, dim in zip(args, batched, ins):
        if b and a.shape[1:] == (0,):
            a = a[0]  # a placeholder
        elif b:
            a = _stack(a, dim)
        elif dim is not None and a.shape != (0,):
            a = jnp.concatenate([a] * size, axis=dim)
        stacked.append(a)
    return tuple(
        jnp.zeros((size, 0), r.dtype) if r.shape == (0,) else _unstack(r, dim, size)
        for r, dim in zip(run(*stacked), outs)
    )


@functools.cache
def _mapped(kind: str, name: str, activation: str, save: bool, needs=()):
    """_partitioned's call with its vmap rule."""
    run = _partitioned(kind, name, activation, save, needs)
    ins, outs = (
        (_FORWARD_IN, _FORWARD_OUT)
        if kind == "forward"
        else (
            _BACKWARD_IN,
            _BACKWARD_OUT,
        )
    )

    @custom_vmap
    def mapped(*args):
        return run(*args)

    @mapped.def_vmap
    def rule(size, batched, *args):
        weights = any(b for b, dim in zip(batched, ins) if dim is None)
        if kind == "forward" and not weights:
            return _fold(run, size, batched, args, ins, outs), (True,) * len(outs)
        members = [a for a, b in zip(args, batched) if b]

        def one(member):
            it = iter(member)
            return run(*[next(it) if b else a for a, b in zip(args, batched)])

        return tuple(jax.lax.map(one, members)), (True,) * len(outs)

    return mapped


def forward(name, activation, save, *args):
    """The forward call: (hs, cs, saved, h_t, c_t); see `_cpu.forward`."""
    return _mapped("forward", name, activation, save)(*args)


def backward(name, activation, need_x, need_w, *args):
    """The backward call: (dx, dw_ih, dw_hh, db, db_hn, dh0, dc0); dx, and
    the weight and bias gradients, are empty when not needed."""
    return _mapped("backward", name, activation, False, (need_x, need_w))(*args)
