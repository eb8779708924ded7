"""Folders split into train/, test/ and optionally val/, and keeping the first N samples of each class."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from swarmcnn.cli import main
from swarmcnn.data import DataConfig, load_data
from swarmcnn.data.builtin import digits as digits_arrays
from swarmcnn.data.splits import Arrays, first_per_class
from swarmcnn.errors import DataError


def _write(path: Path, value, mode: str = "L", size: tuple[int, int] = (8, 8)) -> Path:
    """An image of one colour; size is (H, W)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (size[1], size[0]), value).save(path)
    return path


def _part(root: Path, counts: dict[str, int], base: int = 0, mode: str = "L", size: tuple[int, int] = (8, 8)) -> Path:
    """root/<class>/<i>.png for each class; image i of the k-th class has the value base + 10 * k + i."""
    for k, (name, count) in enumerate(counts.items()):
        for i in range(count):
            value = base + 10 * k + i
            _write(root / name / f"{i}.png", value if mode == "L" else (value, value, value), mode, size)
    return root


def _values(split) -> list[int]:
    return split.x.reshape(len(split), -1)[:, 0].tolist()


def _raises(match: str):
    return pytest.raises(DataError, match=re.escape(match))


def test_split_folder_keeps_its_own_test_split_with_labels_as_on_disk(tmp_path):
    _part(tmp_path / "train", {"cat": 6, "dog": 6})
    _part(tmp_path / "test", {"cat": 2, "dog": 3}, base=100)
    data = load_data(str(tmp_path))
    assert data.class_names == ("cat", "dog")
    assert sorted(_values(data.test)) == [100, 101, 110, 111, 112]
    names = {value: data.class_names[label] for value, label in zip(_values(data.test), data.test.y.tolist())}
    assert names == {100: "cat", 101: "cat", 110: "dog", 111: "dog", 112: "dog"}
    # val is carved from train/, and no test image leaks into training
    assert len(data.train) + len(data.val) == 12
    assert all(value < 100 for value in _values(data.train) + _values(data.val))


@pytest.mark.parametrize("val_name", ["val", "valid", "validation"])
def test_val_folder_is_the_validation_split_and_train_stays_whole(tmp_path, val_name):
    _part(tmp_path / "train", {"cat": 4, "dog": 4})
    _part(tmp_path / "test", {"cat": 2, "dog": 2}, base=100)
    _part(tmp_path / val_name, {"cat": 1, "dog": 3}, base=200)
    data = load_data(str(tmp_path))
    assert sorted(_values(data.val)) == [200, 210, 211, 212]
    assert data.val.y.tolist() == [0, 1, 1, 1]
    assert sorted(_values(data.train)) == [0, 1, 2, 3, 10, 11, 12, 13]
    assert len(data.test) == 4


def test_test_classes_map_to_train_indices_by_folder_name(tmp_path):
    _part(tmp_path / "train", {"ant": 4, "bee": 4, "cat": 4})
    _part(tmp_path / "test", {"ant": 2, "cat": 2}, base=100)  # no bee: cat is test/'s second folder, train's third
    data = load_data(str(tmp_path))
    assert data.class_names == ("ant", "bee", "cat")
    labels = dict(zip(_values(data.test), data.test.y.tolist(), strict=True))
    assert labels == {100: 0, 101: 0, 110: 2, 111: 2}


def test_test_class_that_train_lacks_is_refused_naming_it(tmp_path):
    _part(tmp_path / "train", {"cat": 4, "dog": 4})
    _part(tmp_path / "test", {"cat": 2, "dog": 2, "owl": 2}, base=100)
    with _raises(f"'{tmp_path / 'test'}' has class folder 'owl' that '{tmp_path / 'train'}' lacks"):
        load_data(str(tmp_path))


def test_val_class_that_train_lacks_is_refused_naming_it(tmp_path):
    _part(tmp_path / "train", {"cat": 4, "dog": 4})
    _part(tmp_path / "test", {"cat": 2, "dog": 2}, base=100)
    _part(tmp_path / "val", {"cat": 2, "emu": 2}, base=200)
    with _raises("class folder 'emu'"):
        load_data(str(tmp_path))


