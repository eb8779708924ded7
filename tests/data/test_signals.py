"""Signals in arrays (.npz, from_arrays, the built-in bumps), their preparation (missing values, one length, the
per-series z-normalisation) and the cases of files to classify."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from swarmcnn.data import DataConfig, from_arrays, load_data, load_inputs
from swarmcnn.data.builtin import BUMP_SHAPES
from swarmcnn.data.signal_files import load_cases
from swarmcnn.errors import DataError
from swarmcnn.inference import standardized_series


def _signals(count: int = 30, channels: int = 2, length: int = 16) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(count, channels, length)).astype(np.float64) * 5 + 3


def test_arrays_of_signals_need_layout_ncl_where_they_could_be_gray_pictures(tmp_path):
    x, y = _signals(), np.arange(30) % 3
    assert from_arrays(x, y).input_shape == (1, 2, 16)  # (N, H, W): gray pictures, as before signals
    data = from_arrays(x, y, layout="NCL")
    assert data.input_shape == (2, 16) and data.train.x.dtype == torch.float32
    assert from_arrays(x[:, 0], y).input_shape == (1, 16)  # (N, L) is one channel of signals, unambiguous
    np.savez(tmp_path / "s.npz", x=x, y=y, layout="NCL")
    assert load_data(str(tmp_path / "s.npz")).input_shape == (2, 16)


def test_signals_may_have_any_number_of_channels(tmp_path):
    assert from_arrays(_signals(channels=12), np.arange(30) % 2, layout="NCL").input_shape == (12, 16)


def test_missing_values_in_arrays_are_filled_along_time_and_counted():
    x = _signals()
    x[0, 1, 3:6] = np.nan
    x[4, 0, 0] = np.nan
    data = from_arrays(x, np.arange(30) % 3, layout="NCL", val_fraction=0.0, test_fraction=0.0)
    row = int(np.flatnonzero(np.isclose(data.train.x[:, 0, 0].numpy(), x[0, 0, 0]))[0])
    expected = np.interp([3, 4, 5], [2, 6], x[0, 1, [2, 6]])
    assert np.allclose(data.train.x[row, 1, 3:6].numpy(), expected, atol=1e-5)
    assert bool(torch.isfinite(data.train.x).all()) and data.signal.filled == 4


def test_length_resamples_arrays_linearly_and_is_counted():
    x = np.tile(np.linspace(0, 1, 16), (30, 1, 1))
    data = from_arrays(x, np.arange(30) % 3, layout="NCL", length=31, val_fraction=0.0, test_fraction=0.0)
    assert data.input_shape == (1, 31) and np.allclose(data.train.x[0, 0].numpy(), np.linspace(0, 1, 31), atol=1e-6)
    assert data.signal.resampled == 30 and "30 of 30 series of 16 instants resampled to 31" in data.signal.describe()


def test_series_normalization_brings_each_series_to_mean_0_and_std_1_as_models_do():
    x = _signals()
    data = from_arrays(x, np.arange(30) % 3, layout="NCL", normalize="series", val_fraction=0.0, test_fraction=0.0)
    stored = data.train.x
    assert data.normalize == "series"
    assert torch.allclose(stored.mean(-1), torch.zeros(()), atol=1e-5)
    assert torch.allclose(stored.std(-1, unbiased=False), torch.ones(()), atol=1e-4)
    raw = torch.from_numpy(x.astype(np.float32))
    assert torch.allclose(standardized_series(raw).sort(0).values, stored.sort(0).values, atol=1e-5)
    assert torch.allclose(standardized_series(stored), stored, atol=1e-5)  # applying it again changes nothing


def test_a_flat_series_is_centred_not_blown_up():
    flat = torch.full((1, 1, 50), 1234.5)
    assert float(standardized_series(flat).abs().max()) < 1e-3


@pytest.mark.parametrize(
    ("source", "config", "words"),
    [
        ("digits", DataConfig(length=10), ["length=10 is for signals", "pictures"]),
        ("digits", DataConfig(normalize="series"), ["normalize='series' is for signals"]),
        ("bumps", DataConfig(image_size=(8, 8)), ["signals", "--length"]),
    ],
)
def test_settings_of_one_kind_of_input_are_refused_for_another(source, config, words):
    with pytest.raises(DataError) as caught:
        load_data(source, config)
    assert all(word in str(caught.value) for word in words), str(caught.value)


@pytest.mark.parametrize(("field", "value"), [("length", 0), ("length", 2.5), ("normalize", "serie")])
def test_data_config_refuses_a_bad_length_or_normalization(field, value):
    with pytest.raises(DataError, match=field):
        DataConfig(**{field: value})


def test_the_built_in_bumps_are_signals_whose_classes_share_their_values():
    data = load_data("bumps")
    assert data.input_shape == (2, 96) and data.class_names == BUMP_SHAPES
    assert len(data.train) + len(data.val) + len(data.test) == 900 and data.signal.length == 96
    assert torch.equal(load_data("bumps").train.x, data.train.x)  # generated from a fixed seed
    x, y = torch.cat([data.train.x, data.test.x]), torch.cat([data.train.y, data.test.y])
    means = [float(x[y == k, 0].mean()) for k in range(3)]
    assert max(means) - min(means) < 0.05  # the same values in another order: only the order tells the class


def test_cases_of_ts_and_npy_files_are_read_at_the_models_shape(tmp_path):
    (tmp_path / "cases.ts").write_text("@classLabel false\n@data\n0,1,2,3:1,1,1,1\n0,?,4:2,2,2\n")
    x = load_cases(tmp_path / "cases.ts", (2, 5))
    assert x.shape == (2, 2, 5) and np.allclose(x[1, 0], [0, 1, 2, 3, 4])
    np.save(tmp_path / "cases.npy", np.arange(30, dtype=np.float64).reshape(3, 10))
    assert load_cases(tmp_path / "cases.npy", (1, 10)).shape == (3, 1, 10)
    origins, inputs = load_inputs([tmp_path / "cases.ts", tmp_path / "cases.ts"], (2, 5))
    assert origins[1] == (str(tmp_path / "cases.ts"), 1) and origins[2][1] == 0 and inputs.shape == (4, 2, 5)


@pytest.mark.parametrize(
    ("name", "content", "shape", "words"),
    [
        ("cases.ts", "@classLabel false\n@data\n0,1,2\n", (2, 3), ["1 channel(s)", "takes 2"]),
        ("cases.npy", np.zeros((3, 4, 10)), (2, 10), ["(3, 4, 10)", "(N, 2, L)"]),
        ("cases.npy", np.zeros((3, 10)), (2, 10), ["(3, 10)", "(N, 2, L)"]),
        ("cases.npy", np.array([["a", "b"]]), (1, 10), ["dtype"]),
        ("picture.png", b"not a series", (1, 10), ["not a file of series"]),
    ],
)
def test_a_file_that_is_not_cases_of_the_models_shape_is_refused_in_one_line(tmp_path, name, content, shape, words):
    path = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(path, content)
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError) as caught:
        load_cases(path, shape)
    assert all(word in str(caught.value) for word in words), str(caught.value)
