"""jaxrnn.interop against the real torch.nn.RNN, LSTM and GRU: values and gradients.

PyTorch is the oracle: its modules run their own kernels, and the converted
jaxrnn params must reproduce outputs, final states and the gradients of a
scalar loss (with respect to the inputs and the initial state) that torch's
autograd computes.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from helpers import TOLERANCES, record_error, x64
from jaxrnn import interop

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

KINDS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", None), ("gru", None)]
D, H, T, B = 3, 5, 7, 4


def _module(
    kind,
    nonlinearity,
    num_layers=1,
    bidirectional=False,
    bias=True,
    batch_first=True,
    dtype=torch.float32,
    input_size=D,
    hidden_size=H,
    dropout=0.0,
    seed=0,
):
    torch.manual_seed(seed)
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    kwargs = dict(
        num_layers=num_layers,
        bidirectional=bidirectional,
        bias=bias,
        batch_first=batch_first,
        dropout=dropout,
    )
    if kind == "rnn":
        kwargs["nonlinearity"] = nonlinearity
    module = cls(input_size, hidden_size, **kwargs).to(dtype)
    if bias:  # make b_ih and b_hh clearly different, so a lost bias shows
        with torch.no_grad():
            for name, p in module.named_parameters():
                if name.startswith("bias_hh"):
                    p.add_(0.3)
    return module.eval()


F32, F64 = TOLERANCES["peer"][jnp.float32], TOLERANCES["peer"][jnp.float64]


def _compare(module, kind, xs, h0, lengths=None, tol=F32, weight_grads=False):
    """Run torch and jaxrnn on the same inputs; compare values and gradients."""
    is_lstm = kind == "lstm"
    rng = np.random.default_rng(1)
    dtype = xs.dtype

    # PyTorch.
    xs_t = torch.tensor(xs, requires_grad=True)
    h0_t = torch.tensor(h0, requires_grad=True)
    hx = (h0_t[0], h0_t[1]) if is_lstm else h0_t[0]
    if lengths is None:
        out_t, hn_t = module(xs_t, hx)
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            xs_t,
            torch.tensor(lengths),
            batch_first=module.batch_first,
            enforce_sorted=False,
        )
        out_t, hn_t = module(packed, hx)
        out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(
            out_t,
            batch_first=module.batch_first,
            total_length=xs.shape[1 if module.batch_first else 0],
        )
    hn_t = torch.stack(hn_t) if is_lstm else hn_t[None]
    w_out = rng.normal(size=out_t.shape).astype(dtype)
    w_state = rng.normal(size=hn_t.shape).astype(dtype)
    loss_t = (out_t * torch.tensor(w_out)).sum() + (hn_t * torch.tensor(w_state)).sum()
    loss_t.backward()

    # jaxrnn.
    params, apply = interop.from_torch(module)

    def loss(params, xs, h0):
        state = (h0[0], h0[1]) if is_lstm else h0[0]
        out, hn = apply(
            params, xs, state, lengths=None if lengths is None else jnp.array(lengths)
        )
        hn = jnp.stack(hn) if is_lstm else hn[None]
        return jnp.sum(out * w_out) + jnp.sum(hn * w_state), (out, hn)

    (value, (out, hn)), grads = jax.jit(
        jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)
    )(params, jnp.asarray(xs), jnp.asarray(h0))
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(hn, hn_t.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(grads[1], xs_t.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(grads[2], h0_t.grad.numpy(), rtol=tol, atol=tol)
    record_error(
        "torch",
        xs.dtype,
        (out, hn, grads[1], grads[2]),
        (
            out_t.detach().numpy(),
            hn_t.detach().numpy(),
            xs_t.grad.numpy(),
            h0_t.grad.numpy(),
        ),
    )
    if weight_grads:  # dL/db = dL/db_ih; the GRU's b_hn is b_hh's n block
        for layer in range(module.num_layers):
            for d in range(2 if module.bidirectional else 1):
                suffix = f"_l{layer}" + ("_reverse" if d else "")
                g = grads[0].cells[layer][d]
                ref = lambda name: getattr(module, name + suffix).grad.numpy()
                np.testing.assert_allclose(g.w_ih, ref("weight_ih"), rtol=tol, atol=tol)
                np.testing.assert_allclose(g.w_hh, ref("weight_hh"), rtol=tol, atol=tol)
                if module.bias:
                    np.testing.assert_allclose(g.b, ref("bias_ih"), rtol=tol, atol=tol)
                    if kind == "gru":
                        np.testing.assert_allclose(
                            g.b_hn, ref("bias_hh")[2 * H :], rtol=tol, atol=tol
                        )


def _inputs(module, dtype=np.float32, batch=B, steps=T):
    rng = np.random.default_rng(0)
    shape = (
        (batch, steps, module.input_size)
        if module.batch_first
        else (steps, batch, module.input_size)
    )
    directions = 2 if module.bidirectional else 1
    h0 = rng.normal(
        size=(
            2 if module.mode == "LSTM" else 1,
            module.num_layers * directions,
            batch,
            module.hidden_size,
        )
    )
    return rng.normal(size=shape).astype(dtype), h0.astype(dtype)


GRID = [
    (kind, nl, layers, bidi, True, True)
    for kind, nl in KINDS
    for layers, bidi in [(1, False), (2, True), (3, False)]
] + [(kind, nl, 2, True, False, False) for kind, nl in KINDS]


@pytest.mark.parametrize(
    "kind,nonlinearity,num_layers,bidirectional,bias,batch_first", GRID
)
def test_float32_values_and_gradients(
    kind, nonlinearity, num_layers, bidirectional, bias, batch_first
):
    module = _module(kind, nonlinearity, num_layers, bidirectional, bias, batch_first)
    xs, h0 = _inputs(module)
    _compare(module, kind, xs, h0, tol=F32)


@pytest.mark.parametrize("kind,nonlinearity", KINDS)
@pytest.mark.parametrize("batch_first", [True, False])
def test_float32_lengths_match_packed_sequences(kind, nonlinearity, batch_first):
    module = _module(
        kind, nonlinearity, num_layers=2, bidirectional=True, batch_first=batch_first
    )
    xs, h0 = _inputs(module)
    _compare(module, kind, xs, h0, lengths=[7, 5, 1, 3], tol=F32)


@pytest.mark.parametrize("kind,nonlinearity", KINDS)
def test_float64_values_and_all_gradients(kind, nonlinearity):
    with x64():
        module = _module(
            kind, nonlinearity, num_layers=2, bidirectional=True, dtype=torch.float64
        )
        xs, h0 = _inputs(module, np.float64)
        _compare(module, kind, xs, h0, lengths=[7, 5, 1, 3], tol=F64, weight_grads=True)
        module = _module(
            kind,
            nonlinearity,
            num_layers=3,
            bias=False,
            batch_first=False,
            dtype=torch.float64,
            input_size=1,
            hidden_size=8,
        )
        xs, h0 = _inputs(module, np.float64, batch=1, steps=2)
        _compare(module, kind, xs, h0, tol=F64, weight_grads=True)


@pytest.mark.parametrize("kind,nonlinearity", KINDS)
def test_unbatched_input(kind, nonlinearity):
    module = _module(kind, nonlinearity, num_layers=2, bidirectional=True)
    params, apply = interop.from_torch(module)
    xs = np.random.default_rng(0).normal(size=(T, D)).astype(np.float32)
    out, hn = apply(params, xs)
    expected_out, expected_hn = module(torch.from_numpy(xs))
    np.testing.assert_allclose(out, expected_out.detach().numpy(), atol=F32)
    for a, b in zip(
        jax.tree.leaves(hn),
        jax.tree.leaves(
            [
                t.detach().numpy()
                for t in (expected_hn if kind == "lstm" else (expected_hn,))
            ]
        ),
    ):
        np.testing.assert_allclose(a, b, atol=F32)


@pytest.mark.parametrize("kind,nonlinearity", KINDS)
def test_round_trips_are_exact(kind, nonlinearity):
    module = _module(kind, nonlinearity, num_layers=2, bidirectional=True)
    params, _ = interop.from_torch(module)
    back = interop.to_torch(params, like=module)
    for (name, a), (_, b) in zip(
        module.state_dict().items(), back.state_dict().items()
    ):
        assert torch.equal(a, b), name
    # Without `like`, the bias sum goes to bias_ih; converting back is exact.
    fresh = interop.to_torch(params, batch_first=True)
    again, _ = interop.from_torch(fresh)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(again)):
        np.testing.assert_array_equal(a, b)
    # And the fresh module computes the same function.
    xs = torch.from_numpy(
        np.random.default_rng(0).normal(size=(B, T, D)).astype(np.float32)
    )
    np.testing.assert_allclose(
        fresh(xs)[0].detach().numpy(), module(xs)[0].detach().numpy(), atol=1e-5
    )


def test_trained_biases_keep_the_original_split_where_unchanged(getkey):
    module = _module("lstm", None)
    params, _ = interop.from_torch(module)
    cell = params.cells[0][0]
    changed = cell._replace(b=cell.b.at[3].add(1.0))
    back = interop.to_torch(jaxrnn.LayerParams(((changed,),), "tanh"), like=module)
    b_ih, b_hh = back.bias_ih_l0.detach().numpy(), back.bias_hh_l0.detach().numpy()
    np.testing.assert_array_equal(b_ih, module.bias_ih_l0.detach().numpy())
    untouched = np.arange(4 * H) != 3
    np.testing.assert_array_equal(
        b_hh[untouched], module.bias_hh_l0.detach().numpy()[untouched]
    )
    np.testing.assert_allclose(b_ih + b_hh, np.asarray(changed.b), rtol=1e-6)


def test_per_cell_converters_round_trip():
    module = _module("gru", None)
    params = interop.gru_params_from_torch(
        module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0
    )
    weights = interop.gru_params_to_torch(params)
    assert set(weights) == {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}
    np.testing.assert_array_equal(
        weights["weight_ih"], module.weight_ih_l0.detach().numpy()
    )
    np.testing.assert_array_equal(
        weights["bias_hh"][2 * H :], module.bias_hh_l0.detach().numpy()[2 * H :]
    )
    again = interop.gru_params_from_torch(**weights)
    for a, b in zip(params, again):
        np.testing.assert_array_equal(a, b)
    lstm = interop.lstm_params_from_torch(np.ones((8, 3)), np.ones((8, 2)))
    assert lstm.b is None and interop.lstm_params_to_torch(lstm)["bias_ih"] is None


def test_per_cell_converters_check_the_cell_type(getkey):
    lstm = jaxrnn.init_lstm(getkey(), D, H)
    with pytest.raises(
        TypeError,
        match=r"rnn_params_to_torch: params must be "
        r"RNNParams, got a LSTMParams",
    ):
        interop.rnn_params_to_torch(lstm)


def test_dropout_module_in_eval_and_training_mode():
    module = _module("lstm", None, num_layers=3, dropout=0.5)
    params, apply = interop.from_torch(module)
    xs, _ = _inputs(module)
    out, _ = apply(params, xs)
    np.testing.assert_allclose(
        out, module(torch.from_numpy(xs))[0].detach().numpy(), atol=1e-5
    )
    trained = apply(params, xs, key=jax.random.key(0))[0]
    assert not np.allclose(trained, out)
    np.testing.assert_array_equal(trained, apply(params, xs, key=jax.random.key(0))[0])


def test_bfloat16_module():
    module = _module("gru", None, dtype=torch.bfloat16)
    params, apply = interop.from_torch(module)
    assert params.dtype == jnp.bfloat16
    xs, _ = _inputs(module)
    out, _ = apply(params, xs.astype(jnp.bfloat16))
    expected = (
        module(torch.from_numpy(xs).to(torch.bfloat16))[0].float().detach().numpy()
    )
    np.testing.assert_allclose(np.asarray(out, np.float32), expected, atol=5e-2)
    back = interop.to_torch(params, like=module)
    for a, b in zip(module.state_dict().values(), back.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")
@pytest.mark.parametrize(
    "dtype,tol,lengths,batch_first",
    [
        (torch.float32, 1e-5, None, True),
        (torch.float32, 1e-5, [7, 5, 1, 3], False),
        (torch.float64, 1e-10, [7, 5, 1, 3], True),
    ],
)
def test_lstm_with_projection(dtype, tol, lengths, batch_first):
    """proj_size: h is [P], c is [H], and every gradient matches PyTorch's."""
    proj = 2
    with x64():
        torch.manual_seed(0)
        module = torch.nn.LSTM(
            D,
            H,
            num_layers=2,
            bidirectional=True,
            proj_size=proj,
            batch_first=batch_first,
        ).to(dtype)
        with torch.no_grad():
            for name, p in module.named_parameters():
                if name.startswith("bias_hh"):
                    p.add_(0.3)
        np_dtype = np.float64 if dtype == torch.float64 else np.float32
        rng = np.random.default_rng(0)
        shape = (B, T, D) if batch_first else (T, B, D)
        xs = rng.normal(size=shape).astype(np_dtype)
        h0 = rng.normal(size=(4, B, proj)).astype(np_dtype)
        c0 = rng.normal(size=(4, B, H)).astype(np_dtype)
        inputs = [torch.tensor(a, requires_grad=True) for a in (xs, h0, c0)]
        if lengths is None:
            out_t, (hn_t, cn_t) = module(inputs[0], (inputs[1], inputs[2]))
        else:
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                inputs[0],
                torch.tensor(lengths),
                batch_first=batch_first,
                enforce_sorted=False,
            )
            out_t, (hn_t, cn_t) = module(packed, (inputs[1], inputs[2]))
            out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(
                out_t, batch_first=batch_first, total_length=T
            )
        assert out_t.shape[-1] == 2 * proj and hn_t.shape[-1] == proj
        weights = [
            rng.normal(size=t.shape).astype(np_dtype) for t in (out_t, hn_t, cn_t)
        ]
        loss_t = sum(
            (t * torch.tensor(w)).sum() for t, w in zip((out_t, hn_t, cn_t), weights)
        )
        loss_t.backward()

        params, apply = interop.from_torch(module)
        assert params.cell == "proj_lstm" and params.proj_size == proj

        def loss(params, xs, h0, c0):
            out, (hn, cn) = apply(
                params,
                xs,
                (h0, c0),
                lengths=None if lengths is None else jnp.array(lengths),
            )
            total = sum(jnp.sum(a * w) for a, w in zip((out, hn, cn), weights))
            return total, (out, hn, cn)

        (_, values), grads = jax.jit(
            jax.value_and_grad(loss, argnums=(0, 1, 2, 3), has_aux=True)
        )(params, *map(jnp.asarray, (xs, h0, c0)))
        expected_values = [t.detach().numpy() for t in (out_t, hn_t, cn_t)]
        expected_grads = [t.grad.numpy() for t in inputs]
        for actual, expected in zip(
            [*values, *grads[1:]], [*expected_values, *expected_grads]
        ):
            np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol)
        for layer in range(2):
            for d, suffix in enumerate(("", "_reverse")):
                g = grads[0].cells[layer][d]
                for field, name in [
                    ("w_ih", "weight_ih"),
                    ("w_hh", "weight_hh"),
                    ("w_hr", "weight_hr"),
                    ("b", "bias_ih"),
                ]:
                    expected = getattr(module, f"{name}_l{layer}{suffix}").grad.numpy()
                    np.testing.assert_allclose(
                        getattr(g, field), expected, rtol=tol, atol=tol
                    )
        record_error(
            "torch",
            np_dtype,
            [*values, *grads[1:]],
            [*expected_values, *expected_grads],
        )
        # Round trips: exact with `like`, and a fresh module computes the same.
        back = interop.to_torch(params, like=module)
        for (name, a), b in zip(
            module.state_dict().items(), back.state_dict().values()
        ):
            assert torch.equal(a, b), name
        fresh = interop.to_torch(params, batch_first=batch_first)
        assert fresh.proj_size == proj
        np.testing.assert_allclose(
            fresh.eval()(torch.tensor(xs))[0].detach().numpy(),
            module(torch.tensor(xs))[0].detach().numpy(),
            rtol=tol,
            atol=tol,
        )


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")
def test_jaxrnn_projected_layer_to_torch(getkey):
    params = jaxrnn.init_layer(getkey(), "lstm", D, H, proj_size=3, num_layers=2)
    module = interop.to_torch(params, batch_first=True).eval()
    xs = np.random.default_rng(0).normal(size=(B, T, D)).astype(np.float32)
    ys, state = jaxrnn.apply_layer(params, jnp.asarray(xs))
    out, (hn, cn) = module(torch.from_numpy(xs))
    np.testing.assert_allclose(ys, out.detach().numpy(), atol=F32)
    np.testing.assert_allclose(state.h, hn.detach().numpy(), atol=F32)
    np.testing.assert_allclose(state.c, cn.detach().numpy(), atol=F32)


