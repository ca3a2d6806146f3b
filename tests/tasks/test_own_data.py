"""Your own data: series from CSV and .npy files, texts, and their errors."""

import re

import numpy as np
import pytest

from jaxrnn import tasks

VALUES = 10 + np.sin(np.arange(200) / 4.0) + 0.01 * np.arange(200)


@pytest.fixture
def files(tmp_path):
    """A CSV with a header and three columns, one without, and .npy arrays."""
    with open(tmp_path / "load.csv", "w") as f:
        f.write("hour,load,temp\n")
        for i, v in enumerate(VALUES):
            f.write(f"{i},{float(v)!r},{20 + i % 3}\n")
    (tmp_path / "plain.csv").write_text("".join(f"{float(v)!r}\n" for v in VALUES))
    np.save(tmp_path / "one.npy", VALUES)
    np.save(tmp_path / "two.npy", np.stack([VALUES * 2, VALUES], axis=1))
    return tmp_path


def test_a_series_reads_the_same_from_every_form(files):
    for path, column in [
        ("load.csv", "load"),
        ("load.csv", "1"),
        ("load.csv", 1),
        ("plain.csv", None),
        ("one.npy", None),
        ("two.npy", 1),
        ("two.npy", "1"),
    ]:
        got = tasks.read_series(files / path, column)
        np.testing.assert_array_equal(got, VALUES, err_msg=f"{path} {column}")


def _bad(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(path, content)
    else:
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


@pytest.mark.parametrize(
    "name, content, column, message",
    [
        (
            "ragged.csv",
            "a,b\n1,2\n3\n",
            "a",
            r", line 3: has 1 cell: expected 2",
        ),
        (
            "word.csv",
            "a,b\n1,2\n3,x\n",
            "b",
            r"line 3, column 'b': 'x' is not a number",
        ),
        ("empty.csv", "", None, r": holds no rows"),
        ("head.csv", "value\n", None, r"holds a header row and no values"),
        ("nan.csv", "1\n2\nnan\n", None, r"value 2 is nan: expected finite numbers"),
        ("cols.csv", "a,b\n1,2\n", "c", r"has 2 columns \(a, b\): give --column"),
        ("cols.csv", "a,b\n1,2\n", None, r"an index 0 to 1, got None"),
        ("three.npy", np.zeros((2, 2, 2)), None, r"has shape \(2, 2, 2\): expected"),
        ("text.npy", np.array(["a", "b"]), None, r"holds <U1 values: expected numbers"),
        ("wide.npy", np.zeros((5, 3)), 3, r"has 3 columns .*give --column 0 to 2"),
    ],
)
def test_a_bad_series_file_is_refused_by_name_line_and_column(
    tmp_path, name, content, column, message
):
    path = _bad(tmp_path, name, content)
    with pytest.raises(ValueError, match=re.escape(str(path)) + r".*" + message):
        tasks.read_series(path, column)


def test_a_missing_file_and_an_unknown_ending_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"nothing\.csv: no such file"):
        tasks.read_series(tmp_path / "nothing.csv")
    with pytest.raises(ValueError, match=r"by the ending '\.json'.*--task series"):
        tasks.kind_of("data.json")
    assert tasks.kind_of("a/b.CSV") == "series" and tasks.kind_of("x.txt") == "text"


def test_a_series_task_forecasts_like_the_real_series(files):
    task = tasks.make_task("series", data=str(files / "load.csv"), column="load")
    data = tasks.split_series(VALUES, 100, 1)
    assert task.many_to_one and task.metric == "rmse" and task.input_size == 1
    assert task.splits["test"].xs.shape == (len(data.test.start), 100, 1)
    assert set(task.baselines["test"]) == {"last_value", "linear_ar"}
    assert task.baselines == {
        s: tasks.forecast_baselines(data, s) for s in ("valid", "test")
    }
    with pytest.raises(ValueError, match=r"load\.csv, column load: split_series: the"):
        tasks.make_task(
            "series", data=str(files / "load.csv"), column="load", seq_len=150
        )


def test_a_text_task_is_a_character_model_of_the_file(tmp_path):
    path = tmp_path / "poem.txt"
    path.write_text("abcab " * 100, encoding="utf-8")
    task = tasks.make_task("text", data=str(path), seq_len=10)
    assert task.info["vocab"] == " abc" and task.metric == "loss"
    assert set(task.baselines["valid"]) == {"unigram", "uniform"}
    with pytest.raises(ValueError, match=r"poem\.txt: its 600 characters are too few"):
        tasks.make_task("text", data=str(path), seq_len=60)
    bad = _bad(tmp_path, "bad.txt", b"ok\xff")
    with pytest.raises(ValueError, match=r"bad\.txt, byte 2: is not UTF-8 text"):
        tasks.read_text(bad)
    with pytest.raises(ValueError, match=r"empty\.txt: holds no characters"):
        tasks.read_text(_bad(tmp_path, "empty.txt", ""))


def test_data_goes_with_the_own_data_tasks_only(files):
    with pytest.raises(ValueError, match=r"data=FILE goes with the series and text"):
        tasks.make_task("sine", data=str(files / "one.npy"))
    with pytest.raises(ValueError, match=r"data=FILE goes with the series and text"):
        tasks.make_task("series")
