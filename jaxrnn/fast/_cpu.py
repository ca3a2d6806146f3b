"""The compiled CPU kernels (impl="cpu"), called through `jax.ffi`.

Two calls run one direction of one layer over all T steps (`csrc/`; the
header of `csrc/recurrence.cc` says how):

    forward    xw = x @ w_ih^T + b and the recurrence: the outputs, the
               final carry, and what the backward pass keeps
    backward   the reverse recurrence and every gradient: dx, dw_ih,
               dw_hh, db (and the GRU's db_hn), and the initial carry's

so that every matmul of the layer runs in the kernels' own engine, on
threads that persist across the steps of a call. `_cpu_build` builds and
loads them; `_vjp` joins the two passes into the fast path's
`jax.custom_vjp`, and runs them through `_shard` (data parallelism and
vmap).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import _unroll
from jaxrnn.cells import _registry
from jaxrnn.fast import _cpu_build, _fused
from jaxrnn.fast._cpu_build import Status as Status
from jaxrnn.fast._cpu_build import status as status
from jaxrnn.fast._cpu_build import threads as threads

_FORWARD, _BACKWARD = _cpu_build._FORWARD, _cpu_build._BACKWARD


def _tuning() -> dict[str, np.int64]:
    """The blocking a call is told to use: $JAXRNN_CPU_CHUNK time steps per
    chunk and $JAXRNN_CPU_KSLICE contraction slices (0, the default: chosen
    by the kernels from the caches). For tests and tuning; read when a call
    is traced."""
    out = {}
    for attr, name in (("chunk", "JAXRNN_CPU_CHUNK"), ("k_slice", "JAXRNN_CPU_KSLICE")):
        text = os.environ.get(name, "0").strip() or "0"
        if not text.isdigit():
            raise ValueError(f"{name} must be a non-negative integer, got {text!r}")
        out[attr] = np.int64(int(text))
    return out


def _f32(a):
    return a.astype(jnp.float32)


def _empty():
    return jnp.zeros((0,), jnp.float32)


def _require() -> None:
    """Build and register the kernels, or say why they cannot run."""
    state = status()
    if not state.available:
        raise RuntimeError(f"the jaxrnn CPU kernels are not available: {state.reason}")


def call(target: str, shapes, args, name: str, activation: str, count: int, **attrs):
    """One kernel call on `count` threads: float32 results of `shapes`."""
    call = jax.ffi.ffi_call(
        target,
        [jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes],
        vmap_method="sequential",
    )
    return call(
        *args,
        cell=np.int64(_registry.CELLS[name].kernel),
        activation=np.int64(_cpu_build.ACTIVATIONS.get(activation, 0)),
        threads=np.int64(count),
        **_tuning(),
        **attrs,
    )


def forward_shapes(name, seq_len, batch, hidden, save):
    spec = _registry.CELLS[name]
    lstm, gated = spec.lstm_carry, spec.gates > 1
    return [
        (seq_len, batch, hidden),
        (seq_len, batch, hidden) if lstm and save else (0,),
        (seq_len, batch, 4 * hidden) if gated and save else (0,),
        (batch, hidden),
        (batch, hidden) if lstm else (0,),
    ]


def backward_shapes(name, seq_len, batch, features, hidden, w_shapes, need_x, need_w):
    """w_shapes: the shapes of w_ih [G*H, D] and w_hh ([G*H, H], or [H])."""
    lstm = _registry.CELLS[name].lstm_carry
    (gates, _), w_hh = w_shapes
    return [
        (seq_len, batch, features) if need_x else (0,),
        (gates, features) if need_w else (0,),
        w_hh if need_w else (0,),
        (gates,) if need_w else (0,),
        (hidden,) if _extra(name) and need_w else (0,),
        (batch, hidden),
        (batch, hidden) if lstm else (0,),
    ]


def _extra(name: str) -> bool:
    """Whether the cell's params carry a recurrent candidate bias b_hn."""
    return "b_hn" in _registry.CELLS[name].params._fields


def _bf16(a):
    """a's values rounded to bfloat16, kept in float32."""
    return a.astype(jnp.bfloat16).astype(jnp.float32)


