"""The configuration of a training run: every `jaxrnn train` flag is a field."""

from __future__ import annotations

import collections
import dataclasses
import math
import os
from typing import Any

from jaxrnn.cells import _registry as _cells
from jaxrnn.layer import _impls
from jaxrnn.tasks import _registry

CELLS = _cells.LAYER_CELLS
ACTIVATIONS = ("tanh", "relu", "sigmoid")
IMPLS = _impls.IMPLS  # apply_layer's
OPTIMIZERS = ("adam", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine")
KEEPS = ("best", "last")  # which checkpoint a run's result uses
MATMUL_DTYPES = ("float32", "bfloat16")  # the layer's matmul inputs
TASKS = tuple(_registry.TASKS)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What to train, on what, for how long. None means the task's default.

    Attributes:
        task: "adding", "copy", "digits", "sine", "sunspots", "nile", "co2"
            or "chars" (see `jaxrnn.tasks.make_task`); or, with `data`,
            "series" or "text".
        data: your own file for the series and text tasks: a CSV or .npy
            series (forecast like the real series) or a text (a character
            model); kept as an absolute path, which eval and generate read.
        column: the series' column (a CSV header name, or an index); None
            where the file has one.
        cell: "rnn", "lstm", "gru" or a variant (`jaxrnn.init_layer`).
        hidden_size: H (64; 32 for sunspots, 16 for nile, 256 for chars).
        num_layers: stacked layers.
        bidirectional: every layer reads each sequence both ways, and the
            readout reads both directions' outputs (concatenated). Refused
            for a task whose target is the next input (chars).
        activation: g1 of the cells that take one (None: the cell's own,
            tanh for the Elman RNN); ignored by the other cells.
        forget_bias: the LSTM forget-gate bias at initialisation (None: the
            cell's default, 1.0); ignored by non-LSTM cells.
        update_bias: the update-gate (z) bias of the GRU-like cells (gru,
            layer_norm_gru, cho_gru) at initialisation, or
            None for the cell's default (zero). Positive values start the
            GRU keeping its state (h_t = z h_{t-1} + (1 - z) n_t); ignored
            by other cells.
        recurrent_horizon: the T that the recurrent weights are drawn for,
            in cells whose initialiser takes a horizon (the IndRNN's u from
            U(0, 2^(1/T)), `init_indrnn`), or None for the cell's default
            (U(0, 1)); ignored by the other cells.
        dropout: dropout between stacked layers, in training only.
        output_dropout: dropout on the last layer's outputs, where they
            enter the readout, in training only (the regulariser that a
            one-layer model has).
        seq_len: T (adding 100, copy 20, sine 60, sunspots 22, nile 10,
            co2 104, chars 64). The digits are 8 + blanks steps long, which
            the resolved config records.
        horizon: steps forecast at once (forecasting tasks).
        blanks: blank steps after each digit (digits).
        batch_size: B.
        steps: optimizer steps (adding 2000, copy 3000, digits 800, sine
            1000, sunspots 600, nile 300, co2 1000, chars 2000), exactly.
        optimizer: "adam", "sgd" or "rmsprop" (optax's, with their defaults).
        learning_rate: the optimizer's (1e-2 adding, 2e-3 chars, else 3e-3).
        schedule: the learning rate over the run: "constant", or "cosine"
            (a linear warm-up over the first 2% of the steps, then a cosine
            decay to zero at the last step).
        clip_norm: the `optax.clip_by_global_norm` threshold, or None for no
            clipping.
        clip_value: per-entry clipping, or None.
        seed: the seed of the initialisation, the batches and dropout.
        eval_every: steps between validations and checkpoints (200; 250 for
            chars), exactly; the last step is validated too.
        eval_size: validation and test sequences of the generated tasks.
        chunk: the most steps per compiled call (a call ends early at a
            validation or at the last step); one program serves every
            length.
        max_bad_steps: consecutive non-finite steps (each skipped) that stop
            the run.
        keep: the checkpoint that the result, `eval` and `generate` use:
            "best", the one with the best validation metric (best.npz), or
            "last". The last one is written either way: resume continues it.
        patience: validations in a row without a better validation metric
            after which training stops early, or None to train every step.
        impl: `apply_layer`'s implementation.
        matmul_dtype: the layer's mixed-precision policy: "bfloat16" rounds
            its matmuls' inputs to bfloat16 (params, carries and the gate
            arithmetic stay float32); "float32", none.
    """

    task: str = "adding"
    data: str | None = None
    column: str | None = None
    cell: str = "lstm"
    hidden_size: int | None = None
    num_layers: int = 1
    bidirectional: bool = False
    activation: str | None = None
    forget_bias: float | None = None
    update_bias: float | None = None
    recurrent_horizon: int | None = None
    dropout: float = 0.0
    output_dropout: float = 0.0
    seq_len: int | None = None
    horizon: int = 1
    blanks: int = 0
    batch_size: int = 32
    steps: int | None = None
    optimizer: str = "adam"
    learning_rate: float | None = None
    schedule: str = "constant"
    clip_norm: float | None = 1.0
    clip_value: float | None = None
    seed: int = 0
    eval_every: int | None = None
    eval_size: int = 1000
    chunk: int = 50
    max_bad_steps: int = 20
    keep: str = "best"
    patience: int | None = None
    impl: str = "auto"
    matmul_dtype: str = "float32"

    def __post_init__(self):
        def fail(name, expected, got):
            raise ValueError(f"RunConfig: {name} must be {expected}, got {got!r}.")

        for name, options in (
            ("task", TASKS),
            ("cell", CELLS),
            ("activation", ACTIVATIONS),
            ("impl", IMPLS),
            ("optimizer", OPTIMIZERS),
            ("schedule", SCHEDULES),
            ("keep", KEEPS),
            ("matmul_dtype", MATMUL_DTYPES),
        ):
            if name == "activation" and self.activation is None:
                continue  # the cell's own
            if getattr(self, name) not in options:
                fail(name, f"one of {', '.join(options)}", getattr(self, name))
        for name in ("num_layers", "horizon", "batch_size", "eval_size", "chunk"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                fail(name, "a positive int", value)
        for name in (
            "max_bad_steps",
            "hidden_size",
            "seq_len",
            "steps",
            "eval_every",
            "recurrent_horizon",
            "patience",
        ):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                fail(name, "a positive int", value)
        if not isinstance(self.bidirectional, bool):
            fail("bidirectional", "True or False", self.bidirectional)
        if self.bidirectional and self.task in _registry.NEXT_STEP:
            fail(
                "bidirectional",
                f"False for the {self.task} task, whose target at each step is "
                "the next input (the backward direction would read it)",
                self.bidirectional,
            )
        if not isinstance(self.blanks, int) or self.blanks < 0:
            fail("blanks", "an int >= 0", self.blanks)
        if not isinstance(self.seed, int):
            fail("seed", "an int", self.seed)
        for name in ("learning_rate", "clip_norm", "clip_value"):
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, (int, float)) and math.isfinite(value) and value > 0
            ):
                fail(name, "a positive finite number or None", value)
        for name in ("dropout", "output_dropout"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value < 1):
                fail(name, "in [0, 1)", value)
        for name in ("forget_bias", "update_bias"):
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, (int, float)) and math.isfinite(value)
            ):
                fail(name, "a finite number or None", value)
        if (self.data is not None) != (self.task in _registry.OWN_DATA):
            fail(
                "data",
                f"a file with task {' or '.join(map(repr, _registry.OWN_DATA))}, "
                f"and None with the others (the task is {self.task!r})",
                self.data,
            )
        if self.column is not None and self.task != "series":
            fail("column", "None but for the series task", self.column)
        if self.task == "adding" and self.seq_len is not None and self.seq_len < 2:
            fail("seq_len", "at least 2 for the adding problem", self.seq_len)

    def resolved(self) -> "RunConfig":
        """The config with every None replaced by the task's default."""
        defaults = {
            "hidden_size": 64,
            "seq_len": 100,
            "steps": 1000,
            "learning_rate": 3e-3,
            "eval_every": 200,
        }
        defaults.update(_registry.TASKS[self.task][1])
        changes = {}
        for field in dataclasses.fields(self):
            if getattr(self, field.name) is None and field.name in defaults:
                changes[field.name] = defaults[field.name]
        if self.task == "digits":  # 8 rows, then the blank steps
            changes["seq_len"] = 8 + self.blanks
        if self.data is not None:  # where eval and generate find it again
            changes["data"] = os.path.abspath(self.data)
        config = dataclasses.replace(self, **changes)
        return dataclasses.replace(
            config, eval_every=min(config.eval_every, config.steps)
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"RunConfig: unknown fields {unknown}.")
        return cls(**data)


def example(task: str) -> RunConfig:
    """The default config of `task` (with a placeholder file for the tasks
    that read one)."""
    return RunConfig(task=task, data="FILE" if task in _registry.OWN_DATA else None)


def shown_default(name: str) -> str:
    """A RunConfig field's default as `--help` shows it: the value most tasks
    resolve it to, then each task that differs ("200; chars 250"). It is read
    from RunConfig and the task table, so the help cannot drift from them."""
    values = {task: getattr(example(task).resolved(), name) for task in TASKS}
    common = collections.Counter(values.values()).most_common(1)[0][0]
    text = "none" if common is None else str(common)
    others = [f"{task} {value}" for task, value in values.items() if value != common]
    return text + ("; " + ", ".join(others) if others else "")
