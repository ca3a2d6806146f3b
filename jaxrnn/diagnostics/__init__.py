"""Diagnostics: vanishing and exploding gradients, clipping, the gates, and
Lyapunov exponents (which predict the parallel solve).

Pure functions that return arrays or NamedTuples; none of them plots or
prints. Each is tested against a brute-force computation.
"""

from jaxrnn.diagnostics._gates import GateStats as GateStats
from jaxrnn.diagnostics._gates import GRUGates as GRUGates
from jaxrnn.diagnostics._gates import LSTMGates as LSTMGates
from jaxrnn.diagnostics._gates import gate_statistics as gate_statistics
from jaxrnn.diagnostics._gates import gru_gates as gru_gates
from jaxrnn.diagnostics._gates import lstm_gates as lstm_gates
from jaxrnn.diagnostics._grads import ClipTrace as ClipTrace
from jaxrnn.diagnostics._grads import StateGradients as StateGradients
from jaxrnn.diagnostics._grads import clip_trace as clip_trace
from jaxrnn.diagnostics._grads import state_gradients as state_gradients
from jaxrnn.diagnostics._jacobian import TransitionJacobians as TransitionJacobians
from jaxrnn.diagnostics._jacobian import derivative_bound as derivative_bound
from jaxrnn.diagnostics._jacobian import (
    rescale_spectral_radius as rescale_spectral_radius,
)
from jaxrnn.diagnostics._jacobian import span_jacobian as span_jacobian
from jaxrnn.diagnostics._jacobian import spectral_norm as spectral_norm
from jaxrnn.diagnostics._jacobian import spectral_radius as spectral_radius
from jaxrnn.diagnostics._jacobian import transition_jacobians as transition_jacobians
from jaxrnn.diagnostics._lyapunov import ParallelOutlook as ParallelOutlook
from jaxrnn.diagnostics._lyapunov import lyapunov_exponent as lyapunov_exponent
from jaxrnn.diagnostics._lyapunov import lyapunov_spectrum as lyapunov_spectrum
from jaxrnn.diagnostics._lyapunov import parallel_outlook as parallel_outlook

__all__ = [
    "ClipTrace",
    "GRUGates",
    "GateStats",
    "LSTMGates",
    "ParallelOutlook",
    "StateGradients",
    "TransitionJacobians",
    "clip_trace",
    "derivative_bound",
    "gate_statistics",
    "gru_gates",
    "lstm_gates",
    "lyapunov_exponent",
    "lyapunov_spectrum",
    "parallel_outlook",
    "rescale_spectral_radius",
    "span_jacobian",
    "spectral_norm",
    "spectral_radius",
    "state_gradients",
    "transition_jacobians",
]
