"""Arrays in memory as a data set: read, split and refused exactly as an .npz file of the same arrays."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import swarmcnn
from swarmcnn.data import DataConfig, from_arrays, load_data
from swarmcnn.errors import DataError


def _pictures(n: int = 30, shape: tuple[int, ...] = (6, 5)) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).integers(0, 256, (n, *shape), dtype=np.uint8)
    return x, np.arange(n) % 3


def _same(a, b) -> None:
    assert a.class_names == b.class_names and a.input_shape == b.input_shape
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(a, split).x, getattr(b, split).x)
        assert torch.equal(getattr(a, split).y, getattr(b, split).y)


@pytest.mark.parametrize(
    ("shape", "layout"), [((6, 5), None), ((6, 5, 3), None), ((3, 6, 5), "NCHW"), ((4, 6, 5), "NTHW")]
)
def test_arrays_give_the_data_set_an_npz_file_of_the_same_arrays_gives(tmp_path, shape, layout):
    x, y = _pictures(30, shape)
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y, **({"layout": layout} if layout else {}))
    config = DataConfig(val_fraction=0.2, test_fraction=0.1, split_seed=3)
    _same(from_arrays(x, y, layout=layout, val_fraction=0.2, test_fraction=0.1, seed=3), load_data(str(path), config))


def test_class_names_name_integer_labels_as_the_npz_field_classes_does(tmp_path):
    x, y = _pictures()
    np.savez(tmp_path / "d.npz", x=x, y=y, classes=np.array(["cat", "dog", "owl"]))
    _same(from_arrays(x, y, class_names=["cat", "dog", "owl"]), load_data(str(tmp_path / "d.npz")))


def test_labels_given_by_name_become_sorted_classes_or_follow_class_names():
    x, _ = _pictures()
    names = np.array(["owl", "cat", "dog"])[np.arange(30) % 3]
    whole = {"val_fraction": 0.0, "test_fraction": 0.0}  # no split: the training split is x in its order
    data = from_arrays(x, names, **whole)
    ordered = from_arrays(x, list(names), class_names=("owl", "dog", "cat"), **whole)
    assert data.class_names == ("cat", "dog", "owl") and ordered.class_names == ("owl", "dog", "cat")
    for made in (data, ordered):
        assert [made.class_names[i] for i in made.train.y.tolist()] == names.tolist()


def test_torch_tensors_and_float_pictures_are_taken_as_arrays_are():
    x, y = _pictures()
    assert torch.equal(from_arrays(torch.from_numpy(x), torch.from_numpy(y)).train.x, from_arrays(x, y).train.x)
    floats = from_arrays(x.astype(np.float64) / 255, y)
    assert floats.train.x.dtype == torch.float32 and float(floats.train.x.max()) <= 1.0


def test_clips_become_channels_first_video():
    x = np.zeros((20, 4, 6, 6, 3), dtype=np.uint8)
    assert from_arrays(x, np.arange(20) % 2).input_shape == (3, 4, 6, 6)


@pytest.mark.parametrize(
    ("x", "y", "options", "message"),
    [
        (np.zeros((30, 4, 4), bool), np.arange(30) % 3, {}, "array x has dtype bool; expected integers or floats"),
        (np.zeros(30), np.arange(30) % 3, {}, "array x has shape (30,); expected (N, H, W)"),
        (np.zeros((30, 4, 4)), np.arange(29) % 3, {}, "array x has 30 samples but array y has 29 labels"),
        (np.zeros((30, 4, 4)), (np.arange(30) % 3) * 0.5, {}, "array y has dtype float64; labels must be integers"),
        (np.zeros((30, 4, 4)), np.arange(30) % 3 - 1, {}, "array y: labels out of range: found -1"),
        (np.zeros((0, 4, 4)), np.zeros(0, int), {}, "the arrays hold no samples"),
        (np.zeros((30, 3, 5, 5)), np.arange(30) % 3, {}, "array x of shape (30, 3, 5, 5) is ambiguous"),
        (np.zeros((30, 3, 4, 4)), np.arange(30) % 3, {"layout": "NCWH"}, "layout is 'NCWH'; expected one of"),
        (np.zeros((30, 4, 4)), np.arange(30) % 3, {"class_names": ["a", "b"]}, "expected 0..1 (one per name in "
         "class_names)"),
        (np.zeros((30, 4, 4)), np.zeros(30, int), {}, "'arrays' has samples of only one class ('0')"),
    ],
)
def test_bad_arrays_are_refused_naming_the_argument(x, y, options, message):
    with pytest.raises(DataError, match=re.escape(message)) as caught:
        from_arrays(x, y, **options)
    assert "\n" not in str(caught.value)


def test_nan_in_float_pictures_is_refused_naming_the_sample():
    x = np.zeros((30, 4, 4))
    x[7, 1, 1] = np.nan
    with pytest.raises(DataError, match=re.escape("array x holds NaN or infinite values (first in sample 7)")):
        from_arrays(x, np.arange(30) % 3)


def test_a_label_name_outside_class_names_is_refused_naming_it():
    with pytest.raises(DataError, match="holds label 'emu', which is not one of class_names"):
        from_arrays(np.zeros((4, 4, 4)), ["cat", "dog", "emu", "cat"], class_names=["cat", "dog"])


def test_ragged_pictures_are_refused_in_one_line():
    with pytest.raises(DataError, match="array x cannot be read as one array"):
        from_arrays([np.zeros((4, 4)), np.zeros((5, 4))], [0, 1])


def test_from_arrays_is_public():
    assert swarmcnn.from_arrays is from_arrays and "from_arrays" in swarmcnn.__all__
