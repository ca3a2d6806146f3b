"""No leaks under load: `benchmarks/bench_leaks.py`, shortened, in a fresh
process. A training step of an LSTM on the CPU kernels and a `stream_layer`
step of a GRU, 3,000 times each: the resident memory after the warm-up
grows by less than 10% (the benchmark's 20,000 steps are in
benchmarks/README.md), and the thread count does not change (the kernels'
threads are not created anew per call)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxrnn.fast import _cpu

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc"),
    pytest.mark.skipif(not _cpu.status().available, reason="no kernels here"),
]

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "bench_leaks.py"


def test_memory_and_threads_stay_flat_over_thousands_of_steps():
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--steps",
            "3000",
            "--every",
            "250",
            "--warmup",
            "500",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(l) for l in done.stdout.splitlines() if l.startswith("{")]
    assert [line["loop"] for line in lines] == ["train", "stream"]
    for line in lines:
        assert line["rss_growth"] < 0.10, (line["loop"], line["samples"])
        assert len(line["threads"]) == 1, (line["loop"], line["threads"])