def test_gray_train_and_colour_test_become_colour_throughout(tmp_path):
    _part(tmp_path / "train", {"cat": 4, "dog": 4})
    _write(tmp_path / "test" / "cat" / "0.png", (200, 10, 20), "RGB")
    _write(tmp_path / "test" / "dog" / "0.png", (5, 6, 7), "RGB")
    data = load_data(str(tmp_path))
    assert data.input_shape == (3, 8, 8)
    assert data.train.x.shape[1] == data.val.x.shape[1] == data.test.x.shape[1] == 3
    gray = data.train.x[:, :, 0, 0]
    assert (gray == gray[:, :1]).all()  # a gray picture's colour version repeats its channel
    assert sorted(data.test.x[:, :, 0, 0].tolist()) == [[5, 6, 7], [200, 10, 20]]


def test_parts_of_different_sizes_are_refused_with_the_image_size_hint(tmp_path):
    _part(tmp_path / "train", {"cat": 4, "dog": 4})
    _part(tmp_path / "test", {"cat": 2, "dog": 2}, size=(6, 10))
    with pytest.raises(DataError) as caught:
        load_data(str(tmp_path))
    message = str(caught.value)
    assert f"'{tmp_path / 'test'}' holds inputs of 6x10" in message
    assert f"'{tmp_path / 'train'}' of 8x8" in message and "--image-size HxW" in message


def test_parts_of_different_sizes_load_when_an_image_size_is_given(tmp_path):
    _part(tmp_path / "train", {"cat": 4, "dog": 4})
    _part(tmp_path / "test", {"cat": 2, "dog": 2}, size=(6, 10))
    data = load_data(str(tmp_path), DataConfig(image_size=(5, 5)))
    assert data.input_shape == (1, 5, 5)
    assert data.test.x.shape == (4, 1, 5, 5)


def test_per_class_keeps_the_first_images_of_each_class_of_an_image_folder(tmp_path):
    _part(tmp_path, {"cat": 8, "dog": 6, "owl": 9})
    data = load_data(str(tmp_path), DataConfig(per_class=4))
    kept = sorted(_values(data.train) + _values(data.val) + _values(data.test))
    assert kept == [0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23]


def test_per_class_trims_train_of_a_split_folder_and_keeps_test_whole(tmp_path):
    _part(tmp_path / "train", {"cat": 8, "dog": 8})
    _part(tmp_path / "test", {"cat": 5, "dog": 4}, base=100)
    data = load_data(str(tmp_path), DataConfig(per_class=3))
    assert sorted(_values(data.train) + _values(data.val)) == [0, 1, 2, 10, 11, 12]
    assert len(data.test) == 9


def test_per_class_keeps_the_first_samples_of_each_digit():
    data = load_data("digits", DataConfig(per_class=5))
    x = torch.cat([data.train.x, data.val.x, data.test.x]).reshape(50, -1)
    y = torch.cat([data.train.y, data.val.y, data.test.y])
    expected = first_per_class(digits_arrays(), 5)
    assert np.bincount(y.numpy()).tolist() == [5] * 10
    rows = sorted(zip(y.tolist(), map(tuple, x.tolist())))
    assert rows == sorted(zip(expected.y.tolist(), map(tuple, expected.x.reshape(50, -1).tolist())))


def test_first_per_class_keeps_source_order_and_short_classes_whole():
    y = np.array([2, 0, 2, 1, 0, 2, 0, 2])
    kept = first_per_class(Arrays(np.arange(8)[:, None], y, ("a", "b", "c")), 2)
    assert kept.x[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert kept.y.tolist() == [2, 0, 2, 1, 0]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_per_class_must_be_a_positive_integer(bad):
    with _raises(f"per_class (samples per class) must be a positive integer, got {bad!r}"):
        DataConfig(per_class=bad)


def test_cli_trains_on_a_split_folder_and_evaluates_its_whole_test_part(tmp_path, capsys):
    data = tmp_path / "data"
    _part(data / "train", {"cat": 6, "dog": 6})
    _part(data / "test", {"cat": 3, "dog": 4}, base=100)
    out = tmp_path / "model"
    train = ["train", str(data), "--arch", "conv4x3 relu fc8 relu", "--per-class", "3", "--epochs", "1"]
    assert main([*train, "--quiet", "--out", str(out)]) == 0
    assert json.loads((out / "model.json").read_text())["data"]["per_class"] == 3
    capsys.readouterr()
    assert main(["evaluate", str(out), str(data), "--split", "test", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == len(list((data / "test").glob("*/*.png"))) == 7
