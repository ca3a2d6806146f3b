"""Data-parallel training with JAX's own SPMD partitioner: no home-made collectives.

The params and optimizer state are replicated over a 1-D device mesh and
every batch array is split along its batch axis; `jax.jit` then partitions
the step, and XLA inserts the all-reduce that sums the gradients across
devices. On several hosts, call `jax.distributed.initialize()` first on every
host and build the mesh over `jax.devices()` (all hosts' devices); each host
then passes its own share of the batch as a global array (for example with
`jax.make_array_from_process_local_data`).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
from jax.sharding import NamedSharding, PartitionSpec

from jaxrnn import _checks


def make_data_parallel(
    train_step: Callable[..., Any],
    *,
    mesh: jax.sharding.Mesh | None = None,
    axis: str = "batch",
) -> Callable[..., Any]:
    """Jit a train step so that it runs data-parallel over the devices of a mesh.

        params, opt_state           replicated on every device
        *args (the batch)           each array split along axis 0 (batch-first)
        gradients                   summed across devices by XLA (all-reduce)

    The result equals the single-device step up to float rounding (the tests
    check this on 8 forced CPU devices).

    Args:
        train_step: `step(params, opt_state, *args) -> (params, opt_state,
            metrics)`, as from `make_train_step`, with batch-first arrays in
            args (a `tasks.Batch`, xs [B, T, D], ...).
        mesh: a 1-D `jax.sharding.Mesh` whose axis is named `axis`. None (the
            default) makes one over all of `jax.devices()`.
        axis: the mesh axis to split the batch over.

    Returns:
        `step(params, opt_state, *args)`: the same results, computed over the
        mesh. It raises ValueError when a batch array's size along axis 0 is
        not divisible by the number of devices.

    Examples:
        >>> import jax, jax.numpy as jnp, optax
        >>> from jaxrnn.train import make_optimizer, make_train_step
        >>> opt = make_optimizer(0.1, optimizer=optax.sgd)
        >>> step = make_data_parallel(
        ...     make_train_step(opt, lambda p, x: ((x @ p) ** 2).mean()))
        >>> p, state, m = step(jnp.ones(3), opt.init(jnp.ones(3)), jnp.ones((4, 3)))
        >>> round(float(m["loss"]), 4)
        9.0
    """
    fn = "make_data_parallel"
    if not callable(train_step):
        _checks.fail(
            fn, "train_step", "must be callable", repr(train_step), kind=TypeError
        )
    if mesh is None:
        mesh = jax.sharding.Mesh(jax.devices(), (axis,))
    if axis not in mesh.axis_names:
        _checks.fail(
            fn, "axis", f"must name an axis of mesh {mesh.axis_names}", repr(axis)
        )
    devices = mesh.shape[axis]
    replicated = NamedSharding(mesh, PartitionSpec())
    split = NamedSharding(mesh, PartitionSpec(axis))
    jitted = jax.jit(train_step)

    def step(params, opt_state, *args):
        flat, _ = jax.tree_util.tree_flatten_with_path(args)
        for path, leaf in flat:
            shape = getattr(leaf, "shape", ())
            if not shape or shape[0] % devices:
                _checks.fail(
                    "data-parallel step",
                    f"args{jax.tree_util.keystr(path)}",
                    f"must have a batch axis 0 divisible by the {devices} devices",
                    f"shape {tuple(shape)}",
                    f"Use a batch size that is a multiple of {devices}, or a "
                    "smaller mesh.",
                )
        params, opt_state = jax.device_put((params, opt_state), replicated)
        args = jax.device_put(args, split)
        return jitted(params, opt_state, *args)

    return step
