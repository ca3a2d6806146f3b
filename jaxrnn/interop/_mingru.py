"""The minimal cells' peers -> jaxrnn: mingru-pytorch and mingru-keras.

mingru-pytorch (lucidrains) keeps one bias-free Linear per cell and runs
the paper's log-space form, with the candidate through g (jaxrnn's
activation "positive"):

    minGRU    to_hidden_and_gate.weight        [2H, D], rows h~, z
    minLSTM   to_hidden_and_f_i_gate.weight    [3H, D], rows h~, f, i

jaxrnn's blocks are z, h~ (min_gru) and i, f, h~ (min_lstm), so the rows are
reordered. Its optional `to_out` Linear (expansion_factor != 1) is a layer of
its own, not part of the cell, and is refused. mingru-keras' `MinGRU` is the
paper's plain form (g the identity), with a sigmoid Dense for z and a Dense
for h~, each with a bias: kernels [D, H], the transposes of jaxrnn's blocks.
"""

from __future__ import annotations

from typing import Any, Callable

import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn.cells._min_gru import MinGRUParams
from jaxrnn.cells._min_lstm import MinLSTMParams
from jaxrnn.interop import _common
from jaxrnn.layer._apply import apply_layer
from jaxrnn.layer._params import LayerParams

# The peers' classes, by (module, class name): the cell and the row order of
# jaxrnn's blocks in the peer's weight.
_TORCH = {
    "minGRU": (MinGRUParams, (1, 0)),
    "minLSTM": (MinLSTMParams, (2, 1, 0)),
}


def _torch_cell(fn: str, module: Any) -> tuple[Any, str]:
    cls, order = _TORCH[type(module).__name__]
    if type(module.to_out).__name__ != "Identity":
        _checks.fail(
            fn,
            "module",
            "must have no output projection (expansion_factor=1, proj_out=False)",
            f"to_out={type(module.to_out).__name__}",
            "The projection is a layer after the cell: apply it to the outputs.",
        )
    (linear,) = [
        m for name, m in module.named_children() if name.startswith("to_hidden")
    ]
    if linear.bias is not None:  # the peer has none; a subclass might
        _checks.fail(fn, "module", "must have a bias-free input Linear", "a bias")
    blocks = jnp.split(_common.to_array(linear.weight), len(order))
    return cls(jnp.concatenate([blocks[i] for i in order]), None), "positive"


def _keras_cell(layer: Any) -> tuple[Any, str]:
    w_z, b_z, w_h, b_h = (
        _common.to_array(v)
        for v in (
            layer.gate.kernel,
            layer.gate.bias,
            layer.candidate.kernel,
            layer.candidate.bias,
        )
    )
    w_ih, b = jnp.concatenate([w_z.T, w_h.T]), jnp.concatenate([b_z, b_h])
    return MinGRUParams(w_ih, b), "identity"


def from_mingru(module: Any) -> tuple[LayerParams, Callable]:
    """Convert a mingru-pytorch minGRU or minLSTM, or a mingru-keras MinGRU.

    Args:
        module: a `minGRU_pytorch.minGRU` or `minLSTM` with no output
            projection (expansion_factor=1), or a built
            `mingru_keras.MinGRU`.

    Returns:
        (params, apply). params is a one-layer LayerParams of "min_gru" or
        "min_lstm" with the peer's activation ("positive" for
        mingru-pytorch, "identity" for mingru-keras). `apply(params, xs,
        initial_state=None, *, impl="auto") -> (outputs [B, T, H], h_T
        [B, 1, H])` is `module(xs, prev_hidden, return_next_prev_hidden=True)`
        for mingru-pytorch (`initial_state` [B, 1, H] its prev_hidden) and
        `(layer(xs), h_T)` for mingru-keras; xs is [B, T, D].

    Note:
        mingru-pytorch's minLSTM, given a prev_hidden and more than one step,
        starts from g(prev_hidden) (it takes log g of it); its one-step path
        and the paper start from prev_hidden, as jaxrnn does.

    Raises:
        TypeError: another kind of module.
        ValueError: a module with an output projection.

    Examples:
        >>> import torch, numpy as np
        >>> from minGRU_pytorch import minGRU
        >>> m = minGRU(8)
        >>> params, apply = from_mingru(m)
        >>> x = np.random.default_rng(0).normal(size=(2, 16, 8)).astype("float32")
        >>> ys, h = apply(params, x)
        >>> bool(np.allclose(ys, m(torch.from_numpy(x)).detach().numpy(), atol=1e-5))
        True
    """
    fn = "from_mingru"
    kind = (type(module).__module__.split(".")[0], type(module).__name__)
    if kind[0] == "minGRU_pytorch" and kind[1] in _TORCH:
        cell, activation = _torch_cell(fn, module)
    elif kind == ("mingru_keras", "MinGRU"):
        cell, activation = _keras_cell(module)
    else:
        _checks.fail(
            fn,
            "module",
            "must be a mingru-pytorch minGRU or minLSTM, or a mingru-keras MinGRU",
            _checks.describe(module),
            kind=TypeError,
        )

    def apply(params, xs, initial_state=None, *, impl="auto"):
        xs = _common.to_array(xs)
        if initial_state is not None:
            initial_state = jnp.swapaxes(_common.to_array(initial_state), 0, 1)
        ys, h = apply_layer(params, xs, initial_state=initial_state, impl=impl)
        return ys, jnp.swapaxes(h, 0, 1)

    return _common.single_layer(cell, activation), apply
