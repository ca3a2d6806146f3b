"""A persistent recurrent kernel in Pallas: the whole time loop in one launch.

`scan(body, carry, xs)` is `jax.lax.scan` over time-major inputs [T, B, ...],
run as one `pallas_call`. Each program of the kernel takes a tile of the
batch, loads the loop's constants (the recurrent weights) once, keeps the
carry on chip across all T steps, and writes every step's outputs:

    for each batch tile b (the grid):
        consts = load(weights)                      once per launch
        carry = load(carry[b])
        for t in 0 .. T-1 (or T-1 .. 0):            inside the kernel
            carry, y_t = body(carry, xs[t, b])
            ys[t, b] = y_t
        final[b] = carry

The body is traced once, at the tile's shapes, into a jaxpr; its constants
(the weights it closes over) become inputs of the kernel, so any step
function runs unchanged. impl="pallas" runs the cells' kernel layouts in it
(`kernel` in `_elman`, `_lstm`, `_gru`: one matmul per gate, float32
arithmetic for 16-bit inputs, power-of-two sizes, see `_kernel`), through
the fused path's `jax.custom_vjp`: its forward recurrence and its
reverse-time backward recurrence both become kernels, and the weight
gradients stay one large matmul over all T outside them.

Which kernel runs is decided when the program is lowered, for the platform
it is lowered for (`jax.lax.platform_dependent`):

- CPU: Pallas' interpret mode (the kernel as XLA operations), which is how
  the tests check the kernels' values and gradients;
- GPU: the kernel compiled by Triton. jax 0.12 deprecates Pallas' Triton
  backend, but its replacement, Mosaic GPU, deprecates `pallas_call` too,
  and its lowering fails on these kernels (jax 0.10.2: "Only copies
  transferring a number of bytes divisible by the warpgroup size are
  supported"). Moving to it (`plgpu.kernel`) needs a GPU to test on;
- TPU: the kernel compiled by Mosaic.

The tests lower the GPU and TPU kernels on a CPU (for an H100 and a TPU
v5e); none has been compiled for or run on either yet, so `impl="auto"`
never chooses them (see `apply_layer`'s `impl`). `impl="pallas"` calls
`scan` with tiles of `_kernel.TILE` (16) rows of the padded batch on a GPU
and in interpret mode, a choice reasoned from register pressure that a GPU
has yet to measure; a TPU runs the whole batch in one program.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pl_triton

from jaxrnn.fast._kernel import pad_axis

# A compiled kernel keeps the loop's constants (W_hh, the biases) on chip in
# every program. Where they exceed this many bytes, the loop runs as
# `lax.scan` instead: the fused XLA path, the best one without the kernel.
# The figure is an H100 SM's 228 KiB of shared memory less room for the
# carry and the gate tiles; it has not been tuned on hardware. W_hh is not
# split over the hidden units, and `_kernel.pad` pads H to a power of two, so
# an LSTM's or a GRU's W_hh fits up to H = 64 in float32 and 128 in bfloat16,
# an Elman RNN's up to 128 and 256. The larger DeepBench sizes would need
# the hidden units split across programs, with a barrier between them at
# every step, which Pallas does not have. Interpret mode (a CPU) has no
# limit.
ONCHIP_BYTES = 160 * 2**10


def _triton_params() -> Any:
    """Triton's settings for the GPU kernel: its defaults (4 warps), until
    they are tuned on a GPU."""
    return pl_triton.CompilerParams()


def _blocks(leaves, tile, batch_axis):
    """BlockSpecs that take a tile of the batch axis and all of the rest."""
    specs = []
    for a in leaves:
        shape = list(a.shape)
        shape[batch_axis] = tile

        def index(i, ndim=a.ndim):
            return tuple(i if k == batch_axis else 0 for k in range(ndim))

        specs.append(pl.BlockSpec(tuple(shape), index))
    return specs


def _whole(leaves):
    return [pl.BlockSpec(a.shape, lambda i, ndim=a.ndim: (0,) * ndim) for a in leaves]


def _kernel_call(body, carry, xs, reverse, tile, interpret, compiler_params):
    """The kernel for one batch tile size; (final carry, ys), or None when
    compiled and the loop's constants exceed ONCHIP_BYTES."""
    carry_leaves, carry_tree = jax.tree.flatten(carry)
    x_leaves, x_tree = jax.tree.flatten(xs)
    steps, batch = x_leaves[0].shape[:2]
    tile = batch if tile is None else min(int(tile), batch)
    padded = -(-batch // tile) * tile
    carry_leaves = [pad_axis(a, 0, padded) for a in carry_leaves]
    x_leaves = [pad_axis(a, 1, padded) for a in x_leaves]

    # Trace the body once at the tile's shapes; what it closes over (the
    # weights) comes out as the jaxpr's constants, which the kernel loads.
    def tile_of(shape, dtype):
        """One tile of the batch: [tile, ...]."""
        return jax.ShapeDtypeStruct((tile, *shape[1:]), dtype)

    y_trees = []

    def flat_body(c_leaves, x_t_leaves):
        c, x_t = carry_tree.unflatten(c_leaves), x_tree.unflatten(x_t_leaves)
        new, y = body(c, x_t)
        y_leaves, y_tree = jax.tree.flatten(y)
        y_trees.append(y_tree)
        return jax.tree.leaves(new), y_leaves

    closed = jax.make_jaxpr(flat_body)(
        [tile_of(a.shape, a.dtype) for a in carry_leaves],
        [tile_of(a.shape[1:], a.dtype) for a in x_leaves],
    )
    y_tree = y_trees[0]
    consts = [jnp.asarray(c) for c in closed.consts]
    if not interpret and sum(c.size * c.dtype.itemsize for c in consts) > ONCHIP_BYTES:
        return None
    consts = [c.reshape(1) if c.ndim == 0 else c for c in consts]
    scalar = [c.ndim == 0 for c in closed.consts]
    n_carry = len(carry_leaves)
    y_avals = closed.out_avals[n_carry:]

    def kernel(*refs):
        k = 0
        const_refs = refs[k : k + len(consts)]
        k += len(consts)
        carry_refs = refs[k : k + n_carry]
        k += n_carry
        x_refs = refs[k : k + len(x_leaves)]
        k += len(x_leaves)
        final_refs = refs[k : k + n_carry]
        y_refs = refs[k + n_carry :]
        values = [r[0] if s else r[...] for r, s in zip(const_refs, scalar)]

        def step(i, c):
            t = steps - 1 - i if reverse else i
            outs = jax.core.eval_jaxpr(
                closed.jaxpr, values, *c, *[r[t] for r in x_refs]
            )
            for r, y in zip(y_refs, outs[n_carry:]):
                r[t] = y
            return list(outs[:n_carry])

        final = jax.lax.fori_loop(0, steps, step, [r[...] for r in carry_refs])
        for r, v in zip(final_refs, final):
            r[...] = v

    out_shape = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in carry_leaves]
    out_shape += [
        jax.ShapeDtypeStruct((steps, padded, *a.shape[1:]), a.dtype) for a in y_avals
    ]

    outs = pl.pallas_call(
        kernel,
        out_shape=out_shape,
        grid=(padded // tile,),
        in_specs=_whole(consts)
        + _blocks(carry_leaves, tile, 0)
        + _blocks(x_leaves, tile, 1),
        out_specs=_blocks(carry_leaves, tile, 0)
        + _blocks(out_shape[n_carry:], tile, 1),
        interpret=interpret,
        compiler_params=compiler_params,
    )(*consts, *carry_leaves, *x_leaves)
    final = [a[:batch] for a in outs[:n_carry]]
    ys = [a[:, :batch] for a in outs[n_carry:]]
    return carry_tree.unflatten(final), y_tree.unflatten(ys)


def scan(
    body: Callable[[Any, Any], tuple[Any, Any]],
    carry: Any,
    xs: Any,
    *,
    reverse: bool = False,
    tile: int | None = None,
    interpret: bool | None = None,
) -> tuple[Any, Any]:
    """`jax.lax.scan(body, carry, xs, reverse=reverse)` as one Pallas kernel.

    Args:
        body: `(carry, x_t) -> (carry, y_t)`, on a batch block: every carry
            leaf is [B, ...] and every leaf of x_t and y_t is [B, ...].
        carry: the initial carry, leaves [B, ...].
        xs: the inputs, leaves [T, B, ...] (None leaves are allowed).
        reverse: run t = T-1 down to 0; outputs stay aligned with xs.
        tile: the batch rows per program (default: all of B), in interpret
            mode and on a GPU. B is padded to a multiple of it and the
            padding dropped afterwards. A TPU runs the whole batch in one
            program: Mosaic takes a block of the batch only in multiples of
            128 rows where the batch is an array's last axis (the masks
            [T, B]), and a TPU core runs programs one after another anyway.
        interpret: True runs Pallas' interpret mode everywhere; False
            compiles the kernel for a GPU (Triton) or a TPU (Mosaic) and
            runs `lax.scan` elsewhere; None (the default) is False except on
            a CPU, where it is True. Compiled, a loop whose constants exceed
            ONCHIP_BYTES runs as `lax.scan` instead.

    Returns:
        (final carry, ys), as `lax.scan` returns them.
    """
    call = functools.partial(_kernel_call, body, carry, xs, reverse)
    if interpret:
        return call(tile, True, None)

    def fallback():
        return jax.lax.scan(body, carry, xs, reverse=reverse)

    def branch(tile, compiler_params):
        def run():  # traced by platform_dependent, inside the branch
            result = call(tile, False, compiler_params)
            return fallback() if result is None else result  # None: too big

        return run

    # The platform is known when the program is lowered, not here: each
    # platform gets its own branch, and the one that runs is the branch of
    # the platform the program is lowered for (see the module's docstring).
    triton = branch(tile, _triton_params())
    branches = {"cuda": triton, "rocm": triton, "tpu": branch(None, None)}
    if interpret is None:
        branches["cpu"] = lambda: call(tile, True, None)
    return jax.lax.platform_dependent(default=fallback, **branches)
