"""IDX folders (MNIST format): loose file names, gzip, their own test split, and every broken file named."""

from __future__ import annotations

import gzip
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from swarmcnn.data import DataConfig, load_data
from swarmcnn.errors import DataError

MNIST_5K = Path("/work/shared/datasets/mnist-5k")


def _idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    magic = magic if magic is not None else (0x803 if array.ndim == 3 else 0x801)
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def _idx_folder(root: Path, train: int = 40, test: int = 12, classes: int = 4, gz: bool = False, sep: str = "-"):
    """A small IDX folder whose pictures hold their label as every pixel value."""
    suffix = ".gz" if gz else ""
    for part, count in (("train", train), ("t10k", test)):
        labels = np.arange(count) % classes
        images = np.broadcast_to(labels[:, None, None], (count, 6, 5))
        _write(root / f"{part}-images{sep}idx3-ubyte{suffix}", _idx_bytes(images))
        _write(root / f"{part}-labels{sep}idx1-ubyte{suffix}", _idx_bytes(labels))
    return root


def _raises(match: str):
    return pytest.raises(DataError, match=re.escape(match))


def test_idx_folder_keeps_its_own_test_split(tmp_path):
    data = load_data(str(_idx_folder(tmp_path)))
    assert len(data.test) == 12 and len(data.train) + len(data.val) == 40
    assert data.input_shape == (1, 6, 5)
    assert data.class_names == ("0", "1", "2", "3")
    assert torch.equal(data.test.y, torch.arange(12) % 4)


def test_idx_pictures_keep_their_labels_and_dtypes(tmp_path):
    data = load_data(str(_idx_folder(tmp_path)))
    for split in (data.train, data.val, data.test):
        assert split.x.dtype == torch.uint8 and split.y.dtype == torch.int64 and split.x.is_contiguous()
        assert torch.equal(split.x[:, 0, 0, 0].long(), split.y)


def test_validation_is_carved_stratified_from_train(tmp_path):
    data = load_data(str(_idx_folder(tmp_path)), DataConfig(val_fraction=0.2))
    assert len(data.val) == 8
    assert data.val.y.bincount().tolist() == [2, 2, 2, 2]


def test_test_fraction_is_ignored_for_idx(tmp_path):
    data = load_data(str(_idx_folder(tmp_path)), DataConfig(test_fraction=0.5))
    assert len(data.test) == 12 and len(data.train) + len(data.val) == 40


@pytest.mark.parametrize(("gz", "sep"), [(True, "-"), (True, "."), (False, ".")])
def test_gzipped_and_dotted_file_names_are_found(tmp_path, gz, sep):
    data = load_data(str(_idx_folder(tmp_path, gz=gz, sep=sep)))
    assert len(data.test) == 12


def test_idx_pictures_are_resized_with_image_size(tmp_path):
    data = load_data(str(_idx_folder(tmp_path)), DataConfig(image_size=(12, 10)))
    assert data.input_shape == (1, 12, 10)
    assert data.train.x.shape[1:] == data.test.x.shape[1:] == (1, 12, 10)
    assert torch.equal(data.test.x[:, 0, 6, 5].long(), data.test.y)  # flat pictures keep their value


def test_wrong_magic_names_the_file(tmp_path):
    _idx_folder(tmp_path)
    path = _write(tmp_path / "train-labels-idx1-ubyte", _idx_bytes(np.zeros(40), magic=0x803))
    with _raises(f"'{path}' is not an IDX labels file: magic number should be 0x00000801, found 0x00000803"):
        load_data(str(tmp_path))


def test_truncated_file_names_the_file(tmp_path):
    _idx_folder(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-7])
    with _raises(f"IDX file '{path}' is truncated"):
        load_data(str(tmp_path))


def test_file_cut_inside_its_header_names_the_file(tmp_path):
    _idx_folder(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:9])
    with _raises(f"IDX file '{path}' is truncated"):
        load_data(str(tmp_path))


def test_truncated_gzip_names_the_file(tmp_path):
    _idx_folder(tmp_path, gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:30])
    with _raises(f"cannot read IDX file '{path}'"):
        load_data(str(tmp_path))


def test_image_and_label_counts_that_disagree_name_both_files(tmp_path):
    _idx_folder(tmp_path)
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_bytes(np.zeros(39)))
    with _raises(
        f"IDX files '{tmp_path / 'train-images-idx3-ubyte'}' and '{tmp_path / 'train-labels-idx1-ubyte'}' "
        "disagree: 40 images but 39 labels"
    ):
        load_data(str(tmp_path))


def test_missing_test_file_is_named(tmp_path):
    _idx_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with _raises(f"IDX folder '{tmp_path}' has no t10k labels file (expected 't10k-labels-idx1-ubyte'"):
        load_data(str(tmp_path))


@pytest.mark.skipif(not MNIST_5K.is_dir(), reason=f"sample MNIST subset not present at {MNIST_5K}")
def test_mnist_5k_sample_loads_as_4000_train_and_1000_test():
    data = load_data(str(MNIST_5K))
    assert len(data.train) + len(data.val) == 4000 and len(data.test) == 1000
    assert data.input_shape == (1, 28, 28)
    assert data.class_names == tuple("0123456789")
    assert data.train.x.dtype == torch.uint8 and int(data.train.x.max()) == 255
