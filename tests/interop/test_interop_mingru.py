"""jaxrnn's min_gru and min_lstm against their peers on PyPI: mingru-pytorch
(the paper's log-space form, g) and mingru-keras (the plain form), on the
same weights, through every impl."""

import os

import jax
import numpy as np
import pytest

import jaxrnn
from helpers import record_error
from jaxrnn import interop

IMPLS = ("scan", "assoc", "assoc_log", "linear_scan")
B, T, D = 3, 64, 8


def _inputs(seed=0):
    return np.random.default_rng(seed).normal(size=(B, T, D)).astype("float32")


@pytest.mark.parametrize("kind", ["minGRU", "minLSTM"])
def test_mingru_pytorch_outputs_within_1e_5_on_every_impl(kind):
    torch = pytest.importorskip("torch")
    peer = pytest.importorskip("minGRU_pytorch")
    from minGRU_pytorch.minLSTM import minLSTM

    torch.manual_seed(1)
    module = peer.minGRU(D) if kind == "minGRU" else minLSTM(D)
    params, apply = interop.from_mingru(module)
    assert params.activation == "positive"
    x = _inputs()
    out, last = module(torch.from_numpy(x), return_next_prev_hidden=True)
    for impl in IMPLS:
        ys, h = apply(params, x, impl=impl)
        np.testing.assert_allclose(ys, out.detach().numpy(), atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(h, last.detach().numpy(), atol=1e-5, rtol=1e-5)
    record_error("mingru-pytorch", "float32", ys, out.detach().numpy())
    # One step from a state: the peer's sequential path.
    prev = torch.rand(B, 1, D) + 0.1
    step = module(torch.from_numpy(x[:, :1]), prev).detach().numpy()
    ys, _ = apply(params, x[:, :1], prev.numpy())
    np.testing.assert_allclose(ys, step, atol=1e-6)
    if kind == "minGRU":  # the whole sequence from a state (see from_mingru's Note)
        whole = module(torch.from_numpy(x), prev).detach().numpy()
        ys, _ = apply(params, x, prev.numpy(), impl="assoc_log")
        np.testing.assert_allclose(ys, whole, atol=1e-5, rtol=1e-5)


def test_mingru_pytorch_with_a_projection_is_refused():
    pytest.importorskip("torch")
    peer = pytest.importorskip("minGRU_pytorch")
    with pytest.raises(
        ValueError, match=r"must have no output projection .*to_out=Linear"
    ):
        interop.from_mingru(peer.minGRU(D, expansion_factor=2.0))
    with pytest.raises(TypeError, match="must be a mingru-pytorch minGRU or minLSTM"):
        interop.from_mingru(jaxrnn.init_layer(jax.random.key(0), "min_gru", D, 4))


@pytest.mark.usefixtures("permissive_promotion")  # Keras' own Dense broadcasts
def test_mingru_keras_outputs_within_1e_5():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":  # pragma: no cover
        pytest.skip("Keras was imported with another backend")
    peer = pytest.importorskip("mingru_keras")
    layer = peer.MinGRU(6)
    x = _inputs(2)
    layer.build(x.shape)
    # Biases are zero when built: give them values, so that their place is tested.
    rng = np.random.default_rng(3)
    for dense in (layer.gate, layer.candidate):
        dense.bias.assign(rng.normal(size=6).astype("float32"))
    want = np.asarray(layer(x))
    params, apply = interop.from_mingru(layer)
    assert params.activation == "identity"
    for impl in ("scan", "assoc", "linear_scan"):
        ys, h = apply(params, x, impl=impl)
        np.testing.assert_allclose(ys, want, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(h[:, 0], want[:, -1], atol=1e-5, rtol=1e-5)
    record_error("mingru-keras", "float32", ys, want)
