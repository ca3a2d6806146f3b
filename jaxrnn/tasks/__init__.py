"""Sequence tasks: batches generated deterministically from a PRNG key, and
real data read offline (a Shakespeare slice shipped here; series and digits
from the files of the optional extra `jaxrnn[data]`), and your own files
(a series from a CSV column or a .npy array, or a text)."""

from jaxrnn.tasks._datasets import SERIES as SERIES
from jaxrnn.tasks._datasets import MissingExtraError as MissingExtraError
from jaxrnn.tasks._datasets import Series as Series
from jaxrnn.tasks._datasets import load_digits as load_digits
from jaxrnn.tasks._datasets import load_series as load_series
from jaxrnn.tasks._datasets import load_shakespeare as load_shakespeare
from jaxrnn.tasks._forecast import ForecastData as ForecastData
from jaxrnn.tasks._forecast import Scaler as Scaler
from jaxrnn.tasks._forecast import Windows as Windows
from jaxrnn.tasks._forecast import baselines as forecast_baselines
from jaxrnn.tasks._forecast import split_series as split_series
from jaxrnn.tasks._own import kind_of as kind_of
from jaxrnn.tasks._own import read_series as read_series
from jaxrnn.tasks._own import read_text as read_text
from jaxrnn.tasks._registry import TASKS as TASKS
from jaxrnn.tasks._registry import Task as Task
from jaxrnn.tasks._registry import make_task as make_task
from jaxrnn.tasks._synthetic import ADDING_BASELINE_MSE as ADDING_BASELINE_MSE
from jaxrnn.tasks._synthetic import Batch as Batch
from jaxrnn.tasks._synthetic import copy_baseline_loss as copy_baseline_loss
from jaxrnn.tasks._synthetic import make_adding_batch as make_adding_batch
from jaxrnn.tasks._synthetic import make_copy_batch as make_copy_batch
from jaxrnn.tasks._synthetic import make_sine_series as make_sine_series
from jaxrnn.tasks._text import Vocab as Vocab
from jaxrnn.tasks._text import char_windows as char_windows
from jaxrnn.tasks._text import make_char_batch as make_char_batch
from jaxrnn.tasks._text import split_text as split_text

__all__ = [
    "ADDING_BASELINE_MSE",
    "SERIES",
    "TASKS",
    "Batch",
    "ForecastData",
    "MissingExtraError",
    "Scaler",
    "Series",
    "Task",
    "Vocab",
    "Windows",
    "char_windows",
    "copy_baseline_loss",
    "forecast_baselines",
    "kind_of",
    "load_digits",
    "load_series",
    "load_shakespeare",
    "make_adding_batch",
    "make_char_batch",
    "make_copy_batch",
    "make_sine_series",
    "make_task",
    "read_series",
    "read_text",
    "split_series",
    "split_text",
]
