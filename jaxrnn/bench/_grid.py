"""The problem grids, declared as data: the same on every device.

A problem is one recurrent layer (one direction, input size D = H unless
stated) on a batch [B, T, D] in float32, timed as a forward pass and as a
training step: forward, an MSE loss on every output, full BPTT, and an Adam
update after clip_by_global_norm(1.0).
"""

from __future__ import annotations

from typing import NamedTuple


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
    """

    cell: str
    batch: int
    seq_len: int
    hidden: int
    input_size: int | None = None
    measures: tuple[str, ...] = ("forward", "train_step")
    source: str = ""

    @property
    def features(self) -> int:
        return self.hidden if self.input_size is None else self.input_size

    @property
    def gates(self) -> int:
        return {"lstm": 4, "gru": 3, "rnn": 1}[self.cell]

    def flops(self, measure: str) -> float:
        """Matmul FLOPs: 2 B T G H (D + H) forward, three times that for a
        training step (the backward pass has twice the forward's matmuls)."""
        forward = 2 * self.batch * self.seq_len * self.gates * self.hidden
        forward *= self.features + self.hidden
        return forward * (3 if measure == "train_step" else 1)

    def label(self) -> str:
        d = "" if self.input_size is None else f", D={self.input_size}"
        return f"{self.cell} B={self.batch} T={self.seq_len} H={self.hidden}{d}"


_ISSUE = "the CPU sizes of the fast-paths issue"
_DEEPBENCH = "DeepBench rnn_problems.h (training)"

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
    "smoke": [
        Problem("lstm", 32, 100, 128, source=_ISSUE),
        Problem("gru", 8, 50, 64, source="smoke"),
        Problem("rnn", 8, 50, 64, source="smoke"),
    ],
}
