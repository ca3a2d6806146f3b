"""Safe, atomic files for parameters and optimizer state: `save` and `load`."""

from jaxrnn.io._files import load as load
from jaxrnn.io._files import load_metadata as load_metadata
from jaxrnn.io._files import save as save

__all__ = ["load", "load_metadata", "save"]
