"""The kernels' cache heals itself: a damaged library is never loaded.

A cached library whose bytes do not match the digest written beside it
(truncated, zero-filled, overwritten, or with no digest) is rebuilt into a
fresh temporary file and renamed over it; where the rebuild fails, the
process runs the fused XLA path, with one warning that names the file, and
`jaxrnn info` says why. Each case runs in a fresh process on a copy of this
machine's cache.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jaxrnn.fast import _cpu, _cpu_build, _cpu_cache

pytestmark = pytest.mark.skipif(
    not _cpu.status().available, reason="no kernels here to damage"
)

_RUN = """
import json, warnings
import jax, jax.numpy as jnp, jaxrnn
from jaxrnn.fast import _cpu, _cpu_cache
{patch}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    p = jaxrnn.init_layer(jax.random.key(0), "lstm", 4, 8)
    y = jaxrnn.apply_layer(p, jnp.ones((2, 5, 4)))[0]
    s = _cpu.status()
print(json.dumps({{
    "shape": list(y.shape), "available": s.available, "reason": s.reason,
    "note": s.note, "chosen": jaxrnn.layer.choose("auto", "lstm"),
    "warnings": [str(w.message) for w in caught if w.category is RuntimeWarning],
}}))
"""

# A compiler that says it is this machine's (so that the cache's key is the
# same) but fails every build: a rebuild that fails, without the minutes of
# a real one.
_FAILING_CXX = """#!/bin/sh
if [ "$1" = --version ]; then exec "{cxx}" --version; fi
exit 1
"""


@pytest.fixture
def cache(tmp_path):
    """A copy of this machine's built library and its digest in a cache of
    its own: (the cache, the library in it)."""
    built = Path(_cpu.status().path)
    folder = tmp_path / "cache" / "kernels" / built.parent.name
    folder.mkdir(parents=True)
    library = folder / built.name
    shutil.copyfile(built, library)
    digest = hashlib.sha256(library.read_bytes()).hexdigest()
    (folder / (built.name + ".sha256")).write_text(digest + "\n")
    return tmp_path / "cache", library


def _run(cache_dir, *, cxx=None, patch="", timeout=600):
    env = dict(os.environ, JAXRNN_CACHE=str(cache_dir))
    if cxx:
        env["CXX"] = cxx
    done = subprocess.run(
        [sys.executable, "-c", _RUN.format(patch=patch)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _failing_cxx(tmp_path):
    script = tmp_path / "cxx"
    script.write_text(_FAILING_CXX.format(cxx=_cpu_build._compiler()))
    script.chmod(0o755)
    return str(script)


def _damage(library, how):
    data = library.read_bytes()
    if how == "truncated":
        library.write_bytes(data[:1000])
    elif how == "zero-filled":
        library.write_bytes(bytes(len(data)))
    elif how == "garbage":
        library.write_bytes(os.urandom(len(data)))
    elif how == "no digest":
        library.with_name(library.name + ".sha256").unlink()


def test_an_intact_copy_loads_as_it_is(cache):
    cache_dir, library = cache
    before = library.stat().st_mtime_ns
    out = _run(cache_dir)
    assert out["available"] and out["chosen"] == "cpu" and out["note"] == ""
    assert out["warnings"] == [] and out["shape"] == [2, 5, 8]
    assert library.stat().st_mtime_ns == before


@pytest.mark.parametrize("how", ["truncated", "zero-filled", "garbage", "no digest"])
def test_a_damaged_library_that_cannot_be_rebuilt_falls_back(cache, tmp_path, how):
    cache_dir, library = cache
    _damage(library, how)
    out = _run(cache_dir, cxx=_failing_cxx(tmp_path))
    assert out["shape"] == [2, 5, 8]  # the layer ran, on the fused path
    assert not out["available"] and out["chosen"] == "fused"
    assert f"the cached library {library} is damaged" in out["reason"]
    assert "building the CPU kernels failed" in out["reason"]
    assert len(out["warnings"]) == 1 and str(library) in out["warnings"][0]


def test_a_cache_that_cannot_be_written_falls_back(cache):
    """The folder refuses new files (as a read-only one does, for a user
    other than root): the damaged library is not loaded, and the warning
    names it."""
    cache_dir, library = cache
    _damage(library, "truncated")
    patch = (
        "import tempfile\n"
        "def refuse(*a, **k):\n"
        "    raise PermissionError(13, 'Permission denied')\n"
        "_cpu_cache.tempfile.mkstemp = refuse\n"
    )
    out = _run(cache_dir, patch=patch)
    assert not out["available"] and out["chosen"] == "fused"
    assert (
        "cannot be rebuilt in" in out["reason"] and "Permission denied" in out["reason"]
    )
    assert len(out["warnings"]) == 1 and str(library) in out["warnings"][0]


@pytest.mark.slow
def test_two_processes_that_find_it_damaged_both_end_with_a_good_library(cache):
    """Both rebuild at once, each into a file of its own renamed over the
    damaged one: both load a whole library, and it is intact after."""
    cache_dir, library = cache
    _damage(library, "truncated")
    env = dict(os.environ, JAXRNN_CACHE=str(cache_dir))
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", _RUN.format(patch="")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for run in runs:
        stdout, stderr = run.communicate(timeout=900)
        assert run.returncode == 0, stderr[-3000:]
        out = json.loads(stdout.strip().splitlines()[-1])
        assert out["available"] and out["chosen"] == "cpu", out
        assert out["note"].startswith(f"rebuilt {library}: its bytes do not match")
        assert out["warnings"] == []
    assert _cpu_cache.damage(library) == ""
    assert sorted(p.name for p in library.parent.iterdir()) == [
        library.name,
        library.name + ".sha256",
    ]
