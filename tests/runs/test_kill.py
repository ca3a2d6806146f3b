"""Runs survive SIGKILL: a real `jaxrnn train` process, killed at 12
moments (at random times during training, in the middle of a checkpoint
write, in the middle of a metrics.jsonl append), is continued by `jaxrnn
train --resume` each time, and ends where an uninterrupted run ends: the
same checkpoint, the same validation curve, and no file left half-written.

The writes are caught in the middle by a wrapper around them in the child
process (this test's code, not the library's): it writes the temporary
checkpoint whole, or half of the metrics line, then marks a file and waits
for the kill."""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from jaxrnn.runs import _files

pytestmark = pytest.mark.slow

ARGS = [
    "--task", "adding", "--seq-len", "20", "--hidden-size", "16", "--steps", "300",
    "--eval-every", "20", "--chunk", "10", "--eval-size", "64", "--quiet",
]  # fmt: skip

_CHILD = """
import os, sys, time, pathlib
mode, nth = os.environ.get("KILL_AT", ""), int(os.environ.get("KILL_NTH", "1"))
mark, calls = pathlib.Path(os.environ["KILL_MARK"]), [0]

def hold(text):
    mark.write_text(text)
    time.sleep(600)  # until killed

if mode == "checkpoint":
    from jaxrnn.io import _files as io_files
    real = io_files.write_atomically
    def caught(path, write):
        if path.endswith("checkpoint.npz"):
            calls[0] += 1
            if calls[0] == nth:
                def whole_then_hold(f):
                    write(f)
                    f.flush()
                    hold("checkpoint")
                return real(path, whole_then_hold)
        return real(path, write)
    io_files.write_atomically = caught
elif mode == "metrics":
    from jaxrnn.runs import _files as run_files
    real = run_files.append_metrics
    def caught(run_dir, rows):
        calls[0] += 1
        if calls[0] != nth or not rows:
            return real(run_dir, rows)
        text = "".join(run_files._json(r) + "\\n" for r in rows)
        with open(os.path.join(run_dir, run_files.METRICS), "a") as f:
            f.write(text[: len(text) // 2])
            f.flush()
        hold("metrics")
    run_files.append_metrics = caught
from jaxrnn._cli import main
sys.exit(main(sys.argv[1:]))
"""


def _start(args, tmp_path, mode="", nth=1):
    mark = tmp_path / "mark"
    mark.unlink(missing_ok=True)
    env = dict(os.environ, KILL_AT=mode, KILL_NTH=str(nth), KILL_MARK=str(mark))
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, "train", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return child, mark


def _wait_for(condition, child, seconds=300):
    deadline = time.monotonic() + seconds
    while not condition():
        if child.poll() is not None:
            return False  # it ended first
        assert time.monotonic() < deadline, "the child never reached the moment"
        time.sleep(0.01)
    return True


def test_sigkill_at_random_moments_and_resume_to_the_end(tmp_path):
    run = tmp_path / "run"
    rng = random.Random(0)
    moments = ["time", "checkpoint", "metrics"] * 4
    rng.shuffle(moments)
    kills = []
    for number, moment in enumerate(moments):
        args = [*ARGS, "--out", str(run)] if number == 0 else ["--resume", str(run)]
        nth = rng.randint(1, 3)
        child, mark = _start(args, tmp_path, "" if moment == "time" else moment, nth)
        if moment == "time":  # once the run exists, at a random time after
            reached = _wait_for((run / _files.CONFIG).exists, child)
            time.sleep(rng.uniform(0.0, 4.0))
        else:
            reached = _wait_for(mark.exists, child)
        if not reached or child.poll() is not None:
            _, err = child.communicate()
            assert child.returncode == 0, err[-3000:]
            break  # the run ended before this kill
        os.kill(child.pid, signal.SIGKILL)
        child.communicate()  # reaps it and closes its pipe
        kills.append(moment if moment == "time" else mark.read_text())
    assert len(kills) >= 10, kills
    assert {"checkpoint", "metrics"} <= set(kills)
    final = subprocess.run(
        [sys.executable, "-m", "jaxrnn", "train", "--resume", str(run), "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert final.returncode == 0, final.stderr[-3000:]

    whole = tmp_path / "whole"
    done = subprocess.run(
        [sys.executable, "-m", "jaxrnn", "train", *ARGS, "--out", str(whole)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name in (_files.RESULT, _files.CHECKPOINT, _files.METRICS, _files.CONFIG):
        assert (run / name).exists(), name
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]
    with np.load(run / _files.CHECKPOINT) as a, np.load(whole / _files.CHECKPOINT) as b:
        assert a.files == b.files
        for name in a.files:
            if name != "manifest.json":  # its metadata holds the clock
                np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    valid = lambda d: [  # noqa: E731
        (r["step"], r["loss"])
        for r in _files.read_metrics(str(d))
        if r["split"] == "valid"
    ]
    assert valid(run) == valid(whole)
    assert [r["step"] for r in _files.read_metrics(str(run))] == [
        r["step"] for r in _files.read_metrics(str(whole))
    ]
