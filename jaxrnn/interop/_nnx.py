"""A jaxrnn layer as a Flax NNX module whose every weight is an `nnx.Param`.

NNX trains what is an `nnx.Param` (`nnx.Optimizer(model, tx, wrt=nnx.Param)`),
and a LayerParams held any other way is either left untrained (as
`nnx.data(params)`: its leaves are plain arrays) or breaks (`nnx.Param(params)`
wraps the whole pytree in one Variable). `to_nnx_module` stores one
`nnx.Param` per array of the LayerParams, named by its path
(`cells_0_0_w_hh`), and rebuilds the LayerParams on every call, so that
`jaxrnn.apply_layer` runs the same computation as in the functional API.

Flax is imported when the adapter is first called, and the error names the
extra to install.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import jax

from jaxrnn.interop import _common
from jaxrnn.layer._apply import apply_layer
from jaxrnn.layer._params import LayerParams, structure
from jaxrnn.layer._stream import init_state, stream_layer


def _name(path) -> str:
    """`.cells[0][1].w_hh` -> "cells_0_1_w_hh"."""
    return re.sub(r"\W+", "_", jax.tree_util.keystr(path)).strip("_")


@functools.cache
def _module_class():
    nnx = _common.require("flax.nnx", "flax", "to_nnx_module")

    class Layer(nnx.Module):
        """A jaxrnn recurrent layer as an NNX module (from `to_nnx_module`).

        Every array of the LayerParams is an `nnx.Param` attribute named by
        its path (`cells_0_0_w_ih`, `initial_state_h`, ...); `params` puts
        them back together. Calling the module is `jaxrnn.apply_layer`.
        """

        def __init__(self, params: LayerParams):
            structure("to_nnx_module", params)
            paths, treedef = jax.tree_util.tree_flatten_with_path(params)
            self.param_names = tuple(_name(path) for path, _ in paths)
            self.treedef = treedef
            for name, (_, leaf) in zip(self.param_names, paths):
                setattr(self, name, nnx.Param(leaf))

        @property
        def params(self) -> LayerParams:
            """The LayerParams, holding the current values of the nnx.Params."""
            leaves = [getattr(self, name)[...] for name in self.param_names]
            return jax.tree.unflatten(self.treedef, leaves)

        def __call__(self, xs, **options: Any):
            """`jaxrnn.apply_layer(self.params, xs, **options)`: (ys, state)."""
            return apply_layer(self.params, xs, **options)

        def init_state(self, batch_size: int):
            """`jaxrnn.init_state(self.params, batch_size)`."""
            return init_state(self.params, batch_size)

        def stream(self, state, xs, **options: Any):
            """`jaxrnn.stream_layer(self.params, state, xs, **options)`."""
            return stream_layer(self.params, state, xs, **options)

    Layer.__module__ = __name__
    Layer.__qualname__ = "Layer"
    return Layer


def to_nnx_module(params: LayerParams):
    """A jaxrnn layer as a Flax NNX module, trainable by `nnx.Optimizer`.

    Each array of `params` becomes an `nnx.Param`, so that `nnx.grad`,
    `nnx.Optimizer(model, tx, wrt=nnx.Param)` and `nnx.state(model,
    nnx.Param)` see the recurrent weights. Use it as a submodule:

        class Model(nnx.Module):
            def __init__(self, rngs):
                layer = jaxrnn.init_layer(rngs.params(), "lstm", 3, 32)
                self.rnn = to_nnx_module(layer)
                self.head = nnx.Linear(32, 1, rngs=rngs)

            def __call__(self, xs):
                ys, _ = self.rnn(xs, lengths=...)   # jaxrnn.apply_layer's options
                return self.head(ys)

    Args:
        params: from `jaxrnn.init_layer` (or a converter).

    Returns:
        An nnx.Module with `params` (the LayerParams, rebuilt from the
        current values), `__call__(xs, **options)` = `apply_layer`,
        `init_state(batch_size)` and `stream(state, xs, **options)` =
        `stream_layer`.

    Raises:
        ImportError: Flax is not installed (`pip install 'jaxrnn[flax]'`).
        TypeError: params is not a LayerParams.
    """
    return _module_class()(params)
