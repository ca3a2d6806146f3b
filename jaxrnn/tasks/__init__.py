"""Sequence tasks: batches generated deterministically from a PRNG key."""

from jaxrnn.tasks._synthetic import ADDING_BASELINE_MSE as ADDING_BASELINE_MSE
from jaxrnn.tasks._synthetic import Batch as Batch
from jaxrnn.tasks._synthetic import make_adding_batch as make_adding_batch

__all__ = ["ADDING_BASELINE_MSE", "Batch", "make_adding_batch"]
