"""Your own data as a task: a series from a CSV column or a .npy array, or a
plain text file for a character model.

Every error names the file, and the line and column where there is one, and
what was expected there.
"""

from __future__ import annotations

import csv
import os
from typing import Any

import numpy as np

# What `jaxrnn train --data FILE` makes of a file, by its ending.
KINDS = {".csv": "series", ".npy": "series", ".txt": "text"}


def kind_of(path: str) -> str:
    """ "series" or "text", from the file's ending (KINDS).

    Raises:
        ValueError: an ending KINDS does not name.
    """
    ending = os.path.splitext(path)[1].lower()
    if ending not in KINDS:
        raise ValueError(
            f"{path}: cannot tell a series from a text by the ending {ending!r}: "
            f"expected one of {', '.join(KINDS)}, or name the task (--task series "
            "or --task text)."
        )
    return KINDS[ending]


def _fail(path: str, where: str, message: str) -> None:
    raise ValueError(f"{path}{where}: {message}")


def _exists(path: str) -> str:
    path = os.fspath(path)
    if not os.path.isfile(path):
        _fail(path, "", "no such file")
    return path


def read_series(path: str | os.PathLike, column: Any = None) -> np.ndarray:
    """A series [N] of finite float64 values, in the file's order.

    Args:
        path: a .npy file (one-dimensional, or two-dimensional [N, F] with
            `column` an index below F), or a CSV file: one value a row, or
            several columns with `column` a name of its header row or an
            index (0 is the first). A header row is recognised by a cell that
            is not a number.
        column: which column; None where the file has one.

    Raises:
        ValueError: no such file, an empty file, ragged rows, a cell that is
            not a number, a non-finite value, or a column that is not there;
            the message names the file, line and column.
    """
    path = _exists(path)
    if path.lower().endswith(".npy"):
        values = _npy_column(path, column)
    else:
        values = _csv_column(path, column)
    if len(values) == 0:
        _fail(path, "", "holds no values")
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        _fail(path, "", f"value {bad[0]} is {values[bad[0]]}: expected finite numbers")
    return values


def _npy_column(path: str, column: Any) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        _fail(path, "", f"not a NumPy .npy array of numbers ({error})")
    if array.dtype.kind not in "biuf":
        _fail(path, "", f"holds {array.dtype} values: expected numbers")
    if array.ndim == 1 and column is None:
        return array.astype(np.float64)
    if array.ndim == 2:
        if column is None and array.shape[1] == 1:
            return array[:, 0].astype(np.float64)
        index = _index(column)
        if index is None or not 0 <= index < array.shape[1]:
            _fail(
                path,
                "",
                f"has {array.shape[1]} columns ([N, F] = {array.shape}): give "
                f"--column 0 to {array.shape[1] - 1}, got {column!r}",
            )
        return array[:, index].astype(np.float64)
    _fail(path, "", f"has shape {array.shape}: expected [N], or [N, F] with --column")


def _index(column: Any) -> int | None:
    if isinstance(column, int) and not isinstance(column, bool):
        return column
    if isinstance(column, str) and column.strip().isdigit():
        return int(column)
    return None


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value


def _csv_column(path: str, column: Any) -> np.ndarray:
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [(n, row) for n, row in enumerate(csv.reader(f), 1) if row]
    if not rows:
        _fail(path, "", "holds no rows")
    header = None
    if any(_number(cell) is None for cell in rows[0][1]):
        header, rows = [c.strip() for c in rows[0][1]], rows[1:]
        if not rows:
            _fail(path, "", "holds a header row and no values")
    width = len(header) if header is not None else len(rows[0][1])
    for line, row in rows:
        if len(row) != width:
            cells = f"{len(row)} cell" + ("s" if len(row) != 1 else "")
            _fail(path, f", line {line}", f"has {cells}: expected {width}")
    if column is None and width == 1:
        index = 0
    elif header is not None and column in header:
        index = header.index(column)
    else:
        index = _index(column)
        if index is None or not 0 <= index < width:
            names = f" ({', '.join(header)})" if header else ""
            _fail(
                path,
                "",
                f"has {width} columns{names}: give --column as a name of the "
                f"header or an index 0 to {width - 1}, got {column!r}",
            )
    values = []
    for line, row in rows:
        value = _number(row[index])
        if value is None:
            name = header[index] if header else index
            _fail(
                path,
                f", line {line}, column {name!r}",
                f"{row[index]!r} is not a number",
            )
        values.append(value)
    return np.asarray(values, np.float64)


def read_text(path: str | os.PathLike) -> str:
    """A UTF-8 text file's characters, for a character model.

    Raises:
        ValueError: no such file, bytes that are not UTF-8 (the message gives
            the offset), or no characters.
    """
    path = _exists(path)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        _fail(path, f", byte {error.start}", "is not UTF-8 text")
    if not text:
        _fail(path, "", "holds no characters")
    return text
