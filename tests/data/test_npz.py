"""NumPy .npz sources: x and y (and classes), with every bad field named."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from swarmcnn.data import DataConfig, load_data
from swarmcnn.errors import DataError


def _npz(path: Path, **arrays) -> str:
    arrays.setdefault("x", np.random.default_rng(0).integers(0, 256, (30, 6, 5), dtype=np.uint8))
    arrays.setdefault("y", np.arange(30) % 3)
    np.savez(path, **arrays)
    return str(path)


def _raises(match: str):
    return pytest.raises(DataError, match=re.escape(match))


def test_grayscale_uint8_npz_loads_as_one_channel(tmp_path):
    data = load_data(_npz(tmp_path / "d.npz"))
    assert data.input_shape == (1, 6, 5)
    assert data.train.x.dtype == torch.uint8 and data.train.y.dtype == torch.int64
    assert data.class_names == ("0", "1", "2")
    assert len(data.train) + len(data.val) + len(data.test) == 30


def test_channels_last_rgb_becomes_channels_first(tmp_path):
    x = np.zeros((30, 6, 5, 3), dtype=np.uint8)
    x[..., 1] = 9
    data = load_data(_npz(tmp_path / "d.npz", x=x))
    assert data.input_shape == (3, 6, 5)
    assert data.train.x.is_contiguous() and (data.train.x[:, 1] == 9).all() and (data.train.x[:, 0] == 0).all()


def test_integer_data_within_byte_range_becomes_uint8(tmp_path):
    data = load_data(_npz(tmp_path / "d.npz", x=np.full((30, 4, 4, 1), 200, dtype=np.int64)))
    assert data.input_shape == (1, 4, 4)
    assert data.train.x.dtype == torch.uint8 and (data.train.x == 200).all()


def test_integers_beyond_a_byte_keep_their_values_as_float32(tmp_path):
    data = load_data(_npz(tmp_path / "d.npz", x=np.full((30, 4, 4), 4000, dtype=np.uint16)))
    assert data.train.x.dtype == torch.float32 and (data.train.x == 4000).all()


def test_float_data_stays_float32(tmp_path):
    x = np.random.default_rng(0).random((30, 4, 4))
    data = load_data(_npz(tmp_path / "d.npz", x=x))
    assert data.train.x.dtype == torch.float32 and data.train.x.is_contiguous()
    assert float(data.train.x.max()) <= 1.0


def test_float_data_is_resized_as_float(tmp_path):
    data = load_data(_npz(tmp_path / "d.npz", x=np.full((30, 4, 4), 0.5)), DataConfig(image_size=(8, 8)))
    assert data.input_shape == (1, 8, 8) and data.train.x.dtype == torch.float32
    assert torch.allclose(data.train.x, torch.tensor(0.5))


def test_classes_field_names_the_classes(tmp_path):
    data = load_data(_npz(tmp_path / "d.npz", classes=np.array(["cat", "dog", "owl"])))
    assert data.class_names == ("cat", "dog", "owl")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_x_names_the_file_and_field(tmp_path, bad):
    x = np.zeros((30, 4, 4), dtype=np.float32)
    x[17, 2, 3] = bad
    path = _npz(tmp_path / "d.npz", x=x)
    with _raises(f"npz file '{path}' field 'x' holds NaN or infinite values (first in sample 17)"):
        load_data(path)


def test_non_integer_labels_are_refused(tmp_path):
    path = _npz(tmp_path / "d.npz", y=(np.arange(30) % 3).astype(float))
    with _raises(f"npz file '{path}' field 'y' has dtype float64; labels must be integers"):
        load_data(path)


def test_negative_label_is_out_of_range(tmp_path):
    y = np.arange(30) % 3
    y[4] = -1
    path = _npz(tmp_path / "d.npz", y=y)
    with _raises(f"npz file '{path}' field 'y': labels out of range: found -1"):
        load_data(path)


def test_label_beyond_the_class_names_is_out_of_range(tmp_path):
    path = _npz(tmp_path / "d.npz", classes=np.array(["cat", "dog"]))
    with _raises(f"npz file '{path}' field 'y': labels out of range: found 2, expected 0..1"):
        load_data(path)


@pytest.mark.parametrize("field", ["x", "y"])
def test_missing_field_is_named(tmp_path, field):
    path = tmp_path / "d.npz"
    arrays = {"x": np.zeros((30, 4, 4), dtype=np.uint8), "y": np.arange(30) % 3}
    del arrays[field]
    np.savez(path, **arrays, extra=np.zeros(3))
    with _raises(f"npz file '{path}' has no field '{field}'"):
        load_data(str(path))


def test_samples_and_labels_of_different_length_are_refused(tmp_path):
    path = _npz(tmp_path / "d.npz", y=np.arange(29) % 3)
    with _raises(f"npz file '{path}': field 'x' has 30 samples but field 'y' has 29 labels"):
        load_data(path)


@pytest.mark.parametrize("shape", [(30,), (30, 1, 4, 4, 1, 1)])  # (30, 16) is 30 signals of 16 instants
def test_x_of_the_wrong_shape_is_refused(tmp_path, shape):
    path = _npz(tmp_path / "d.npz", x=np.zeros(shape, dtype=np.uint8))
    with _raises(f"npz file '{path}' field 'x' has shape {shape}"):
        load_data(path)


def test_garbage_file_is_refused(tmp_path):
    path = tmp_path / "d.npz"
    path.write_bytes(b"this is not a zip archive at all")
    with _raises(f"cannot read npz file '{path}'"):
        load_data(str(path))


def test_truncated_npz_is_refused(tmp_path):
    path = Path(_npz(tmp_path / "d.npz"))
    path.write_bytes(path.read_bytes()[:300])
    with _raises(f"'{path}'"):
        load_data(str(path))


def test_object_arrays_are_not_unpickled(tmp_path):
    path = _npz(tmp_path / "d.npz", classes=np.array(["cat", "dog", 3], dtype=object))
    with _raises(f"npz file '{path}' field 'classes' cannot be read without pickle"):
        load_data(path)


def test_single_npy_array_named_npz_is_refused(tmp_path):
    path = tmp_path / "d.npz"
    with path.open("wb") as stream:
        np.save(stream, np.zeros(3))
    with _raises(f"'{path}' holds a single .npy array"):
        load_data(str(path))


def test_other_files_are_not_data_sources(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x,y\n")
    with _raises(f"cannot use file '{path}' as data"):
        load_data(str(path))


def test_only_one_class_is_refused(tmp_path):
    path = _npz(tmp_path / "d.npz", y=np.zeros(30, dtype=np.int64))
    with _raises(f"'{path}' has samples of only one class ('0')"):
        load_data(path)
