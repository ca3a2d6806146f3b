"""The compiled CPU kernels (impl="cpu"): built on first use, called through
`jax.ffi`.

`csrc/recurrence.cc` runs the time loop of one direction of one layer, all
T steps in one call, forward and the reverse recurrence of the VJP, for the
Elman RNN (tanh, sigmoid, relu), the LSTM and the GRU. Its hidden units are
split over persistent threads that meet at one barrier per step, and its
recurrent matmul is a register-blocked microkernel with the gate arithmetic
fused into it (the file's header says how). The driver (`_vjp`) keeps the
input projection and the weight-gradient matmuls in XLA.

The build. The first time a process asks for the kernels, the source is
compiled with the system's C++ compiler (`$CXX`, else `c++` or `g++`)
against the FFI headers that jaxlib ships, for this machine's vector
instructions (AVX-512, else AVX2 with FMA, else the baseline: SSE2 on
x86-64, NEON on aarch64), into a cache directory keyed by a hash of the
source, the flags, the compiler and jax's version. A later process loads
the cached library. The flags are fixed, so a build is reproducible, and it
is written to a temporary name and renamed, so that two processes building
at once never load half a file. If there is no compiler the kernels are
unavailable and "auto" runs the fused XLA path; a failed build warns once,
with the compiler's message, and does the same. `jaxrnn info` says which.

Knobs (environment variables, read when the kernels are first used):

    JAXRNN_CPU_KERNELS=0   never build or use them
    JAXRNN_THREADS=N       threads per call (default: the CPUs this process
                           may run on, `os.sched_getaffinity`)
    JAXRNN_CACHE=DIR       the cache (default: $XDG_CACHE_HOME/jaxrnn, else
                           ~/.cache/jaxrnn)
    JAXRNN_CPU_ISA=NAME    compile for avx512, avx2, sse2 (x86-64) or
                           generic instead of this machine's best
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

SOURCE = Path(__file__).with_name("csrc") / "recurrence.cc"
CELLS = {"rnn": 0, "lstm": 1, "gru": 2}
ACTIVATIONS = {"tanh": 0, "sigmoid": 1, "relu": 2}
_FORWARD, _BACKWARD = "jaxrnn_forward", "jaxrnn_backward"


class Status(NamedTuple):
    """Whether the kernels can run here, and with what."""

    available: bool
    engine: str  # the vector instructions compiled for ("avx512", "avx2", ...)
    threads: int  # threads per call
    path: str  # the library, or "" when unavailable
    reason: str  # why they are unavailable ("" when available)

    def describe(self) -> str:
        """One line for `jaxrnn info`."""
        if self.available:
            return f"compiled ({self.engine}, {self.threads} threads): {self.path}"
        return f"not available ({self.reason}); impl='auto' runs the fused XLA path"


def threads() -> int:
    """Threads per kernel call: $JAXRNN_THREADS, else this process's CPUs.

    Raises:
        ValueError: JAXRNN_THREADS is set but not a positive integer.
    """
    text = os.environ.get("JAXRNN_THREADS", "").strip()
    if text:
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"JAXRNN_THREADS must be a positive integer, got {text!r}")
        return int(text)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


_FLAGS = {
    "avx512": ["-mavx512f", "-mavx2", "-mfma"],
    "avx2": ["-mavx2", "-mfma"],
    "sse2": [],
    "neon": [],
    "generic": [],
}


def _isa() -> tuple[str, list[str]]:
    """The vector instructions to compile for, and their flags: this
    machine's best, or $JAXRNN_CPU_ISA (one of _FLAGS that it can run).

    Raises:
        ValueError: JAXRNN_CPU_ISA names no known instruction set.
    """
    forced = os.environ.get("JAXRNN_CPU_ISA", "").strip()
    if forced:
        if forced not in _FLAGS:
            raise ValueError(
                f"JAXRNN_CPU_ISA must be one of {sorted(_FLAGS)}, got {forced!r}"
            )
        return forced, _FLAGS[forced]
    machine = platform.machine().lower()
    if machine in ("aarch64", "arm64"):
        return "neon", _FLAGS["neon"]
    if machine not in ("x86_64", "amd64"):
        return "generic", _FLAGS["generic"]
    try:
        flags = set()
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        flags = set()
    if {"avx512f", "avx2", "fma"} <= flags:
        return "avx512", _FLAGS["avx512"]
    if {"avx2", "fma"} <= flags:
        return "avx2", _FLAGS["avx2"]
    return "sse2", _FLAGS["sse2"]


def _compiler() -> str | None:
    for name in (os.environ.get("CXX", ""), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cache() -> Path:
    if os.environ.get("JAXRNN_CACHE"):
        return Path(os.environ["JAXRNN_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jaxrnn"


def _command(cxx: str, flags: list[str], out: Path) -> list[str]:
    include = jax.ffi.include_dir()
    return [
        cxx,
        "-O3",
        "-std=c++17",
        "-shared",
        "-fPIC",
        "-pthread",
        "-fno-math-errno",
        *flags,
        "-isystem",
        include,
        str(SOURCE),
        "-o",
        str(out),
    ]


def _build() -> tuple[str, str, str]:
    """(library path, engine, reason): the path is "" when there is none."""
    engine, flags = _isa()
    if os.environ.get("JAXRNN_CPU_KERNELS", "").strip() == "0":
        return "", engine, "disabled by JAXRNN_CPU_KERNELS=0"
    cxx = _compiler()
    if cxx is None:
        return "", engine, "no C++ compiler found (set CXX, or install g++)"
    try:
        version = subprocess.run(
            [cxx, "--version"], capture_output=True, text=True, timeout=60
        ).stdout.splitlines()[:1]
    except (OSError, subprocess.SubprocessError) as e:
        return "", engine, f"the compiler {cxx} does not run: {e}"
    key = hashlib.sha256(
        "\n".join(
            [SOURCE.read_text(), engine, " ".join(flags), *version, jax.__version__]
        ).encode()
    ).hexdigest()[:16]
    folder = _cache() / "kernels" / key
    path = folder / "librecurrence.so"
    if path.exists():
        return str(path), engine, ""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
        os.close(fd)
    except OSError as e:
        return "", engine, f"cannot write the cache {folder}: {e}"
    command = _command(cxx, flags, Path(tmp))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as e:
        done = None
        message = str(e)
    if done is None or done.returncode != 0:
        os.unlink(tmp)
        if done is not None:
            message = (done.stderr or done.stdout).strip()[-2000:]
        warnings.warn(
            "jaxrnn: building the CPU kernels failed; impl='auto' runs the fused "
            f"XLA path.\n$ {' '.join(command)}\n{message}",
            RuntimeWarning,
            stacklevel=3,
        )
        return "", engine, "the build failed (see the warning)"
    os.replace(tmp, path)
    return str(path), engine, ""


_LIBRARY: list = []  # the loaded library, once status() has loaded it


@functools.cache
def status() -> Status:
    """Build (or load) the kernels once per process, and say how it went."""
    path, engine, reason = _build()
    count = threads()
    if not path:
        return Status(False, engine, count, "", reason)
    try:
        lib = ctypes.cdll.LoadLibrary(path)
        for target, symbol in (
            (_FORWARD, lib.JaxrnnForward),
            (_BACKWARD, lib.JaxrnnBackward),
        ):
            jax.ffi.register_ffi_target(
                target, jax.ffi.pycapsule(symbol), platform="cpu"
            )
        lib.jaxrnn_engine.restype = ctypes.c_char_p
        engine = lib.jaxrnn_engine().decode()
        lib.jaxrnn_gemm_seconds.restype = ctypes.c_double
        lib.jaxrnn_gemm_seconds.argtypes = [ctypes.c_int64] * 5
        _LIBRARY.append(lib)
    except (OSError, AttributeError) as e:
        warnings.warn(
            f"jaxrnn: loading the CPU kernels {path} failed: {e}", RuntimeWarning
        )
        return Status(False, engine, count, "", f"loading failed: {e}")
    return Status(True, engine, count, path, "")


def gemm_seconds(batch: int, hidden: int, gates: int, count: int, steps: int) -> float:
    """Seconds for `steps` of the kernels' recurrent matmul alone, h [batch,
    hidden] @ w_hh^T [hidden, gates * hidden], on `count` threads with a
    barrier per step (for benchmarks/bench_gemm_engines.py)."""
    _require()
    return _LIBRARY[0].jaxrnn_gemm_seconds(batch, hidden, gates, count, steps)


def available() -> bool:
    """Whether impl="cpu" can run in this process (builds on first call)."""
    return status().available


def _require() -> None:
    """Build and register the kernels, or say why they cannot run."""
    state = status()
    if not state.available:
        raise RuntimeError(f"the jaxrnn CPU kernels are not available: {state.reason}")


def _f32(a):
    return a.astype(jnp.float32)


def _empty():
    return jnp.zeros((0,), jnp.float32)


def _call(target, shapes, name, activation, *args, **attrs):
    """One kernel call: float32 results of `shapes`, the cell and its
    activation, and this process's thread count, as the FFI's attributes."""
    call = jax.ffi.ffi_call(
        target,
        [jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes],
        vmap_method="sequential",
    )
    return call(
        *args,
        cell=np.int64(CELLS[name]),
        activation=np.int64(ACTIVATIONS.get(activation, 0)),
        threads=np.int64(threads()),
        **attrs,
    )


def forward(name, activation, w_hh, b, b_hn, xw, carry, mask, save):
    """The forward recurrence over xw [T, B, G*H] (x @ w_ih^T, no bias).

    Returns (hs, cs, saved, h_T, c_T), float32: hs [T, B, H] is h after each
    step (held where the mask is off); cs the LSTM's c likewise and saved the
    gates (LSTM: i, f, g, o; GRU: r, z, n, h_n; [T, B, 4H]), both only when
    `save` (else empty); c_T is the LSTM's (else empty).
    """
    _require()
    seq_len, batch, _ = xw.shape
    hidden = w_hh.shape[1]
    lstm, gated = name == "lstm", name in ("lstm", "gru")
    f32 = jnp.float32
    shapes = [
        (seq_len, batch, hidden),
        (seq_len, batch, hidden) if lstm and save else (0,),
        (seq_len, batch, 4 * hidden) if gated and save else (0,),
        (batch, hidden),
        (batch, hidden) if lstm else (0,),
    ]
    gates = w_hh.shape[0]
    return _call(
        _FORWARD,
        shapes,
        name,
        activation,
        _f32(xw),
        _f32(w_hh),
        jnp.zeros((gates,), f32) if b is None else _f32(b),
        (jnp.zeros((hidden,), f32) if b_hn is None else _f32(b_hn))
        if name == "gru"
        else _empty(),
        _f32(carry[0]),
        _f32(carry[1]) if lstm else _empty(),
        jnp.ones((seq_len, batch), f32) if mask is None else _f32(mask),
        save=bool(save),
    )


def backward(name, activation, w_hh, saved, hs, cs, carry, dys, dcarry, mask):
    """The reverse recurrence: (dxw, dhw, dh0, dc0), float32.

    dxw [T, B, G*H] is the gradient at the input projection (the bias's
    too); dhw the GRU's at h @ w_hh^T (else empty); dc0 the LSTM's.
    Where the mask is off, the step's gradients are exactly zero and the
    carried gradient passes through.
    """
    _require()
    seq_len, batch, hidden = hs.shape
    gates = w_hh.shape[0]
    lstm = name == "lstm"
    f32 = jnp.float32
    shapes = [
        (seq_len, batch, gates),
        (seq_len, batch, gates) if name == "gru" else (0,),
        (batch, hidden),
        (batch, hidden) if lstm else (0,),
    ]
    return _call(
        _BACKWARD,
        shapes,
        name,
        activation,
        _f32(w_hh),
        _f32(saved),
        _f32(hs),
        _f32(cs) if lstm else _empty(),
        _f32(carry[0]),
        _f32(carry[1]) if lstm else _empty(),
        _f32(dys),
        _f32(dcarry[0]),
        _f32(dcarry[1]) if lstm else _empty(),
        jnp.ones((seq_len, batch), f32) if mask is None else _f32(mask),
    )


def usable(dtype: Any) -> str:
    """Why impl="cpu" cannot run for params of `dtype` here ("" when it can)."""
    if jnp.dtype(dtype) == jnp.float64:
        return "float64 (the kernels compute in float32; impl='fused' runs float64)"
    if jax.default_backend() != "cpu":
        return f"the {jax.default_backend()} backend (the kernels run on a CPU)"
    state = status()
    return "" if state.available else f"no compiled kernels: {state.reason}"
