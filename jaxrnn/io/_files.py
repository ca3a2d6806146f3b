"""Parameter and optimizer-state files: no pickle, atomic, checked on load.

A file is a zip archive (NumPy's .npz layout) holding one `.npy` array per
leaf of the pytree and a `manifest.json` that lists every leaf's key path,
dtype, shape and SHA-256, with the caller's metadata. Nothing in it is
executable: arrays are read with `allow_pickle=False`.

Writes go to a temporary file in the same folder, are flushed to disk, and
then renamed over the target (`os.replace` is atomic on POSIX and Windows),
so a crash at any point leaves either the old file or the new one, never a
half-written one. Loads check the archive's CRCs, every array's SHA-256, and
the tree against a template `like` (key paths, shapes and dtypes), and name
the first thing that differs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from typing import Any, BinaryIO, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import _checks

FORMAT = "jaxrnn.io/1"
_MANIFEST = "manifest.json"


def _leaves(tree: Any) -> list[tuple[str, Any]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [(jax.tree_util.keystr(path), leaf) for path, leaf in flat]


def _encode(fn: str, name: str, leaf: Any) -> tuple[np.ndarray, dict]:
    """A plain NumPy array to store, and the manifest entry that restores it."""
    entry: dict[str, Any] = {"path": name}
    if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        entry["key_impl"] = str(jax.random.key_impl(leaf))
        leaf = jax.random.key_data(leaf)
    try:
        array = np.asarray(leaf)
    except (TypeError, ValueError) as error:
        _checks.fail(
            fn, f"tree{name}", "must be an array", f"a {type(leaf).__name__} ({error})"
        )
    if array.dtype.kind not in "biufcV":
        _checks.fail(
            fn,
            f"tree{name}",
            "must be a numeric array",
            f"a {type(leaf).__name__}",
            "Only arrays are saved; keep other values in `metadata`.",
            kind=TypeError,
        )
    entry["dtype"] = jnp.dtype(array.dtype).name
    entry["shape"] = list(array.shape)
    # Extended dtypes (bfloat16, float8) are stored as raw unsigned integers
    # of their size, so that NumPy reads them back without pickle.
    raw = np.asarray(array, order="C")  # (ascontiguousarray would make 0-d 1-d)
    if raw.dtype.kind not in "biufc":
        raw = raw.view(np.dtype(f"u{raw.dtype.itemsize}"))
    entry["sha256"] = hashlib.sha256(raw.tobytes()).hexdigest()
    return raw, entry


def _scalar(value: Any) -> Any:
    """A NumPy or JAX scalar (or 0-d array) in metadata, as a Python number;
    anything else JSON cannot hold stays refused."""
    if isinstance(value, (np.generic, np.ndarray, jax.Array)) and np.ndim(value) == 0:
        return np.asarray(value).item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def save(path: str | os.PathLike, tree: Any, *, metadata: dict | None = None) -> None:
    """Write a pytree of arrays (params, optimizer state) to `path`, atomically.

    Args:
        path: the file to write; its folder must exist. An existing file is
            replaced only once the new one is complete on disk.
        tree: any pytree of arrays: LayerParams, (params, opt_state), a dict.
            PRNG keys are stored as their key data and restored as keys.
        metadata: optional JSON-serialisable dict (a step count, a config),
            read back with `load_metadata`; NumPy and JAX scalars (0-d
            arrays) in it are stored as the Python numbers they hold.

    Raises:
        TypeError: a leaf that is not an array, or metadata that JSON cannot
            hold.
        ValueError: the folder does not exist.

    Examples:
        >>> import jax, tempfile, os
        >>> from jaxrnn import init_layer
        >>> params = init_layer(jax.random.key(0), "gru", 3, 5)
        >>> path = os.path.join(tempfile.mkdtemp(), "params.jaxrnn")
        >>> save(path, params, metadata={"step": 10})
        >>> again = load(path, like=params)
        >>> bool((again.cells[0][0].w_hh == params.cells[0][0].w_hh).all())
        True
    """
    fn = "save"
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        _checks.fail(fn, "path", "must be in an existing folder", repr(path))
    try:
        meta_text = json.dumps({} if metadata is None else metadata, default=_scalar)
    except TypeError as error:
        _checks.fail(
            fn, "metadata", "must be JSON-serialisable", str(error), kind=TypeError
        )
    arrays, entries = [], []
    for name, leaf in _leaves(tree):
        raw, entry = _encode(fn, name, leaf)
        arrays.append(raw)
        entries.append(entry)
    manifest = {"format": FORMAT, "leaves": entries, "metadata": json.loads(meta_text)}

    def write(file):
        with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr(_MANIFEST, json.dumps(manifest, indent=1))
            for index, raw in enumerate(arrays):
                buffer = io.BytesIO()
                np.save(buffer, raw, allow_pickle=False)
                archive.writestr(f"{index:06d}.npy", buffer.getvalue())

    write_atomically(path, write)


# The names of write_atomically's temporary files: what a process killed in
# the middle of a write leaves behind (a run's resume removes them).
TEMPORARY_PREFIX = ".tmp-"


def write_atomically(path: str, write: Callable[[BinaryIO], None]) -> None:
    """Write a whole file so that a crash leaves the old file or the new one.

    `write(file)` fills a temporary file in the same folder, which is flushed
    to disk, given the mode a new file gets, and renamed over `path`
    (`os.replace` is atomic); then the rename itself is made durable.
    """
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(
        prefix=TEMPORARY_PREFIX, suffix="-" + os.path.basename(path), dir=folder
    )
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        umask = os.umask(0)  # mkstemp makes 0600; give the usual mode
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename durable (a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _open(fn: str, path: str) -> tuple[zipfile.ZipFile, dict]:
    if not os.path.isfile(path):
        _checks.fail(fn, "path", "must be an existing file", repr(path))
    broken = f"{path!r}, which is not a complete jaxrnn file (truncated or corrupted)"
    try:
        archive = zipfile.ZipFile(path)
        manifest = json.loads(archive.read(_MANIFEST))
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError, OSError) as error:
        _checks.fail(
            fn, "path", "must be a file written by jaxrnn.io.save", f"{broken}: {error}"
        )
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        _checks.fail(
            fn,
            "path",
            f"must hold the format {FORMAT!r}",
            repr(manifest.get("format") if isinstance(manifest, dict) else None),
        )
    return archive, manifest


def load_metadata(path: str | os.PathLike) -> dict:
    """The `metadata` dict that `save` stored in `path`."""
    archive, manifest = _open("load_metadata", os.fspath(path))
    archive.close()
    return manifest["metadata"]


def load(path: str | os.PathLike, like: Any) -> Any:
    """Read a pytree written by `save`, with `like`'s structure.

    Args:
        path: the file.
        like: a pytree of the expected structure, shapes and dtypes (for
            example freshly initialised params, or `optimizer.init(params)`);
            only its structure is used. Static fields (an Elman activation,
            a merge mode) come from `like`.

    Returns:
        The stored tree, with `like`'s tree structure, every array exactly as
        saved (dtype and bits).

    Raises:
        ValueError: a missing, truncated or corrupted file (bad CRC or
            SHA-256), another format, or a tree that differs from `like`
            (the first differing key path, shape or dtype is named).
    """
    fn = "load"
    path = os.fspath(path)
    archive, manifest = _open(fn, path)
    expected = _leaves(like)
    entries = manifest["leaves"]
    with archive:
        stored_paths = [e["path"] for e in entries]
        wanted_paths = [name for name, _ in expected]
        if stored_paths != wanted_paths:
            missing = [p for p in wanted_paths if p not in stored_paths]
            extra = [p for p in stored_paths if p not in wanted_paths]
            _checks.fail(
                fn,
                "path",
                "must hold a tree with the structure of `like`",
                f"a file whose leaves differ: missing {missing[:3]}, "
                f"unexpected {extra[:3]}",
                "The file was saved from another architecture.",
            )
        leaves = []
        for index, ((name, template), entry) in enumerate(zip(expected, entries)):
            shape, dtype = _template(template)
            if tuple(entry["shape"]) != shape:
                _checks.fail(
                    fn,
                    f"the leaf {name}",
                    f"must have the shape of like{name}, {shape}",
                    f"shape {tuple(entry['shape'])} in the file",
                    "The file was saved from another architecture.",
                )
            if jnp.dtype(entry["dtype"]) != dtype:
                _checks.fail(
                    fn,
                    f"the leaf {name}",
                    f"must have the dtype of like{name}, {dtype.name}",
                    f"dtype {entry['dtype']} in the file",
                )
            try:
                raw = np.load(
                    io.BytesIO(archive.read(f"{index:06d}.npy")), allow_pickle=False
                )
            except (zipfile.BadZipFile, ValueError, OSError, KeyError) as error:
                _checks.fail(fn, "path", "must be an intact file", f"{path!r}: {error}")
            if (
                hashlib.sha256(np.ascontiguousarray(raw).tobytes()).hexdigest()
                != entry["sha256"]
            ):
                _checks.fail(
                    fn,
                    "path",
                    "must be an intact file",
                    f"{path!r}, whose leaf {name} fails its SHA-256 check",
                )
            array = raw.view(dtype) if raw.dtype != dtype else raw
            value = jnp.asarray(array)
            if "key_impl" in entry:
                value = jax.random.wrap_key_data(value, impl=entry["key_impl"])
            leaves.append(value)
    treedef = jax.tree.structure(like)
    return jax.tree.unflatten(treedef, leaves)


def _is_key(x: Any) -> bool:
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _template(leaf: Any) -> tuple[tuple[int, ...], jnp.dtype]:
    """The shape and stored dtype a leaf of `like` asks for."""
    if _is_key(leaf):
        leaf = jax.random.key_data(leaf)
    array = np.asarray(leaf) if not isinstance(leaf, jax.Array) else leaf
    return tuple(array.shape), jnp.dtype(array.dtype)