def test_refusals():
    for cell in ("layer_norm_lstm", "peephole_lstm", "cifg_lstm", "mgu"):
        params = jaxrnn.init_layer(jax.random.key(0), cell, D, H)
        with pytest.raises(TypeError, match=rf"to_torch: .*got {cell} cells"):
            interop.to_torch(params)
        with pytest.raises(TypeError, match=r"has no counterpart"):
            interop.to_torch(params.cells[0][0])
    options = [
        (dict(learn_initial_state=True), r"params.initial_state must be None"),
        (dict(num_layers=2, residual=True), r"params.residual must be False"),
        (dict(bidirectional=True, merge="sum"), r"params.merge must be 'concat'"),
    ]
    for kwargs, message in options:
        params = jaxrnn.init_layer(jax.random.key(0), "gru", D, H, **kwargs)
        with pytest.raises(ValueError, match=message):
            interop.to_torch(params)
    with pytest.raises(
        TypeError,
        match=r"from_torch: module must be a torch.nn.RNN, "
        r"LSTM or GRU, got a Linear",
    ):
        interop.from_torch(torch.nn.Linear(3, 5))
    params = jaxrnn.init_layer(jax.random.key(0), "rnn", D, H, activation="sigmoid")
    with pytest.raises(ValueError, match=r"params.activation must be 'tanh' or 'relu'"):
        interop.to_torch(params)
    with pytest.raises(ValueError, match=r"to_torch: like must be a torch.nn.RNN"):
        interop.to_torch(
            jaxrnn.init_layer(jax.random.key(0), "rnn", D, H),
            like=torch.nn.RNN(D, H + 1),
        )


def test_missing_framework_names_the_extra():
    from jaxrnn.interop import _common

    with pytest.raises(
        ImportError,
        match=r"to_keras needs no_such_framework, which could not be imported "
        r"\(No module named 'no_such_framework'\)\. "
        r"Install it with: pip install 'jaxrnn\[keras\]'",
    ):
        _common.require("no_such_framework", "keras", "to_keras")
