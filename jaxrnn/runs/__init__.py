"""Training runs: `fit` a model to a task, with validation, checkpoints that
resume, a metrics log and loss curves in a run directory; `evaluate_run`,
`generate_run` and `compare`. The `jaxrnn train`, `eval`, `generate` and
`compare` commands are thin wrappers over these.
"""

from jaxrnn.runs._config import RunConfig as RunConfig
from jaxrnn.runs._files import RunError as RunError
from jaxrnn.runs._model import Model as Model
from jaxrnn.runs._model import forward as forward
from jaxrnn.runs._model import init_model as init_model
from jaxrnn.runs._model import sample_text as sample_text
from jaxrnn.runs._report import compare as compare
from jaxrnn.runs._report import evaluate_run as evaluate_run
from jaxrnn.runs._report import generate_run as generate_run
from jaxrnn.runs._report import load_run as load_run
from jaxrnn.runs._train import Diverged as Diverged
from jaxrnn.runs._train import fit as fit

__all__ = [
    "Diverged",
    "Model",
    "RunConfig",
    "RunError",
    "compare",
    "evaluate_run",
    "fit",
    "forward",
    "generate_run",
    "init_model",
    "load_run",
    "sample_text",
]
