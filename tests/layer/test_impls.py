"""The table of impls (jaxrnn/layer/_impls.py): what it says is what runs."""

import re

import jax
import jax.numpy as jnp
import pytest

import jaxrnn
from jaxrnn import layer
from jaxrnn.cells import _registry
from jaxrnn.layer import _impls

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
    chosen = layer.choose("auto", cell, params.activation, **options)
    assert chosen in ("scan", "fused", "cpu")
    assert _runs_fast(params, **_layer_kwargs(option)) == (chosen != "scan")


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "identity"])
def test_the_rnn_is_fast_for_the_activations_with_a_fast_form(activation):
    params = jaxrnn.init_layer(jax.random.key(0), "rnn", 3, 5, activation=activation)
    fast_form = activation != "identity"
    assert (layer.choose("auto", "rnn", activation) != "scan") == fast_form
    assert _runs_fast(params) == fast_form


def test_explicit_impls_and_their_messages():
    assert layer.choose("scan", "lstm") == "scan"
    assert layer.choose("fused", "gru") == "fused"
    assert layer.choose("pallas", "rnn", "relu") == "pallas"
    assert layer.choose("cpu", "gru", dtype=jnp.bfloat16) == "cpu"
    with pytest.raises(ValueError, match=r"choose: impl must be one of .*got 'cudnn'"):
        layer.choose("cudnn", "lstm")
    message = r"impl must be 'auto' or 'scan' with zoneout \(the fused path lacks it\)"
    with pytest.raises(ValueError, match=message):
        layer.choose("fused", "lstm", zoneout=True)
    fast = ", ".join(repr(s.name) for s in _registry.CELLS.values() if s.fast)
    with pytest.raises(ValueError, match=re.escape(f"cell='mgu' (it has {fast})")):
        layer.choose("pallas", "mgu")
    assert layer.unsupported("lstm", reset=True, zoneout=True) == "reset, zoneout"
    assert set(layer.REFERENCE_ONLY) == {o for option in OPTIONS for o in option}


def test_the_old_names_in_fast_warn_and_still_answer():
    for name in ("IMPLS", "REFERENCE_ONLY", "choose", "unsupported"):
        with pytest.warns(
            DeprecationWarning, match=f"jaxrnn.fast.{name} is deprecated"
        ):
            old = getattr(jaxrnn.fast, name)
        assert old is getattr(layer, name)
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        jaxrnn.fast.nothing  # noqa: B018


def test_every_row_lacks_what_auto_then_passes_over():
    """Each impl that lacks a layer's feature is refused by name, and "auto"
    runs the first of AUTO that lacks nothing."""
    for spec in _registry.CELLS.values():
        for options in OPTIONS:
            option = next(iter(options), None)
            if option == "matmul_dtype":
                continue
            want = _impls.layer(spec.name, "tanh", jnp.float32, None, options)
            able = [
                name
                for name in _impls.AUTO
                if not (
                    _impls.TABLE[name].lacks(want)
                    or _impls.TABLE[name].here(want.dtype)
                )
            ]
            assert layer.choose("auto", spec.name, **options) == able[0]
            for name, row in _impls.TABLE.items():
                lacking = row.lacks(want)
                if lacking:
                    with pytest.raises(ValueError, match=f"the {name} path lacks it"):
                        layer.choose(name, spec.name, **options)
