"""PyTorch <-> jaxrnn for one cell's weights: torch's state-dict entries
(weight_ih, weight_hh, bias_ih, bias_hh) and the jaxrnn params.

PyTorch keeps two biases per cell, b_ih and b_hh, that always enter as a
sum; jaxrnn keeps the sum, b = b_ih + b_hh. The GRU is the exception: the
reset gate multiplies the hidden side of the candidate, so its n block keeps
b_in in b and b_hn apart:

    b    = [b_ir + b_hr, b_iz + b_hz, b_in]
    b_hn = b_hn

Weight matrices and gate orders (i, f, g, o; r, z, n) are the same on both
sides, so every conversion is a copy and a sum.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxrnn import _checks
from jaxrnn.cells._elman import RNNParams
from jaxrnn.cells._gru import GRUParams
from jaxrnn.cells._lstm import LSTMParams
from jaxrnn.cells._proj_lstm import ProjLSTMParams
from jaxrnn.interop import _common


def _biases(fn: str, bias_ih: Any, bias_hh: Any):
    if (bias_ih is None) != (bias_hh is None):
        _checks.fail(
            fn, "bias_ih and bias_hh", "must both be given or both be None", "only one"
        )
    return _common.to_array(bias_ih), _common.to_array(bias_hh)


def _summed(cls: type, fn: str, weight_ih, weight_hh, bias_ih, bias_hh):
    """cls(w_ih, w_hh, b_ih + b_hh): the Elman and LSTM conversion."""
    b_ih, b_hh = _biases(fn, bias_ih, bias_hh)
    b = None if b_ih is None else b_ih + b_hh
    return cls(_common.to_array(weight_ih), _common.to_array(weight_hh), b)


def rnn_params_from_torch(
    weight_ih: Any, weight_hh: Any, bias_ih: Any = None, bias_hh: Any = None
) -> RNNParams:
    """RNNParams from torch.nn.RNN weights: the matrices, and b = b_ih + b_hh.

    Args:
        weight_ih: [H, D]; weight_hh: [H, H]; bias_ih, bias_hh: [H] or None.
            Tensors or arrays.
    """
    return _summed(
        RNNParams, "rnn_params_from_torch", weight_ih, weight_hh, bias_ih, bias_hh
    )


def lstm_params_from_torch(
    weight_ih: Any,
    weight_hh: Any,
    bias_ih: Any = None,
    bias_hh: Any = None,
    weight_hr: Any = None,
) -> LSTMParams | ProjLSTMParams:
    """LSTMParams from torch.nn.LSTM weights: the matrices, and b = b_ih + b_hh.

    Args:
        weight_ih: [4H, D]; weight_hh: [4H, H] ([4H, P] with a projection);
            bias_ih, bias_hh: [4H] or None.
        weight_hr: the projection [P, H] of an LSTM with proj_size = P, or
            None. When given, the result is ProjLSTMParams.
    """
    fn = "lstm_params_from_torch"
    params = _summed(LSTMParams, fn, weight_ih, weight_hh, bias_ih, bias_hh)
    if weight_hr is None:
        return params
    return ProjLSTMParams(*params, _common.to_array(weight_hr))


def gru_params_from_torch(
    weight_ih: Any, weight_hh: Any, bias_ih: Any = None, bias_hh: Any = None
) -> GRUParams:
    """GRUParams from torch.nn.GRU weights.

    b = [b_ir + b_hr, b_iz + b_hz, b_in] and b_hn = the n block of b_hh.

    Args:
        weight_ih: [3H, D]; weight_hh: [3H, H]; bias_ih, bias_hh: [3H] or None.
    """
    b_ih, b_hh = _biases("gru_params_from_torch", bias_ih, bias_hh)
    w_ih, w_hh = _common.to_array(weight_ih), _common.to_array(weight_hh)
    if b_ih is None:
        return GRUParams(w_ih, w_hh, None, None)
    hidden = w_hh.shape[1]
    b = jnp.concatenate([b_ih[: 2 * hidden] + b_hh[: 2 * hidden], b_ih[2 * hidden :]])
    return GRUParams(w_ih, w_hh, b, b_hh[2 * hidden :])


def _split(total: np.ndarray, like_ih: np.ndarray | None, like_hh: np.ndarray | None):
    """b_ih, b_hh that sum to `total`, keeping `like`'s split where it still does."""
    if like_ih is None:
        return total, np.zeros_like(total)
    unchanged = (like_ih + like_hh) == total
    return like_ih, np.where(unchanged, like_hh, total - like_ih)


def _to_torch_dict(params: Any, like: dict | None) -> dict[str, np.ndarray | None]:
    """{weight_ih, weight_hh, bias_ih, bias_hh} as NumPy arrays for one cell."""
    w_ih, w_hh = _common.numpy(params.w_ih), _common.numpy(params.w_hh)
    out = {"weight_ih": w_ih, "weight_hh": w_hh, "bias_ih": None, "bias_hh": None}
    if isinstance(params, ProjLSTMParams):
        out["weight_hr"] = _common.numpy(params.w_hr)
    if params.b is None:
        return out
    like = like or {}
    like_ih, like_hh = like.get("bias_ih"), like.get("bias_hh")
    b = _common.numpy(params.b)
    if isinstance(params, GRUParams):
        hidden = w_hh.shape[1]
        rz_ih, rz_hh = _split(
            b[: 2 * hidden],
            None if like_ih is None else like_ih[: 2 * hidden],
            None if like_hh is None else like_hh[: 2 * hidden],
        )
        out["bias_ih"] = np.concatenate([rz_ih, b[2 * hidden :]])
        out["bias_hh"] = np.concatenate([rz_hh, _common.numpy(params.b_hn)])
    else:
        out["bias_ih"], out["bias_hh"] = _split(b, like_ih, like_hh)
    return out


def _one_cell_to_torch(fn: str, params: Any, cls: type) -> dict:
    if not isinstance(params, cls):
        _checks.fail(
            fn,
            "params",
            f"must be {cls.__name__}",
            _checks.describe(params),
            kind=TypeError,
        )
    return _to_torch_dict(params, None)


def rnn_params_to_torch(params: RNNParams) -> dict[str, np.ndarray | None]:
    """torch.nn.RNN's weight_ih, weight_hh, bias_ih (= b) and bias_hh (= 0)."""
    return _one_cell_to_torch("rnn_params_to_torch", params, RNNParams)


def lstm_params_to_torch(
    params: LSTMParams | ProjLSTMParams,
) -> dict[str, np.ndarray | None]:
    """torch.nn.LSTM's weight_ih, weight_hh, bias_ih (= b) and bias_hh (= 0).

    ProjLSTMParams also give weight_hr, the projection of proj_size > 0.
    """
    fn = "lstm_params_to_torch"
    if isinstance(params, ProjLSTMParams):
        return _to_torch_dict(params, None)
    return _one_cell_to_torch(fn, params, LSTMParams)


def gru_params_to_torch(params: GRUParams) -> dict[str, np.ndarray | None]:
    """torch.nn.GRU's weights: bias_ih = b, bias_hh = [0, 0, b_hn]."""
    return _one_cell_to_torch("gru_params_to_torch", params, GRUParams)


# ------------------------------------------------------------------ whole modules
