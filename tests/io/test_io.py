"""jaxrnn.io: exact round trips, no pickle, atomic writes, and clear refusals."""

import json
import os
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxrnn
from helpers import x64
from jaxrnn import io, train


def _bits_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(
            np.asarray(x).reshape(-1).view(np.uint8),
            np.asarray(y).reshape(-1).view(np.uint8),
        )


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16, jnp.float64])
def test_params_and_optimizer_state_round_trip_exactly(
    dtype, tmp_path, getkey, standard_promotion
):
    with x64():
        params = jaxrnn.init_layer(
            getkey(),
            "lstm",
            3,
            5,
            num_layers=2,
            bidirectional=True,
            learn_initial_state=True,
            dtype=dtype,
        )
        optimizer = train.make_optimizer(1e-3)
        state = optimizer.init(params)
        tree = {"params": params, "opt_state": state, "key": jax.random.key(3)}
        path = tmp_path / "run.jaxrnn"
        io.save(path, tree, metadata={"step": 7, "cell": "lstm"})
        again = io.load(path, like=tree)
        assert jax.tree.structure(again) == jax.tree.structure(tree)
        _bits_equal(again, tree)
        assert io.load_metadata(path) == {"step": 7, "cell": "lstm"}
        # The optimizer state works after loading: one update runs.
        grads = jax.tree.map(jnp.ones_like, params)
        optimizer.update(grads, again["opt_state"], again["params"])


def test_the_file_holds_no_pickle(tmp_path, getkey):
    path = tmp_path / "p.jaxrnn"
    io.save(path, jaxrnn.init_layer(getkey(), "gru", 3, 5, dtype=jnp.bfloat16))
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["format"] == "jaxrnn.io/1"
        for name in archive.namelist():
            if name.endswith(".npy"):
                with archive.open(name) as member:
                    np.lib.format.read_array(member, allow_pickle=False)


def test_a_crash_during_a_write_keeps_the_old_file(tmp_path, getkey, monkeypatch):
    path = tmp_path / "params.jaxrnn"
    old = jaxrnn.init_layer(getkey(), "gru", 3, 5)
    io.save(path, old)
    before = path.read_bytes()
    new = jax.tree.map(lambda a: a + 1, old)
    calls = []

    def crash_on_second_array(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated crash mid-write")
        return real_save(*args, **kwargs)

    real_save = np.save
    monkeypatch.setattr(np, "save", crash_on_second_array)
    with pytest.raises(KeyboardInterrupt):
        io.save(path, new)
    monkeypatch.undo()
    assert path.read_bytes() == before  # untouched
    assert sorted(os.listdir(tmp_path)) == ["params.jaxrnn"]  # no temp file left
    _bits_equal(io.load(path, like=old), old)
    # A crash between writing and renaming leaves the old file as well.
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("x")))
    with pytest.raises(OSError):
        io.save(path, new)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["params.jaxrnn"]


def test_truncated_corrupted_and_foreign_files_are_refused(tmp_path, getkey):
    params = jaxrnn.init_layer(getkey(), "lstm", 3, 5)
    path = tmp_path / "p.jaxrnn"
    io.save(path, params)
    data = path.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 5):
        (tmp_path / "cut.jaxrnn").write_bytes(data[:cut])
        with pytest.raises(
            ValueError, match=r"load: path must be .*(truncated|intact)"
        ):
            io.load(tmp_path / "cut.jaxrnn", like=params)
    # Flip one byte inside the last array's data.
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(archive.namelist()[-1])
    offset = info.header_offset + 30 + len(info.filename) + info.file_size - 3
    corrupted = bytearray(data)
    corrupted[offset] ^= 0xFF
    (tmp_path / "bad.jaxrnn").write_bytes(bytes(corrupted))
    with pytest.raises(ValueError, match=r"load: path must be"):
        io.load(tmp_path / "bad.jaxrnn", like=params)
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("manifest.json", json.dumps({"format": "something/2"}))
    with pytest.raises(ValueError, match=r"must hold the format 'jaxrnn.io/1'"):
        io.load(tmp_path / "other.zip", like=params)
    with pytest.raises(ValueError, match=r"load: path must be an existing file"):
        io.load(tmp_path / "missing.jaxrnn", like=params)


def test_another_architecture_is_refused_by_name(tmp_path, getkey):
    path = tmp_path / "p.jaxrnn"
    io.save(path, jaxrnn.init_layer(getkey(), "lstm", 3, 5))
    with pytest.raises(
        ValueError, match=r"the leaf .cells\[0\]\[0\].w_ih must have the"
    ):
        io.load(path, like=jaxrnn.init_layer(getkey(), "lstm", 3, 6))
    with pytest.raises(ValueError, match=r"structure of `like`.*missing"):
        io.load(path, like=jaxrnn.init_layer(getkey(), "gru", 3, 5))
    with pytest.raises(ValueError, match=r"must have the dtype of like.*float32"):
        io.load(
            path,
            like=jaxrnn.init_layer(getkey(), "lstm", 3, 5, dtype=jnp.bfloat16),
        )


def test_numpy_and_jax_scalars_in_metadata_are_stored_as_numbers(tmp_path, getkey):
    params = jaxrnn.init_layer(getkey(), "rnn", 3, 5)
    metadata = {
        "loss": np.float32(0.1),
        "step": np.int64(7),
        "best": {"rmse": jnp.asarray(2.5)},
        "flags": [np.bool_(True), np.array(3)],
    }
    io.save(tmp_path / "p", params, metadata=metadata)
    back = io.load_metadata(tmp_path / "p")
    loss = float(np.float32(0.1))  # the float32's own value, not 0.1
    assert back == {"loss": loss, "step": 7, "best": {"rmse": 2.5}, "flags": [True, 3]}
    assert type(back["step"]) is int


def test_save_errors(tmp_path, getkey):
    params = jaxrnn.init_layer(getkey(), "rnn", 3, 5)
    with pytest.raises(TypeError, match=r"save: metadata must be JSON-serialisable"):
        io.save(tmp_path / "p", params, metadata={"f": object()})
    with pytest.raises(TypeError, match=r"ndarray is not JSON serializable"):
        io.save(tmp_path / "p", params, metadata={"f": np.zeros(2)})
    with pytest.raises(ValueError, match=r"save: path must be in an existing folder"):
        io.save(tmp_path / "no" / "p", params)
    with pytest.raises(TypeError, match=r"save: tree\['name'\] must be a numeric"):
        io.save(tmp_path / "p", {"name": "lstm"})
    assert os.listdir(tmp_path) == []


def test_an_optax_state_from_another_optimizer_is_refused(tmp_path, getkey):
    params = jaxrnn.init_layer(getkey(), "gru", 3, 5)
    path = tmp_path / "s.jaxrnn"
    io.save(path, optax.adam(1e-3).init(params))
    with pytest.raises(ValueError, match=r"structure of `like`"):
        io.load(path, like=optax.sgd(1e-3, momentum=0.9).init(params))
