"""The problem grids, declared as data: the same on every device.

A problem is one recurrent layer (one direction, input size D = H unless
stated) on a batch [B, T, D] in float32, timed as a forward pass and as a
training step: forward, an MSE loss on every output, full BPTT, and an Adam
update after clip_by_global_norm(1.0).
"""

from __future__ import annotations

from typing import NamedTuple

from jaxrnn.cells import _registry


class Problem(NamedTuple):
    """One size to time.

    Attributes:
        cell: "lstm", "gru" or "rnn" (tanh).
        batch: B.
        seq_len: T.
        hidden: H.
        input_size: D (None means D = H).
        measures: what to time: ("forward", "train_step") or a subset.
        source: where the size comes from.
        num_layers: stacked layers (the harness times stacks on the
            implementations that have them: jaxrnn's and PyTorch's).
        bidirectional: both directions in every layer.
    """

    cell: str
    batch: int
    seq_len: int
    hidden: int
    input_size: int | None = None
    measures: tuple[str, ...] = ("forward", "train_step")
    source: str = ""
    num_layers: int = 1
    bidirectional: bool = False

    @property
    def features(self) -> int:
        return self.hidden if self.input_size is None else self.input_size

    @property
    def gates(self) -> int:
        return _registry.CELLS[self.cell].gates

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def stacked(self) -> bool:
        """More than one layer or direction."""
        return self.num_layers > 1 or self.bidirectional

    def flops(self, measure: str) -> float:
        """Matmul FLOPs: 2 B T G H (D + H) forward per layer and direction
        (a layer above the first reads the directions' outputs, D = 2H or
        H), three times that for a training step (the backward pass has
        twice the forward's matmuls)."""
        step = 2 * self.batch * self.seq_len * self.gates * self.hidden
        inputs = self.features + (self.num_layers - 1) * self.directions * self.hidden
        forward = step * self.directions * (inputs + self.num_layers * self.hidden)
        return forward * (3 if measure == "train_step" else 1)

    def label(self) -> str:
        d = "" if self.input_size is None else f", D={self.input_size}"
        stack = f", {self.num_layers} layers" if self.num_layers > 1 else ""
        stack += ", bidirectional" if self.bidirectional else ""
        return f"{self.cell} B={self.batch} T={self.seq_len} H={self.hidden}{d}{stack}"


_ISSUE = "the CPU sizes of the fast-paths issue"
_DEEPBENCH = "DeepBench rnn_problems.h (training)"
_SWEEP = "a sweep beyond the cpu grid"

GRIDS: dict[str, list[Problem]] = {
    "cpu": [
        Problem("lstm", 32, 100, 128, source=_ISSUE),
        Problem("lstm", 64, 100, 256, source=_ISSUE),
        Problem("lstm", 16, 200, 512, source=_ISSUE),
        Problem("lstm", 1, 1000, 64, source=_ISSUE),
        Problem("lstm", 128, 50, 64, source=_ISSUE),
        Problem("gru", 32, 100, 128, source=_ISSUE),
        Problem("rnn", 32, 100, 128, source=_ISSUE),
    ],
    # Baidu DeepBench's training set; (H, B, T) there, with D = H.
    "gpu": [
        Problem("lstm", 64, 25, 512, source=_DEEPBENCH),
        Problem("lstm", 128, 25, 1024, source=_DEEPBENCH),
        Problem("lstm", 32, 25, 2048, source=_DEEPBENCH),
        Problem("lstm", 128, 25, 4096, source=_DEEPBENCH),
        Problem("lstm", 16, 150, 256, source=_DEEPBENCH),
        Problem("lstm", 8, 50, 1536, source=_DEEPBENCH),
        Problem("gru", 32, 1500, 1024, source=_DEEPBENCH),
        Problem("gru", 32, 1500, 2816, source=_DEEPBENCH),
        Problem("rnn", 16, 50, 1760, source=_DEEPBENCH),
        Problem(
            "lstm",
            1,
            25,
            1024,
            measures=("forward",),
            source="DeepBench (inference)",
        ),
        Problem("lstm", 16, 10000, 256, source="a long sequence"),
    ],
    # Sizes the cpu grid does not hold: LSTM and GRU over B x H at T = 100,
    # 2-layer bidirectional stacks, a long sequence and a wide Elman RNN;
    # the training step only.
    "sweep": [
        *(
            Problem(cell, b, 100, h, measures=("train_step",), source=_SWEEP)
            for cell in ("lstm", "gru")
            for h in (64, 128, 256, 512)
            for b in (8, 16, 32, 64, 128)
        ),
        *(
            Problem(
                cell,
                b,
                100,
                h,
                measures=("train_step",),
                source="2-layer bidirectional",
                num_layers=2,
                bidirectional=True,
            )
            for cell in ("lstm", "gru")
            for b, h in ((32, 128), (32, 256), (16, 512))
        ),
        Problem("lstm", 8, 1000, 128, measures=("train_step",), source="a long T"),
        Problem("rnn", 32, 100, 512, measures=("train_step",), source="a wide RNN"),
    ],
    "smoke": [
        Problem("lstm", 32, 100, 128, source=_ISSUE),
        Problem("gru", 8, 50, 64, source="smoke"),
        Problem("rnn", 8, 50, 64, source="smoke"),
    ],
}
