"""The table of impls (jaxrnn/layer/_impls.py): what it says is what runs."""

import dataclasses
import re

import jax
import jax.numpy as jnp
import pytest

import jaxrnn
from jaxrnn import layer
from jaxrnn.cells import _registry
from jaxrnn.layer import _impls

CELLS = list(_registry.LAYER_CELLS)
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


def _matmul_in_the_loop(params, **kwargs):
    """Whether a matmul runs inside a scan of apply_layer's trace (the
    reference's per-step step does; the linear forms' one matmul does not)."""
    xs = jnp.ones((2, 4, 3))
    jaxpr = jax.make_jaxpr(lambda p: jaxrnn.apply_layer(p, xs, **kwargs))(params)

    def inner(params):
        for value in params.values():
            for item in value if isinstance(value, (tuple, list)) else (value,):
                if hasattr(item, "eqns"):
                    yield item
                elif hasattr(getattr(item, "jaxpr", None), "eqns"):
                    yield item.jaxpr

    def scans(jaxpr, inside):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general" and inside:
                return True
            for sub in inner(eqn.params):
                if scans(sub, inside or eqn.primitive.name == "scan"):
                    return True
        return False

    return scans(jaxpr.jaxpr, False)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: next(iter(o), "none"))
def test_auto_runs_what_choose_says(cell, options):
    params = jaxrnn.init_layer(jax.random.key(0), cell, 3, 5)
    option = next(iter(options), None)
    chosen = layer.choose("auto", cell, params.activation, **options)
    assert chosen in ("scan", "fused", "cpu", "linear_scan")
    kwargs = _layer_kwargs(option)
    assert _runs_fast(params, **kwargs) == (chosen in ("fused", "cpu"))
    if chosen == "scan" or (chosen == "linear_scan" and option != "checkpoint"):
        # (with segments, each segment's matmul runs in the loop over segments)
        assert _matmul_in_the_loop(params, **kwargs) == (chosen == "scan")


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
                for name in _impls.auto()
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


def _swap(params, layer, direction, **arrays):
    """params with some arrays of one cell replaced."""
    cells = [list(c) for c in params.cells]
    cells[layer][direction] = cells[layer][direction]._replace(**arrays)
    return dataclasses.replace(params, cells=tuple(tuple(c) for c in cells))


def _wrong_params():
    """(what is wrong, params, xs): a shape or dtype that only the cell's own
    checks can see (the layer's structure is otherwise sound)."""
    key = jax.random.key(0)
    lstm = jaxrnn.init_layer(key, "lstm", 3, 5, num_layers=2)
    wider = jaxrnn.init_layer(key, "lstm", 3, 6, num_layers=2)
    gru = jaxrnn.init_layer(key, "gru", 3, 5)
    xs = jnp.ones((4, 7, 3))
    return [
        ("w_hh of H + 1", _swap(lstm, 1, 0, w_hh=wider.cells[1][0].w_hh), xs),
        ("b too short", _swap(lstm, 1, 0, b=lstm.cells[1][0].b[:-1]), xs),
        (
            "w_hh in bfloat16",
            _swap(lstm, 1, 0, w_hh=lstm.cells[1][0].w_hh.astype(jnp.bfloat16)),
            xs,
        ),
        ("b_hn too long", _swap(gru, 0, 0, b_hn=jnp.zeros(6)), xs),
    ]


@pytest.mark.parametrize("case", range(4))
def test_a_wrong_cell_param_gets_the_references_message_on_every_impl(case):
    """The cells' params are checked once, by the reference step, before any
    impl runs: each impl (and stream_layer) refuses with the same message,
    which names the layer and direction."""
    what, params, xs = _wrong_params()[case]
    messages = {}
    for impl in layer.IMPLS:
        with pytest.raises((ValueError, TypeError)) as info:
            jaxrnn.apply_layer(params, xs, impl=impl)
        messages[impl] = (type(info.value), str(info.value))
    assert len(set(messages.values())) == 1, (what, messages)
    kind, message = messages["scan"]
    assert re.match(r"apply_layer: params\.cells\[\d\]\[\d\]: \w+_step: ", message)
    with pytest.raises(kind) as info:
        jaxrnn.stream_layer(params, jaxrnn.init_state(params, xs.shape[0]), xs)
    assert str(info.value) == message.replace("apply_layer", "stream_layer", 1)


def test_forward_mode_autodiff_names_the_reference_impl():
    """jax.jvp through a custom VJP is refused by JAX; the layer's error says
    which impl ran and that impl='scan' has forward mode, where jvp agrees
    with reverse mode."""
    params = jaxrnn.init_layer(jax.random.key(0), "gru", 3, 4)
    xs = jax.random.normal(jax.random.key(1), (2, 5, 3))
    tangent = jax.random.normal(jax.random.key(2), xs.shape)

    def loss(impl):
        return lambda xs: jaxrnn.apply_layer(params, xs, impl=impl)[0].sum()

    runs_gru = [
        i
        for i in layer.IMPLS
        if i == "auto"
        or not _impls.TABLE[i].lacks(_impls.layer("gru", "tanh", jnp.float32, None, {}))
    ]
    assert set(runs_gru) == {"auto", "scan", "fused", "pallas", "cpu", "parallel"}
    for impl in (i for i in runs_gru if i != "scan"):
        with pytest.raises(TypeError, match=r"impl must be 'scan' under forward-mode"):
            jax.jvp(loss(impl), (xs,), (tangent,))
    _, forward = jax.jvp(loss("scan"), (xs,), (tangent,))
    reverse = jnp.vdot(jax.grad(loss("fused"))(xs), tangent)
    assert jnp.allclose(forward, reverse, rtol=1e-5, atol=1e-5)


def test_the_linear_impls_have_forward_mode_too():
    """The minimal cells' linear forms are plain JAX (no custom VJP): jax.jvp
    runs through each and agrees with reverse mode."""
    params = jaxrnn.init_layer(
        jax.random.key(0), "min_gru", 3, 4, activation="positive"
    )
    xs = jax.random.normal(jax.random.key(1), (2, 5, 3))
    tangent = jax.random.normal(jax.random.key(2), xs.shape)
    for impl in ("assoc", "assoc_log", "linear_scan"):
        loss = lambda xs, impl=impl: jaxrnn.apply_layer(params, xs, impl=impl)[0].sum()  # noqa: E731
        _, forward = jax.jvp(loss, (xs,), (tangent,))
        reverse = jnp.vdot(jax.grad(loss)(xs), tangent)
        assert jnp.allclose(forward, reverse, rtol=1e-5, atol=1e-5), impl
