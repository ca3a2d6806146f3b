"""Building and loading the compiled CPU kernels (impl="cpu").

The first time a process asks for the kernels, the sources in `csrc/` are
compiled with the system's C++ compiler (`$CXX`, else `c++` or `g++`)
against the FFI headers that jaxlib ships, for this machine's vector
instructions (AVX-512, else AVX2 with FMA, else the baseline: SSE2 on
x86-64, NEON on aarch64), into a cache directory keyed by a hash of the
sources, the flags, the compiler and jax's version. A later process loads
the cached library. The flags are fixed, so a build is reproducible, and it
is written to a temporary name and renamed, so that two processes building
at once never load half a file; a cached library is checked against its
digest before it is loaded, and rebuilt where damaged (`_cpu_cache`). If
there is no compiler the kernels are unavailable and "auto" runs the fused
XLA path; a failed build warns once, with the compiler's message, and does
the same. `jaxrnn info` says which,
and for what CPU and with what blocking the kernels run.

Knobs (environment variables, read when the kernels are first used):

    JAXRNN_CPU_KERNELS=0   never build or use them
    JAXRNN_THREADS=N       threads per call at most (default: the CPUs this
                           process may run on, `os.sched_getaffinity`); a
                           call takes fewer when other processes keep its
                           threads waiting (see `docs/fast.md`)
    JAXRNN_CACHE=DIR       the cache (default: $XDG_CACHE_HOME/jaxrnn, else
                           ~/.cache/jaxrnn)
    JAXRNN_CPU_BF16=NAME   matmul_dtype=bfloat16 by the bfloat16 products
                           ("native", AVX512-BF16) or by float32 products of
                           rounded operands ("round"); default: the faster
                           in a probe when the kernels load
    JAXRNN_CPU_ISA=NAME    compile for avx512bf16, avx512, avx2, sse2
                           (x86-64) or generic instead of this machine's
                           best (one that it can run)
    JAXRNN_KEEP_MEMORY=0   leave glibc's malloc as it is (by default, when
                           the kernels load, it is asked to keep freed
                           memory for reuse: see `keep_memory`)
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import NamedTuple

import jax

from jaxrnn.fast import _cpu_cache
from jaxrnn.fast._cpu_cache import CSRC

_FORWARD, _BACKWARD = "jaxrnn_forward", "jaxrnn_backward"


class Status(NamedTuple):
    """Whether the kernels can run here, and with what."""

    available: bool
    engine: str  # the vector instructions compiled for ("avx512", "avx2", ...)
    threads: int  # threads per call at most
    path: str  # the library, or "" when unavailable
    reason: str  # why they are unavailable ("" when available)
    cpu: str = ""  # the CPU's model name
    blocking: str = ""  # the caches read at load and the blocking they give
    bf16: bool = False  # whether the build has bfloat16 products (AVX512-BF16)
    # float32 products' time over bfloat16 products' (0: none), probed at load
    bf16_speedup: float = 0.0
    note: str = ""  # what was repaired on the way ("" when nothing was)

    def describe(self) -> str:
        """One line for `jaxrnn info`."""
        if self.available:
            bf16 = f"matmul_dtype=bfloat16 {_bf16_path(self)}"
            repaired = f" ({self.note})" if self.note else ""
            return (
                f"compiled ({self.engine}, {self.threads} threads) for "
                f"{self.cpu or 'this CPU'}; {self.blocking}; {bf16}: {self.path}"
                f"{repaired}"
            )
        return f"not available ({self.reason}); impl='auto' runs the fused XLA path"


# The bfloat16 products run the policy where they beat the float32 products
# of rounded operands by this much in the load-time probe.
BF16_MARGIN = 1.05


def bf16_native(state: Status) -> tuple[bool, str]:
    """Whether matmul_dtype=bfloat16 runs the bfloat16 products (else the
    float32 products of rounded operands), and why: $JAXRNN_CPU_BF16
    ("native" or "round") where set, else the load-time probe.

    Raises:
        ValueError: JAXRNN_CPU_BF16 is not "native", "round" or empty, or
            is "native" where the build has no bfloat16 products.
    """
    forced = os.environ.get("JAXRNN_CPU_BF16", "").strip()
    if forced not in ("", "native", "round"):
        raise ValueError(f"JAXRNN_CPU_BF16 must be 'native' or 'round', got {forced!r}")
    if forced == "native" and not state.bf16:
        raise ValueError(
            "JAXRNN_CPU_BF16=native, but the kernels' build "
            f"({state.engine}) has no bfloat16 products (AVX512-BF16)"
        )
    if forced:
        return forced == "native", "JAXRNN_CPU_BF16"
    if not state.bf16:
        return False, "no AVX512-BF16"
    faster = state.bf16_speedup > BF16_MARGIN
    return faster, f"probe: float32 / bfloat16 products {state.bf16_speedup:.2f}x"


def _bf16_path(state: Status) -> str:
    try:
        native, why = bf16_native(state)
    except ValueError as e:
        return f"refused ({e})"
    what = "bfloat16 products" if native else "float32 products of rounded operands"
    return f"runs {what} ({why})"


def threads() -> int:
    """Threads per kernel call at most: $JAXRNN_THREADS, else this process's
    CPUs.

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
    # AVX-512 with AVX512-BF16's bfloat16 products (gemm_bf16.h), for the
    # mixed-precision policy; the float32 code is that of "avx512".
    "avx512bf16": [
        "-mavx512f",
        "-mavx512bw",
        "-mavx512vl",
        "-mavx512bf16",
        "-mavx2",
        "-mfma",
    ],
    "avx512": ["-mavx512f", "-mavx2", "-mfma"],
    "avx2": ["-mavx2", "-mfma"],
    "sse2": [],
    "neon": [],
    "generic": [],
}


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo ({} where there is none)."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_model() -> str:
    """The CPU's model name, as the OS reports it."""
    info = _cpuinfo()
    return info.get("model name") or platform.processor() or platform.machine()


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
    flags = set(_cpuinfo().get("flags", "").split())
    if {"avx512f", "avx512bw", "avx512vl", "avx512_bf16", "avx2", "fma"} <= flags:
        return "avx512bf16", _FLAGS["avx512bf16"]
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


