"""The model of a run: a recurrent layer and a readout, and sampling from it."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxrnn.cells import ReadoutParams, init_readout, readout
from jaxrnn.cells import _registry as _cells
from jaxrnn.layer import LayerParams, apply_layer, init_layer, init_state, stream_layer
from jaxrnn.runs._config import RunConfig
from jaxrnn.tasks import _registry, _text


class Model(NamedTuple):
    """A recurrent layer and the readout on its outputs."""

    layer: LayerParams
    head: ReadoutParams


def init_model(key: jax.Array, config: RunConfig, task: _registry.Task) -> Model:
    """Initialise the layer and the readout for `task`, as `config` says."""
    key_layer, key_head = jax.random.split(key)
    spec = _cells.CELLS[config.cell]
    layer = init_layer(
        key_layer,
        config.cell,
        task.input_size,
        config.hidden_size,
        num_layers=config.num_layers,
        bidirectional=config.bidirectional,
        activation=config.activation if spec.activation else None,
        forget_bias=config.forget_bias if spec.forget_bias else None,
        cell_options=(
            {"horizon": config.recurrent_horizon}
            if config.recurrent_horizon and "horizon" in _cells.init_keywords(spec)
            else None
        ),
    )
    if spec.update_block is not None and config.update_bias is not None:
        layer = _set_update_bias(layer, spec.update_block, config.update_bias)
    head = init_readout(key_head, layer.features, task.output_size)
    return Model(layer, head)


def _set_update_bias(layer: LayerParams, block: int, value: float) -> LayerParams:
    """Set the update gate's block of every cell's bias (`CellSpec.update_block`)."""

    def one(cell):
        size = cell.w_hh.shape[-1]
        return cell._replace(b=cell.b.at[block * size : (block + 1) * size].set(value))

    cells = tuple(tuple(one(c) for c in directions) for directions in layer.cells)
    return dataclasses.replace(layer, cells=cells)


def forward(
    model: Model,
    xs: ArrayLike,
    config: RunConfig,
    task: _registry.Task,
    *,
    training: bool = False,
    key: jax.Array | None = None,
) -> jax.Array:
    """Outputs: [B, O] for a many-to-one task, else [B, T, O]."""
    if task.tokens:
        xs = jax.nn.one_hot(xs, task.input_size, dtype=jnp.float32)
    ys, _ = apply_layer(
        model.layer,
        xs,
        dropout=config.dropout,
        training=training,
        key=key,
        return_sequences=not task.many_to_one,
        impl=config.impl,
        matmul_dtype=None if config.matmul_dtype == "float32" else jnp.bfloat16,
    )
    if training and config.output_dropout > 0:
        rate = config.output_dropout
        keep = jax.random.bernoulli(jax.random.fold_in(key, 1), 1 - rate, ys.shape)
        ys = jnp.where(keep, ys / (1 - rate), 0).astype(ys.dtype)
    return readout(model.head, ys)


def sample_text(
    model: Model,
    config: RunConfig,
    task: _registry.Task,
    prompt: str,
    length: int,
    *,
    temperature: float = 1.0,
    key: jax.Array,
) -> str:
    """Continue `prompt` by `length` characters drawn one at a time.

    The prompt is read in one pass (one `stream_layer` chunk); then each
    drawn character is fed back as one step with the carried state.
    Temperature 0 takes the most likely character.

    Raises:
        ValueError: a task that is not a character model, an empty prompt,
            characters outside the vocabulary, or a bad length or temperature.
    """
    if "vocab" not in task.info:
        raise ValueError(
            f"generate: needs a character model (task 'chars'), got a run of "
            f"task {task.name!r}."
        )
    if not prompt:
        raise ValueError("generate: prompt must have at least one character, got ''.")
    if not isinstance(length, int) or length < 1:
        raise ValueError(f"generate: length must be a positive int, got {length!r}.")
    vocab = _text.Vocab(task.info["vocab"])
    ids = jnp.asarray(vocab.encode(prompt))[None]

    def one_hot(x):
        return jax.nn.one_hot(x, vocab.size, dtype=jnp.float32)

    @jax.jit
    def run(model, ids, key):
        state = init_state(model.layer, 1)
        hs, state = stream_layer(model.layer, state, one_hot(ids), impl="scan")
        logits = readout(model.head, hs[:, -1])

        def body(carry, key):
            state, logits = carry
            token = _text.sample_logits(key, logits, temperature)
            h, state = stream_layer(
                model.layer, state, one_hot(token), impl="scan"
            )  # one step: [1, V] in, [1, H] out
            return (state, readout(model.head, h)), token[0]

        _, tokens = jax.lax.scan(body, (state, logits), jax.random.split(key, length))
        return tokens

    return vocab.decode(run(model, ids, key))
