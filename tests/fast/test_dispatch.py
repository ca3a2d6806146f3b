"""The impl rule (jaxrnn/fast/_dispatch.py): what it says is what runs."""

import jax
import jax.numpy as jnp
import pytest

import jaxrnn
from jaxrnn import fast
from jaxrnn.cells import _registry

CELLS = [name for name in _registry.CELLS if name != "proj_lstm"]
OPTIONS = [
    {},
    {"reset": True},
    {"recurrent_dropout": True},
    {"zoneout": True},
    {"checkpoint": True},
    {"matmul_dtype": jnp.bfloat16},
]


def _layer_kwargs(option):
    """apply_layer arguments that turn on one option of REFERENCE_ONLY."""
    kwargs = {
        "reset": {"reset": jnp.zeros((2, 4), bool).at[:, 2].set(True)},
        "recurrent_dropout": {"recurrent_dropout": 0.25, "key": jax.random.key(1)},
        "zoneout": {"zoneout": 0.25, "key": jax.random.key(1)},
        "checkpoint": {"checkpoint": 2},
        "matmul_dtype": {"matmul_dtype": jnp.bfloat16},
    }
    return kwargs.get(option, {})


def _runs_fast(params, **kwargs):
    """Whether apply_layer traced the fast path's custom VJP."""
    xs = jnp.ones((2, 4, 3))
    jaxpr = jax.make_jaxpr(lambda p: jaxrnn.apply_layer(p, xs, **kwargs))(params)
    return "custom_vjp_call" in str(jaxpr)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: next(iter(o), "none"))
def test_auto_runs_what_choose_says(cell, options):
    params = jaxrnn.init_layer(jax.random.key(0), cell, 3, 5)
    option = next(iter(options), None)
    chosen = fast.choose("auto", cell, params.activation, **options)
    assert chosen in ("scan", "fused", "cpu")
    assert _runs_fast(params, **_layer_kwargs(option)) == (chosen != "scan")


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "identity"])
def test_the_rnn_is_fast_for_the_activations_with_a_fast_form(activation):
    params = jaxrnn.init_layer(jax.random.key(0), "rnn", 3, 5, activation=activation)
    fast_form = activation != "identity"
    assert (fast.choose("auto", "rnn", activation) != "scan") == fast_form
    assert _runs_fast(params) == fast_form


def test_explicit_impls_and_their_messages():
    assert fast.choose("scan", "lstm") == "scan"
    assert fast.choose("fused", "gru") == "fused"
    assert fast.choose("pallas", "rnn", "relu") == "pallas"
    assert fast.choose("cpu", "gru", dtype=jnp.bfloat16) == "cpu"
    with pytest.raises(ValueError, match=r"choose: impl must be one of .*got 'cudnn'"):
        fast.choose("cudnn", "lstm")
    message = r"impl must be 'auto' or 'scan' with zoneout \(the fused path lacks it\)"
    with pytest.raises(ValueError, match=message):
        fast.choose("fused", "lstm", zoneout=True)
    with pytest.raises(ValueError, match=r"cell='mgu' \(it has 'rnn', 'lstm', 'gru'\)"):
        fast.choose("pallas", "mgu")
    assert fast.unsupported("lstm", reset=True, zoneout=True) == "reset, zoneout"
    assert set(fast.REFERENCE_ONLY) == {o for option in OPTIONS for o in option}
