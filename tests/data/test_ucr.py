"""The UCR archive's text files: NAME_TRAIN.tsv / NAME_TEST.tsv, the older whitespace-separated NAME_TRAIN and
NAME_TRAIN.txt; labels first, written as floats; NaN padding of variable-length series."""

from __future__ import annotations

import numpy as np
import pytest

from swarmcnn.data import DataConfig, load_data
from swarmcnn.data.ucr import class_name, read_ucr
from swarmcnn.errors import DataError


def _rows(count: int, separator: str, label_format: str = "{}") -> str:
    lines = []
    for i in range(count):
        label = label_format.format(1 + i % 2)
        lines.append(separator.join([label, *(f"{i + t / 10:.7e}" for t in range(5))]))
    return "\n".join(lines) + "\n"


def test_a_tsv_pair_keeps_its_own_split_and_reads_float_labels_as_classes(tmp_path):
    (tmp_path / "Tiny_TRAIN.tsv").write_text(_rows(20, "\t", "{:.7e}"))
    (tmp_path / "Tiny_TEST.tsv").write_text(_rows(6, "\t", "{:.7e}"))
    data = load_data(str(tmp_path), DataConfig(val_fraction=0.2))
    assert data.class_names == ("1", "2") and data.input_shape == (1, 5)
    assert (len(data.train), len(data.val), len(data.test)) == (16, 4, 6)
    assert np.allclose(sorted(data.test.x[:, 0, 0].tolist()), range(6))
    first = int(np.argmin(data.test.x[:, 0, 0].numpy()))
    assert data.class_names[int(data.test.y[first])] == "1"


@pytest.mark.parametrize(("name", "separator"), [("Tiny_TRAIN", " "), ("Tiny_TRAIN.txt", "  "), ("Tiny_TRAIN", ",")])
def test_the_old_ucr_files_without_suffix_or_txt_read_alike(tmp_path, name, separator):
    (tmp_path / name).write_text(_rows(12, separator, "{:.7e}"))
    data = load_data(str(tmp_path / name), DataConfig(val_fraction=0.25, test_fraction=0.25))
    assert data.class_names == ("1", "2") and data.input_shape == (1, 5) and len(data.test) == 3


def test_numeric_classes_are_ordered_by_value_and_named_in_their_shortest_form(tmp_path):
    rows = [f"{label}\t0\t1\t2" for label in ("10", "9.0", "-1.0000000e+00", "2.5")] * 3
    (tmp_path / "d.tsv").write_text("\n".join(rows))
    assert load_data(str(tmp_path / "d.tsv"), DataConfig(val_fraction=0.0, test_fraction=0.3)).class_names == (
        "-1", "2.5", "9", "10")
    assert class_name("1.0000000e+00", "here") == "1" and class_name("walk", "here") == "walk"


def test_trailing_nans_shorten_a_series_and_inner_nans_are_filled(tmp_path):
    rows = ["1\t0\t1\t2\t3", "2\t3\tNaN\t1\tNaN", "1\t0\t3\tNaN\tNaN", "2\t3\t2\t1\t0"] * 3
    (tmp_path / "d.tsv").write_text("\n".join(rows))
    series = read_ucr(tmp_path / "d.tsv")
    assert series.lengths[:4] == [4, 3, 2, 4] and series.filled == 3
    assert np.allclose(series.cases[1][0], [3, 2, 1])
    data = load_data(str(tmp_path / "d.tsv"), DataConfig(val_fraction=0.25, test_fraction=0.25))
    assert data.input_shape == (1, 4) and data.signal.resampled == 6 and data.signal.filled == 3


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("1\t0\t1\n2\t0\tx\n", ["line 2", "value 2", "'x' is not a number"]),
        ("1\t0\t1\n2\n", ["line 2", "an empty series"]),
        ("1\t0\t1\nNaN\t1\t2\n", ["line 2", "label", "missing"]),
        ("1\t0\t1\n2\t1e400\t2\n", ["line 2", "beyond float32"]),
        ("", ["holds no series"]),
    ],
)
def test_a_malformed_ucr_file_ends_in_one_error_naming_the_file_and_line(tmp_path, text, words):
    path = tmp_path / "bad.tsv"
    path.write_text(text)
    with pytest.raises(DataError) as caught:
        read_ucr(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert all(word in message for word in words), message
