"""The implementations the harness times, all built from the same weights.

Every implementation computes the same function: the jaxrnn layer's params
are converted with `jaxrnn.interop` (or packed by hand for cuDNN), so that
the harness can check each one's forward outputs against the jaxrnn
reference before it times anything. Every JAX implementation trains with the
same optax chain, clip_by_global_norm(1.0) then Adam(1e-3), under one
`jax.jit`; PyTorch with torch.optim.Adam after clip_grad_norm_(1.0).
"""

from __future__ import annotations

import importlib.util
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrnn import interop
from jaxrnn import layer as _layer
from jaxrnn.bench._torch import torch_runner
from jaxrnn.cells import _registry as _cells
from jaxrnn.fast import _cpu

MEASURES = ("forward", "train_step")


class Impl(NamedTuple):
    """One implementation of one cell.

    Attributes:
        key: the family's name for --impls (several impls share a key).
        name: its full name ("{cell}" stands for LSTM, GRU or RNN).
        column: its column in the tables, shared by the same library's
            classes for the three cells.
        cells: the cells it has.
        missing: a function returning why it cannot run here ("" if it can).
        build: `build(layer_params, xs, targets) -> runner`.
        stacks: whether it runs stacked and bidirectional layers as one
            module (jaxrnn's layer and PyTorch's do; the others are timed
            on one layer, one direction).
    """

    key: str
    name: str
    column: str
    cells: tuple[str, ...]
    missing: Callable[[], str]
    build: Callable[..., Any]
    stacks: bool = False


def _needs(*modules: str) -> Callable[[], str]:
    def missing() -> str:
        absent = [m for m in modules if importlib.util.find_spec(m) is None]
        if absent:
            return f"{', '.join(absent)} not installed (pip install 'jaxrnn[bench]')"
        return ""

    return missing


def _train_step(forward: Callable) -> tuple[Callable, optax.GradientTransformation]:
    """forward(params, xs) -> ys, made into one training step."""
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))

    def loss(params, xs, targets):
        return jnp.mean(jnp.square(forward(params, xs) - targets))

    def step(params, opt_state, xs, targets):
        value, grads = jax.value_and_grad(loss)(params, xs, targets)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return step, optimizer


class JaxRunner:
    """A pure forward(params, xs) -> ys, compiled for both measures."""

    def __init__(self, forward: Callable, params: Any, xs: Any, targets: Any):
        step, optimizer = _train_step(forward)
        self._fns = {"forward": jax.jit(forward), "train_step": jax.jit(step)}
        self._args = {
            "forward": (params, xs),
            "train_step": (params, optimizer.init(params), xs, targets),
        }
        self._compiled: dict = {}

    def outputs(self) -> np.ndarray:
        if "forward" not in self._compiled:
            self.prepare("forward")
        ys = self._compiled["forward"](*self._args["forward"])
        return np.asarray(ys, np.float64)

    def prepare(self, measure: str) -> float:
        """Compile; return the seconds it took (lowering included).

        The harness compiles before anything else runs, so that no cache of
        an earlier call shortens the figure."""
        start = time.perf_counter()
        self._compiled[measure] = (
            self._fns[measure].lower(*self._args[measure]).compile()
        )
        return time.perf_counter() - start

    def __call__(self, measure: str) -> None:
        jax.block_until_ready(self._compiled[measure](*self._args[measure]))

    def memory(self, measure: str) -> int | None:
        """XLA's temporary bytes for the compiled function, if it says."""
        try:
            analysis = self._compiled[measure].memory_analysis()
            return int(analysis.temp_size_in_bytes)
        except Exception:  # not every backend reports it
            return None


def _jaxrnn(impl: str):
    def build(layer, xs, targets):
        def forward(params, xs):
            return _layer.apply_layer(params, xs, impl=impl)[0]

        return JaxRunner(forward, layer, xs, targets)

    return build


def _flax_linen(optimized: bool):
    def build(layer, xs, targets):
        import flax.linen as nn

        cell, variables = interop.to_flax_linen(layer, optimized=optimized)
        rnn = nn.RNN(cell)

        def forward(params, xs):
            return rnn.apply({"params": {"cell": params}}, xs)

        return JaxRunner(forward, variables["params"], xs, targets)

    return build


def _flax_nnx(optimized: bool):
    def build(layer, xs, targets):
        from flax import nnx

        rnn = nnx.RNN(interop.to_flax_nnx(layer, optimized=optimized), rngs=False)
        graphdef, params, rest = nnx.split(rnn, nnx.Param, ...)
        lstm = _cells.CELLS[layer.cell].lstm_carry

        def forward(params, xs):
            # A zero carry given explicitly: nnx would otherwise draw it from
            # an RNG stream that cannot change inside a pure function.
            zeros = jnp.zeros((xs.shape[0], layer.hidden_size), xs.dtype)
            carry = (zeros, zeros) if lstm else zeros
            return nnx.merge(graphdef, params, rest)(xs, initial_carry=carry)

        return JaxRunner(forward, params, xs, targets)

    return build


def _equinox(layer, xs, targets):
    import equinox as eqx

    params, static = eqx.partition(interop.to_equinox(layer), eqx.is_array)
    hidden = layer.hidden_size
    lstm = _cells.CELLS[layer.cell].lstm_carry

    def forward(params, xs):
        cell = eqx.combine(params, static)

        def one(x):
            zeros = jnp.zeros((hidden,), x.dtype)
            carry = (zeros, zeros) if lstm else zeros

            def body(carry, x_t):
                carry = cell(x_t, carry)
                return carry, carry[0] if lstm else carry

            return jax.lax.scan(body, carry, x)[1]

        return jax.vmap(one)(xs)

    return JaxRunner(forward, params, xs, targets)


