"""PyTorch's nn.LSTM / GRU / RNN in the harness, with jaxrnn's weights."""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxrnn import interop


class TorchRunner:
    """A torch.nn.LSTM/GRU/RNN with the same weights, on the JAX device's
    platform (CUDA when JAX has a GPU), in `dtype`."""

    def __init__(self, layer: Any, xs: Any, targets: Any, dtype: str):
        import torch

        self._torch = torch
        self._device = "cuda" if torch.cuda.is_available() else "cpu"
        self._dtype = getattr(torch, dtype)
        self.module = interop.to_torch(layer, batch_first=True).to(
            self._device, self._dtype
        )

        def convert(a):
            return torch.tensor(np.asarray(a)).to(self._device, self._dtype)

        self._xs, self._targets = convert(xs), convert(targets)
        self._optimizer = torch.optim.Adam(self.module.parameters(), lr=1e-3)

    def outputs(self) -> np.ndarray:
        with self._torch.no_grad():
            ys = self.module(self._xs)[0]
        return ys.float().cpu().numpy().astype(np.float64)

    def prepare(self, measure: str) -> float:
        return 0.0  # eager: no compilation

    def _sync(self) -> None:
        if self._device == "cuda":
            self._torch.cuda.synchronize()

    def __call__(self, measure: str) -> None:
        torch = self._torch
        if measure == "forward":
            with torch.no_grad():
                self.module(self._xs)
        else:
            self._optimizer.zero_grad()
            ys = self.module(self._xs)[0]
            loss = torch.mean((ys.float() - self._targets.float()) ** 2)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.module.parameters(), 1.0)
            self._optimizer.step()
        self._sync()

    def memory(self, measure: str) -> int | None:
        if self._device != "cuda":
            return None
        torch = self._torch
        torch.cuda.reset_peak_memory_stats()
        self(measure)
        return int(torch.cuda.max_memory_allocated())


def torch_runner(dtype: str):
    """A builder of TorchRunners in `dtype`."""

    def build(layer, xs, targets):
        return TorchRunner(layer, xs, targets, dtype)

    return build