def _recurrent(policy, w_hh):
    """w_hh as the kernels take it: rounded with the products' operands,
    but for a diagonal one (the IndRNN's u [H]), whose product u * h is
    elementwise and stays in full precision, as in its step."""
    return (_bf16 if policy and w_hh.ndim == 2 else _f32)(w_hh)


def forward(name, activation, params, carry, xs, mask, save, devices=1, policy=0):
    """The forward call over xs [T, B, D], time-major, on this process's
    kernel threads divided among `devices` devices that share the host;
    with `policy` 1 or 2 (csrc/gemm_bf16.h's Mm: ROUND, BF16), its
    products' operands (xs, the weights, h_{t-1}) rounded to bfloat16 and
    summed in float32 (the mixed-precision policy), by float32 products or
    by bfloat16 ones.

    Returns (hs, cs, saved, h_T, c_T), float32: hs [T, B, H] is h after each
    step (held where the mask is off); cs the LSTM's c likewise and saved the
    gates (LSTM: i, f, g, o; GRU: r, z, n, h_n; [T, B, 4H]), both only when
    `save` (else empty); c_T is the LSTM's (else empty).
    """
    _require()
    seq_len, batch, _ = xs.shape
    gates, hidden = params.w_ih.shape[0], carry[0].shape[-1]
    lstm = _registry.CELLS[name].lstm_carry
    f32 = jnp.float32
    b_hn = getattr(params, "b_hn", None)
    rounded = _bf16 if policy else _f32
    args = (
        rounded(xs),
        rounded(params.w_ih),
        _recurrent(policy, params.w_hh),
        jnp.zeros((gates,), f32) if params.b is None else _f32(params.b),
        (jnp.zeros((hidden,), f32) if b_hn is None else _f32(b_hn))
        if hasattr(params, "b_hn")
        else _empty(),
        _f32(carry[0]),
        _f32(carry[1]) if lstm else _empty(),
        jnp.ones((seq_len, batch), f32) if mask is None else _f32(mask),
    )
    shapes = forward_shapes(name, seq_len, batch, hidden, save)
    count = max(1, threads() // devices)
    return call(
        _FORWARD,
        shapes,
        args,
        name,
        activation,
        count,
        save=bool(save),
        policy=np.int64(policy),
    )


def backward(
    name, activation, args: _fused.Backward, need_x, need_w, devices=1, policy=0
):
    """The backward pass: (dx [T, B, D], dw_ih, dw_hh, db, db_hn, dh0, dc0),
    float32, from the forward pass's `saved` and `after` (hs, and the LSTM's
    cs) in `args`. db_hn is the GRU's (else empty), dc0 the LSTM's; dx is empty unless
    `need_x`, and the weight and bias gradients unless `need_w`, so that the
    kernels skip their work. Where the mask is off, the step's gradients are
    exactly zero and the carried gradient passes through. With `policy`,
    the products use the operands the forward call rounded (xs and the
    weights as bfloat16 values), in float32."""
    _require()
    params, xs, mask, saved, after, carry, dcarry, dys = args
    seq_len, batch, features = xs.shape
    hidden = carry[0].shape[-1]
    lstm = _registry.CELLS[name].lstm_carry
    f32 = jnp.float32
    rounded = _bf16 if policy else _f32
    args = (
        rounded(xs),
        rounded(params.w_ih),
        _recurrent(policy, params.w_hh),
        _f32(saved),
        _f32(after[0]),
        _f32(after[-1]) if lstm else _empty(),
        _f32(carry[0]),
        _f32(carry[1]) if lstm else _empty(),
        _f32(dys),
        _f32(dcarry[0]),
        _f32(dcarry[1]) if lstm else _empty(),
        jnp.ones((seq_len, batch), f32) if mask is None else _f32(mask),
    )
    shapes = backward_shapes(
        name,
        seq_len,
        batch,
        features,
        hidden,
        (params.w_ih.shape, params.w_hh.shape),
        need_x,
        need_w,
    )
    count = max(1, threads() // devices)
    return call(_BACKWARD, shapes, args, name, activation, count)


def forward_pass(name, activation, params, carry, xs, mask, save, devices=1, policy=0):
    """The fast path's forward pass (see `_fused.forward_pass`) as one
    kernel call: (final carry, ys), and with `save` (saved, after)."""
    hs, cs, saved, h_t, c_t = forward(
        name, activation, params, carry, xs, mask, save, devices, policy
    )
    lstm = _registry.CELLS[name].lstm_carry
    final = tuple(a.astype(xs.dtype) for a in ((h_t, c_t) if lstm else (h_t,)))
    ys = _unroll.zero_masked(hs, mask).astype(xs.dtype)
    if not save:
        return final, ys
    return final, ys, saved, ((hs, cs) if lstm else (hs,))


def backward_pass(name, activation, args, need_x, need_w, devices=1, policy=0):
    """The fast path's backward pass as one kernel call: (dcarry0, dxs,
    dw_ih, dw_hh, db, db_hn), in float32, with zeros standing for dx or the
    weights' gradients where they are not wanted (the kernel skips them)."""
    dxs, dw_ih, dw_hh, db, db_hn, dh0, dc0 = backward(
        name, activation, args, need_x, need_w, devices, policy
    )
    params, xs, carry = args.params, args.xs, args.carry
    dtype = carry[0].dtype
    lstm = _registry.CELLS[name].lstm_carry
    dcarry0 = tuple(a.astype(dtype) for a in ((dh0, dc0) if lstm else (dh0,)))
    if not need_x:
        dxs = jnp.zeros(xs.shape, xs.dtype)
    if not need_w:
        dw_ih, dw_hh = jnp.zeros_like(params.w_ih), jnp.zeros_like(params.w_hh)
        db = jnp.zeros((params.w_ih.shape[0],), params.w_ih.dtype)
        db_hn = jnp.zeros((carry[0].shape[-1],), params.w_ih.dtype)
    return dcarry0, dxs.astype(xs.dtype), dw_ih, dw_hh, db, db_hn


def usable(dtype: Any) -> str:
    """Why impl="cpu" cannot run for params of `dtype` here ("" when it can)."""
    if jnp.dtype(dtype) == jnp.float64:
        return "float64 (the kernels compute in float32; impl='fused' runs float64)"
    if jax.default_backend() != "cpu":
        return f"the {jax.default_backend()} backend (the kernels run on a CPU)"
    state = status()
    return "" if state.available else f"no compiled kernels: {state.reason}"


def bf16_native() -> bool:
    """Whether matmul_dtype=bfloat16 runs the bfloat16 products here (else
    float32 products of rounded operands): see `_cpu_build.bf16_native`."""
    return _cpu_build.bf16_native(status())[0]


def gemm_seconds(batch: int, hidden: int, gates: int, count: int, steps: int) -> float:
    """Seconds for `steps` of the kernels' recurrent matmul alone, h [batch,
    hidden] @ w_hh^T [hidden, gates * hidden], on `count` threads with a
    barrier per step (for benchmarks/bench_gemm_engines.py)."""
    _require()
    return _cpu_build.library().jaxrnn_gemm_seconds(batch, hidden, gates, count, steps)


def matmul(a: np.ndarray, b: np.ndarray, *, transpose_a=False, vectors=2, k_slice=0):
    """op(a) @ b on the kernels' engine, one thread, panels of `vectors`
    vectors: op(a) is a [M, K], or a [K, M] transposed. For the tests."""
    _require()
    a = np.ascontiguousarray(a, np.float32)
    b = np.ascontiguousarray(b, np.float32)
    m, k = a.shape[::-1] if transpose_a else a.shape
    n = b.shape[1]
    out = np.zeros((m, n), np.float32)
    failed = _cpu_build.library().jaxrnn_matmul(
        m,
        n,
        k,
        a.ctypes.data,
        int(transpose_a),
        b.ctypes.data,
        out.ctypes.data,
        vectors,
        k_slice,
    )
    if failed:
        raise ValueError(f"matmul: vectors must be 1 to 4, got {vectors}")
    return out