def cudnn_weights(params: Any) -> jax.Array:
    """One LSTM cell's params in the flat cuDNN layout of jax.experimental.rnn:
    W_ih [4H, D], W_hh [4H, H], b_ih [4H], b_hh [4H], gates i, f, g, o."""
    hidden = params.w_hh.shape[1]
    b = jnp.zeros((4 * hidden,), params.w_hh.dtype) if params.b is None else params.b
    return jnp.concatenate(
        [params.w_ih.ravel(), params.w_hh.ravel(), b, jnp.zeros_like(b)]
    )


def _jax_cudnn_missing() -> str:
    if jax.default_backend() != "gpu":
        return "jax.experimental.rnn lowers to cuDNN (or MIOpen) only: no GPU here"
    return ""


def cudnn_forward(layer: Any, *, reference: bool = False) -> Callable:
    """forward(weights, xs) -> ys with jax.experimental.rnn's LSTM; with
    reference=True its pure-JAX `lstm_ref` on the same flat weights (which is
    how the packing is tested on a CPU)."""
    from jax.experimental import rnn

    size, hidden = layer.input_size, layer.hidden_size

    def forward(weights, xs):
        batch, seq_len = xs.shape[:2]
        zeros = jnp.zeros((1, batch, hidden), xs.dtype)
        lengths = jnp.full((batch,), seq_len, jnp.int32)
        if reference:
            w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(
                weights, size, hidden, 1, False
            )
            args = (w_ih, w_hh, b_ih, b_hh)
            return rnn.lstm_ref(
                xs, zeros, zeros, *args, lengths, size, hidden, 1, 0.0, False
            )[0]
        return rnn.lstm(
            xs,
            zeros,
            zeros,
            weights,
            lengths,
            size,
            hidden,
            1,
            0.0,
            False,
            precision="highest",
        )[0]

    return forward


def _jax_cudnn(layer, xs, targets):
    weights = cudnn_weights(layer.cells[0][0])
    return JaxRunner(cudnn_forward(layer), weights, xs, targets)


def _gpu_only(missing: Callable[[], str]) -> Callable[[], str]:
    def check() -> str:
        if jax.default_backend() != "gpu":
            return "half precision is timed on a GPU only"
        return missing()

    return check


def _compiled_pallas() -> str:
    """The Pallas kernels are timed where they compile: on a CPU they run in
    interpret mode, as XLA operations, which says nothing about a kernel."""
    if jax.default_backend() == "cpu":
        return "Pallas kernels run interpreted on a CPU; they are timed on a GPU"
    return ""


def _cpu_kernels() -> str:
    """Why the compiled CPU kernels cannot be timed here ("" if they can)."""
    return _cpu.usable(jnp.float32)


# The peers' cells by name, as the converters map them.
_FLAX = {"lstm": "LSTMCell", "gru": "GRUCell", "rnn": "SimpleCell"}


def _registry() -> list[Impl]:
    flax = _needs("flax")
    # jaxrnn's own impls, each on the three cells the peers have.
    impls = [
        Impl(
            f"jaxrnn-{impl}",
            f"jaxrnn ({label})",
            f"jaxrnn {impl}",
            ("lstm", "gru", "rnn"),
            missing,
            _jaxrnn(impl),
            stacks=True,
        )
        for impl, label, missing in (
            ("fused", "fused", lambda: ""),
            ("cpu", "cpu kernels", _cpu_kernels),
            ("scan", "scan", lambda: ""),
            ("pallas", "pallas", _compiled_pallas),
        )
    ]
    for api, build in (("linen", _flax_linen), ("nnx", _flax_nnx)):
        impls.append(
            Impl(
                f"flax-{api}",
                f"flax.{api} OptimizedLSTMCell",
                f"flax.{api} Optimized",
                ("lstm",),
                flax,
                build(True),
            )
        )
        for cell, name in _FLAX.items():
            impls.append(
                Impl(
                    f"flax-{api}",
                    f"flax.{api} {name}",
                    f"flax.{api} cell",
                    (cell,),
                    flax,
                    build(False),
                )
            )
    torch = _needs("torch")
    impls += [
        Impl(
            "equinox",
            "equinox LSTMCell",
            "equinox",
            ("lstm",),
            _needs("equinox"),
            _equinox,
        ),
        Impl(
            "equinox",
            "equinox GRUCell",
            "equinox",
            ("gru",),
            _needs("equinox"),
            _equinox,
        ),
        Impl(
            "jax-cudnn",
            "jax.experimental.rnn (cuDNN)",
            "jax cuDNN",
            ("lstm",),
            _jax_cudnn_missing,
            _jax_cudnn,
        ),
        Impl(
            "torch",
            "torch.nn.{cell}",
            "torch",
            ("lstm", "gru", "rnn"),
            torch,
            torch_runner("float32"),
            stacks=True,
        ),
        Impl(
            "torch",
            "torch.nn.{cell} bf16",
            "torch bf16",
            ("lstm", "gru", "rnn"),
            _gpu_only(torch),
            torch_runner("bfloat16"),
        ),
        Impl(
            "torch",
            "torch.nn.{cell} fp16",
            "torch fp16",
            ("lstm", "gru", "rnn"),
            _gpu_only(torch),
            torch_runner("float16"),
        ),
    ]
    return impls


IMPLS = _registry()
KEYS = tuple(dict.fromkeys(impl.key for impl in IMPLS))
