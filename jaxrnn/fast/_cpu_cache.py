"""The kernels' cache: building a library into it, and checking it.

A library is compiled into a temporary file in its folder and renamed into
place (`os.replace` is atomic), so that a process never loads half a file;
its SHA-256 is then written beside it. Before a process loads a cached
library it checks the digest: a library that does not match (truncated by
a full disk, zero-filled, overwritten by a copy or a backup tool, or with
no digest) is never mapped, but rebuilt the same way; where that fails the
kernels are off for the process, with one warning that names the file.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import warnings
from pathlib import Path

import jax

CSRC = Path(__file__).with_name("csrc")
# The translation units; the headers they include are hashed with them.
UNITS = ("recurrence.cc", "runtime.cc", "info.cc")
LIBRARY = "librecurrence.so"


def _compile(cxx: str, flags: list[str], unit: str, out: Path) -> list[str]:
    return [
        cxx,
        "-O3",
        "-std=c++17",
        "-c",
        "-fPIC",
        "-pthread",
        "-fno-math-errno",
        *flags,
        "-isystem",
        jax.ffi.include_dir(),
        str(CSRC / unit),
        "-o",
        str(out),
    ]


def run_build(cxx: str, flags: list[str], out: Path) -> str:
    """Compile the units at once (one process each) and link them into
    `out`; return the compiler's message on a failure ("" on success)."""
    objects = [out.with_name(f"{out.stem}.{Path(u).stem}.o") for u in UNITS]
    commands = [_compile(cxx, flags, u, o) for u, o in zip(UNITS, objects)]
    commands.append([cxx, "-shared", "-pthread", *map(str, objects), "-o", str(out)])
    try:
        compiles = [
            subprocess.Popen(
                c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            for c in commands[:-1]
        ]
        outputs = [p.communicate(timeout=600)[0] for p in compiles]
        for command, process, output in zip(commands, compiles, outputs):
            if process.returncode:
                return f"$ {' '.join(command)}\n{output.strip()[-2000:]}"
        done = subprocess.run(commands[-1], capture_output=True, text=True, timeout=600)
        if done.returncode:
            return f"$ {' '.join(commands[-1])}\n{(done.stderr or done.stdout)[-2000:]}"
        return ""
    except (OSError, subprocess.SubprocessError) as e:
        return f"$ {' '.join(commands[0])}\n{e}"
    finally:
        for o in objects:
            o.unlink(missing_ok=True)


def _digest(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    """Where the digest of the library at `path` is kept."""
    return path.with_name(path.name + ".sha256")


def damage(path: Path) -> str:
    """What is wrong with the cached library at `path` ("" when its bytes
    match the digest written beside it when it was built).

    A library is loaded only when this is "": a truncated, zero-filled or
    overwritten file (a full disk, a copied home, a backup tool) would
    otherwise crash the process that maps it.
    """
    try:
        expected = _sidecar(path).read_text().split()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        return f"its digest {_sidecar(path).name} is missing or unreadable"
    try:
        actual = _digest(path)
    except OSError as e:
        return f"it cannot be read: {e}"
    if actual != expected:
        return "its bytes do not match its digest (truncated or overwritten)"
    return ""


def _replace_text(path: Path, text: str) -> None:
    """Write `path` whole or not at all: a temporary file, then a rename."""
    fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def obtain(folder: Path, cxx: str, flags: list[str]) -> tuple[str, str, str]:
    """(library path, reason, note) for the cache folder of one build: the
    library there where it is intact, else one built (again) with `cxx` and
    `flags`. The path is "" when there is none, the reason then says why;
    the note says what was repaired ("" when nothing was)."""
    path = folder / LIBRARY
    damaged = damage(path) if path.exists() else ""
    if path.exists() and not damaged:
        return str(path), "", ""

    def failed(reason: str, detail: str) -> tuple[str, str, str]:
        if damaged:
            reason = f"the cached library {path} is damaged ({damaged}); {reason}"
        warnings.warn(
            f"jaxrnn: {reason}; impl='auto' runs the fused XLA path.{detail}",
            RuntimeWarning,
            stacklevel=5,
        )
        return "", reason, ""

    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
        os.close(fd)
    except OSError as e:
        if not damaged:
            return "", f"cannot write the cache {folder}: {e}", ""
        return failed(f"it cannot be rebuilt in {folder}: {e}", "")
    message = run_build(cxx, flags, Path(tmp))
    if message:
        os.unlink(tmp)
        return failed("building the CPU kernels failed", f"\n{message}")
    try:
        digest = _digest(Path(tmp))
        os.replace(tmp, path)
        _replace_text(_sidecar(path), digest + "\n")
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        return failed(f"the built library cannot be stored in {folder}: {e}", "")
    return str(path), "", (f"rebuilt {path}: {damaged}" if damaged else "")