def _sources() -> list[Path]:
    """Every file of the kernels, in a fixed order (for the cache's key)."""
    return sorted(p for p in CSRC.iterdir() if p.suffix in (".cc", ".h"))


def _build() -> tuple[str, str, str, str]:
    """(library path, engine, reason, note): the path is "" when there is
    none, the reason then says why; the note says what was repaired
    (`_cpu_cache.obtain`)."""
    engine, flags = _isa()
    if os.environ.get("JAXRNN_CPU_KERNELS", "").strip() == "0":
        return "", engine, "disabled by JAXRNN_CPU_KERNELS=0", ""
    cxx = _compiler()
    if cxx is None:
        return "", engine, "no C++ compiler found (set CXX, or install g++)", ""
    try:
        version = subprocess.run(
            [cxx, "--version"], capture_output=True, text=True, timeout=60
        ).stdout.splitlines()[:1]
    except (OSError, subprocess.SubprocessError) as e:
        return "", engine, f"the compiler {cxx} does not run: {e}", ""
    text = [f"{p.name}\n{p.read_text()}" for p in _sources()]
    key = hashlib.sha256(
        "\n".join([*text, engine, " ".join(flags), *version, jax.__version__]).encode()
    ).hexdigest()[:16]
    path, reason, note = _cpu_cache.obtain(_cache() / "kernels" / key, cxx, flags)
    return path, engine, reason, note


_LIBRARY: list = []  # the loaded library, once status() has loaded it


def _ids(text: bytes) -> dict[str, int]:
    """{"rnn": 0, ...} from the library's "rnn=0 lstm=1 ..."."""
    return {k: int(v) for k, v in (p.split("=") for p in text.decode().split())}


