"""Values and gradients against PyTorch's nn.RNN, nn.LSTM and nn.GRU, in float64.

PyTorch is the independent oracle here: its modules were written by nobody on
this project. Weights are copied by the recipe in the params' docstrings:
same matrices, b = b_ih + b_hh, and for the GRU b_hn = the n-block of b_hh.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from helpers import x64

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

D, H, T, B = 3, 5, 7, 4
LENGTHS = [7, 5, 1, 3]


def _torch_module(cell, num_layers, bidirectional, bias, nonlinearity="tanh"):
    torch.manual_seed(0)
    kwargs = dict(
        input_size=D,
        hidden_size=H,
        num_layers=num_layers,
        bidirectional=bidirectional,
        bias=bias,
        batch_first=True,
    )
    if cell == "rnn":
        return torch.nn.RNN(nonlinearity=nonlinearity, **kwargs).double()
    return {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](**kwargs).double()


def _params_from_torch(module, cell, activation="tanh"):
    """Copy a torch module's weights into LayerParams (a test-local recipe)."""
    directions = 2 if module.bidirectional else 1
    layers = []
    for layer in range(module.num_layers):
        cells = []
        for d in range(directions):
            suffix = f"l{layer}" + ("_reverse" if d else "")
            get = lambda name: jnp.asarray(
                getattr(module, f"{name}_{suffix}").detach().numpy()
            )
            w_ih, w_hh = get("weight_ih"), get("weight_hh")
            if not module.bias:
                none = (None, None) if cell == "gru" else (None,)
                cells.append(
                    {
                        "rnn": jaxrnn.RNNParams,
                        "lstm": jaxrnn.LSTMParams,
                        "gru": jaxrnn.GRUParams,
                    }[cell](w_ih, w_hh, *none)
                )
                continue
            b_ih, b_hh = get("bias_ih"), get("bias_hh")
            if cell == "gru":
                b = jnp.concatenate([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :]])
                cells.append(jaxrnn.GRUParams(w_ih, w_hh, b, b_hh[2 * H :]))
            elif cell == "lstm":
                cells.append(jaxrnn.LSTMParams(w_ih, w_hh, b_ih + b_hh))
            else:
                cells.append(jaxrnn.RNNParams(w_ih, w_hh, b_ih + b_hh))
        layers.append(tuple(cells))
    return jaxrnn.LayerParams(tuple(layers), activation)


def _torch_forward(module, cell, xs, h0, lengths):
    hx = (h0[0], h0[1]) if cell == "lstm" else h0
    if lengths is None:
        out, hn = module(xs, hx)
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            xs, torch.tensor(lengths), batch_first=True, enforce_sorted=False
        )
        out, hn = module(packed, hx)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(
            out, batch_first=True, total_length=T
        )
    return out, hn


CELL_KINDS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", None), ("gru", None)]
CASES = [
    (cell, nl, layers, bidi, lengths, True)
    for cell, nl in CELL_KINDS
    for layers, bidi in [(1, False), (2, True), (3, False)]
    for lengths in (False, True)
] + [(cell, nl, 2, True, True, False) for cell, nl in CELL_KINDS]


