"""The progress bar that `jaxrnn train` and `compare` pass to `fit`."""

from __future__ import annotations

import sys
import time


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, else a line per 10%."""

    def __init__(self, label: str, enabled: bool = True):
        self.label, self.enabled = label, enabled
        self.tty = sys.stderr.isatty()
        self.first: int | None = None  # the step and time of the first call
        self.start = 0.0
        self.last_decile = -1

    def __call__(self, done: int, total: int, metrics: dict) -> None:
        """`fit` calls this after each chunk. The rate counts the steps since
        the first call, over the time since it, so that neither compilation
        nor the steps of a resumed run's earlier sessions inflate it; the
        first call shows no rate."""
        now = time.perf_counter()
        if self.first is None:
            self.first, self.start = done, now
        if not self.enabled:
            return
        elapsed = now - self.start
        rate = (done - self.first) / elapsed if elapsed > 0 else 0.0
        filled = int(24 * done / total)
        bar = "#" * filled + "-" * (24 - filled)
        values = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        line = f"{self.label:>5} [{bar}] {done}/{total} {values} " + (
            f"{rate:.0f} it/s eta {(total - done) / rate:.0f}s" if rate > 0 else ""
        )
        if self.tty:
            sys.stderr.write("\r" + line.ljust(110))
            if done == total:
                sys.stderr.write("\n")
        else:
            decile = 10 * done // total
            if decile != self.last_decile:
                self.last_decile = decile
                sys.stderr.write(line + "\n")
        sys.stderr.flush()