def _blocking(lib) -> str:
    """The caches the library read at load, and the blocking they give."""
    l1, l2 = lib.jaxrnn_cache_bytes(1), lib.jaxrnn_cache_bytes(2)
    slices = ", ".join(
        f"{lib.jaxrnn_rows_per_block(nv)}x{nv} blocks in K slices of "
        f"{lib.jaxrnn_k_slice(nv)}"
        for nv in (2, 4)
    )
    return (
        f"L1d {l1 // 1024} KiB, L2 {l2 // 1024} KiB per core: rows x vectors "
        f"{slices}; steps in chunks of about L2/4"
    )


@functools.cache
def status() -> Status:
    """Build (or load) the kernels once per process, and say how it went."""
    path, engine, reason, note = _build()
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
        for name in ("jaxrnn_isa", "jaxrnn_cells", "jaxrnn_activations"):
            getattr(lib, name).restype = ctypes.c_char_p
        lib.jaxrnn_cache_bytes.restype = ctypes.c_int64
        lib.jaxrnn_k_slice.restype = ctypes.c_int64
        lib.jaxrnn_contended_calls.restype = ctypes.c_int64
        lib.jaxrnn_gemm_seconds.restype = ctypes.c_double
        lib.jaxrnn_gemm_seconds.argtypes = [ctypes.c_int64] * 5
        lib.jaxrnn_matmul.argtypes = [
            *[ctypes.c_int64] * 3,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int64,
        ]
        engine = lib.jaxrnn_isa().decode()
        bf16 = bool(lib.jaxrnn_bf16())
        lib.jaxrnn_bf16_speedup.restype = ctypes.c_double
        speedup = lib.jaxrnn_bf16_speedup()
        kept = keep_memory(lib)
        CELLS.update(_ids(lib.jaxrnn_cells()))
        ACTIVATIONS.update(_ids(lib.jaxrnn_activations()))
        blocking = _blocking(lib)
        _LIBRARY.append(lib)
    except (OSError, AttributeError) as e:
        warnings.warn(
            f"jaxrnn: loading the CPU kernels {path} failed: {e}", RuntimeWarning
        )
        return Status(False, engine, count, "", f"loading failed: {e}")
    if kept:
        blocking += "; malloc keeps freed memory"
    return Status(
        True, engine, count, path, "", cpu_model(), blocking, bf16, speedup, note
    )


def keep_memory(lib) -> bool:
    """Ask glibc's malloc to keep freed memory for reuse (unless
    JAXRNN_KEEP_MEMORY=0); True where it took effect.

    XLA:CPU allocates a compiled call's buffers afresh each time it runs, and
    glibc gives large freed blocks back to the system at once, so that every
    training step first-touches its arrays again, at a page fault per 4 KiB:
    about 20,000 faults per step of a 64 x 100 x 256 LSTM, 25 to 35% of the
    step's time on a 2-core machine (`benchmarks/README.md`). This keeps
    blocks up to 32 MiB in malloc's heaps, and up to 1 GiB free at a heap's
    top, for the process's life: its resident memory stays near its peak.
    It is process-wide, which is why it can be switched off.
    """
    if os.environ.get("JAXRNN_KEEP_MEMORY", "").strip() == "0":
        return False
    return bool(lib.jaxrnn_keep_memory())


# The kernels' ids of the cells and the Elman activations, read from the
# library when it loads (its enums are the one definition).
CELLS: dict[str, int] = {}
ACTIVATIONS: dict[str, int] = {}


def library():
    """The loaded library (after `status()` reported it available)."""
    return _LIBRARY[0]


def contention() -> tuple[int, int]:
    """(the most threads a call may take now, calls that found their threads
    kept waiting by other processes) in this process."""
    lib = library()
    return lib.jaxrnn_thread_cap(), lib.jaxrnn_contended_calls()