@pytest.mark.parametrize(
    "cell,nonlinearity,num_layers,bidirectional,with_lengths,bias", CASES
)
def test_layer_matches_torch(
    cell, nonlinearity, num_layers, bidirectional, with_lengths, bias
):
    module = _torch_module(
        cell, num_layers, bidirectional, bias, nonlinearity or "tanh"
    )
    directions = 2 if bidirectional else 1
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(B, T, D))
    h0 = rng.normal(size=(2 if cell == "lstm" else 1, num_layers * directions, B, H))
    out_weights = rng.normal(size=(B, T, directions * H))
    lengths = LENGTHS if with_lengths else None

    # PyTorch: outputs, final state, and gradients of a scalar loss.
    xs_t = torch.tensor(xs, requires_grad=True)
    h0_t = torch.tensor(h0, requires_grad=True)
    out_t, hn_t = _torch_forward(
        module, cell, xs_t, h0_t if cell == "lstm" else h0_t[0], lengths
    )
    hn_t = torch.stack(hn_t) if cell == "lstm" else hn_t[None]
    loss_t = (out_t * torch.tensor(out_weights)).sum() + (hn_t**2).sum()
    loss_t.backward()

    with x64():
        params = _params_from_torch(module, cell, nonlinearity or "tanh")

        def loss(params, xs, h0):
            state = jaxrnn.LSTMCarry(h0[0], h0[1]) if cell == "lstm" else h0[0]
            ys, final = jaxrnn.apply_layer(
                params,
                xs,
                initial_state=state,
                lengths=None if lengths is None else jnp.array(lengths),
            )
            final = jnp.stack(final) if cell == "lstm" else final[None]
            return jnp.sum(ys * out_weights) + jnp.sum(final**2), (ys, final)

        (value, (ys, final)), grads = jax.value_and_grad(
            loss, argnums=(0, 1, 2), has_aux=True
        )(params, jnp.asarray(xs), jnp.asarray(h0))

    np.testing.assert_allclose(ys, out_t.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(final, hn_t.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(value, loss_t.item(), rtol=1e-10)
    np.testing.assert_allclose(grads[1], xs_t.grad.numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(grads[2], h0_t.grad.numpy(), rtol=1e-9, atol=1e-10)
    # Weight gradients: dL/db = dL/db_ih (b is a sum); GRU's b_hn is b_hh's n block.
    for layer in range(num_layers):
        for d in range(directions):
            suffix = f"l{layer}" + ("_reverse" if d else "")
            g = grads[0].cells[layer][d]
            torch_grad = lambda name: getattr(module, f"{name}_{suffix}").grad.numpy()
            np.testing.assert_allclose(
                g.w_ih, torch_grad("weight_ih"), rtol=1e-9, atol=1e-10
            )
            np.testing.assert_allclose(
                g.w_hh, torch_grad("weight_hh"), rtol=1e-9, atol=1e-10
            )
            if bias:
                np.testing.assert_allclose(
                    g.b, torch_grad("bias_ih"), rtol=1e-9, atol=1e-10
                )
                if cell == "gru":
                    np.testing.assert_allclose(
                        g.b_hn, torch_grad("bias_hh")[2 * H :], rtol=1e-9, atol=1e-10
                    )


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_steps_match_torch_cells_in_float32(cell):
    """The single-step cells against torch.nn.{RNN,LSTM,GRU}Cell, float32."""
    torch.manual_seed(1)
    module = {
        "rnn": torch.nn.RNNCell,
        "lstm": torch.nn.LSTMCell,
        "gru": torch.nn.GRUCell,
    }[cell](D, H)
    x = torch.randn(D)
    h = torch.randn(H)
    c = torch.randn(H)
    get = lambda name: jnp.asarray(getattr(module, name).detach().numpy())
    w_ih, w_hh, b_ih, b_hh = (
        get(n) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    )
    if cell == "lstm":
        expected_h, expected_c = module(x, (h, c))
        new, _ = jaxrnn.lstm_step(
            jaxrnn.LSTMParams(w_ih, w_hh, b_ih + b_hh),
            jaxrnn.LSTMCarry(jnp.asarray(h.numpy()), jnp.asarray(c.numpy())),
            jnp.asarray(x.numpy()),
        )
        np.testing.assert_allclose(new.h, expected_h.detach().numpy(), atol=1e-6)
        np.testing.assert_allclose(new.c, expected_c.detach().numpy(), atol=1e-6)
        return
    if cell == "gru":
        params = jaxrnn.GRUParams(
            w_ih,
            w_hh,
            jnp.concatenate([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :]]),
            b_hh[2 * H :],
        )
        new, _ = jaxrnn.gru_step(params, jnp.asarray(h.numpy()), jnp.asarray(x.numpy()))
    else:
        new, _ = jaxrnn.rnn_step(
            jaxrnn.RNNParams(w_ih, w_hh, b_ih + b_hh),
            jnp.asarray(h.numpy()),
            jnp.asarray(x.numpy()),
        )
    np.testing.assert_allclose(new, module(x, h).detach().numpy(), atol=1e-6)
