"""IDX folders (the MNIST / Fashion-MNIST format): train and t10k images and labels, plain or gzipped.

Format: http://yann.lecun.com/exdb/mnist/ -- a big-endian header (magic, then one uint32 per
dimension) followed by the raw uint8 values.
"""

from __future__ import annotations

import gzip
import math
import re
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from swarmcnn.data.files import check_regular_file
from swarmcnn.data.splits import Arrays
from swarmcnn.errors import DataError
from swarmcnn.memory import check_fits

# loose on purpose: the files circulate as 'train-images-idx3-ubyte', 'train-images.idx3-ubyte', '....gz'
PATTERN = re.compile(r"^(train|t10k)-(images|labels)[-.]idx[13]-ubyte(\.gz)?$", re.IGNORECASE)
MAGIC = {"images": 0x00000803, "labels": 0x00000801}


def is_idx_folder(folder: Path) -> bool:
    """Whether folder holds any IDX file, so that load_data reads it as IDX rather than as an image folder."""
    return any(PATTERN.match(p.name) for p in folder.iterdir() if not p.is_dir())


def load_folder(folder: Path) -> tuple[Arrays, Arrays]:
    """The train and the t10k (test) parts of an IDX folder, as (N, 1, H, W) uint8 and int64 labels.

    The classes are the label values the training labels hold (named by their values, in order), so a
    value that no training sample has makes no empty class; a test label of such a value is refused.
    """
    files = _find_files(folder)
    train_x, train_y = _read_pair(files["train", "images"], files["train", "labels"])
    test_x, test_y = _read_pair(files["t10k", "images"], files["t10k", "labels"])
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(
            f"IDX files '{files['train', 'images']}' and '{files['t10k', 'images']}' differ in image size: "
            f"{train_x.shape[1]}x{train_x.shape[2]} and {test_x.shape[1]}x{test_x.shape[2]}"
        )
    if len(test_y) == 0:
        raise DataError(f"IDX file '{files['t10k', 'labels']}' holds no test samples")
    values = np.unique(train_y)
    unknown = np.setdiff1d(test_y, values)
    if len(unknown):
        raise DataError(
            f"IDX file '{files['t10k', 'labels']}' holds class {int(unknown[0])} that the training labels "
            f"'{files['train', 'labels']}' lack; every class must have training samples"
        )
    names = tuple(str(value) for value in values.tolist())
    train_y, test_y = np.searchsorted(values, train_y), np.searchsorted(values, test_y)
    return Arrays(train_x[:, None], train_y, names), Arrays(test_x[:, None], test_y, names)


def read_idx(path: Path, kind: str) -> np.ndarray:
    """One IDX file as a uint8 array of the shape its header gives; kind is 'images' or 'labels'.

    The header's size is checked against the file and the memory before the values are read, and no more
    than it says is read: a header can claim 2**31 x 2**31 x 4 values, a gzip stream can unpack to any size.
    """
    check_regular_file(path, "IDX file")
    try:
        with gzip.open(path, "rb") if path.suffix.lower() == ".gz" else path.open("rb") as stream:
            return _read_stream(path, stream, kind)
    except EOFError:
        raise DataError(f"cannot read IDX file '{path}': the gzip stream is truncated") from None
    except (OSError, zlib.error) as error:
        raise DataError(f"cannot read IDX file '{path}': {error}") from None


def _read_stream(path: Path, stream: BinaryIO, kind: str) -> np.ndarray:
    magic = stream.read(4)
    if len(magic) < 4 or struct.unpack(">I", magic)[0] != MAGIC[kind]:
        found = f"0x{struct.unpack('>I', magic)[0]:08x}" if len(magic) == 4 else "nothing"
        raise DataError(
            f"'{path}' is not an IDX {kind} file: magic number should be 0x{MAGIC[kind]:08x}, found {found}"
        )
    dims = 3 if kind == "images" else 1
    header = stream.read(4 * dims)
    if len(header) < 4 * dims:
        raise DataError(f"IDX file '{path}' is truncated: it ends inside its header")
    shape = struct.unpack(f">{dims}I", header)
    if 0 in shape[1:]:
        raise DataError(f"IDX file '{path}' holds pictures of {shape[1]}x{shape[2]} pixels")
    expected = math.prod(shape)
    if path.suffix.lower() != ".gz":  # a plain file's size says it before anything is read
        _check_size(path, shape, expected, path.stat().st_size - 4 - 4 * dims)
    # the bytes, then a copy per split (labels: as int64); one picture at least, even of no pictures
    needed = max(expected, math.prod(shape[1:])) * (2 if kind == "images" else 9)
    check_fits(needed, f"IDX file '{path}' of shape {shape}", DataError)
    data = stream.read(expected + 1)
    _check_size(path, shape, expected, len(data))
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def _check_size(path: Path, shape: tuple[int, ...], expected: int, found: int) -> None:
    if found < expected:
        raise DataError(
            f"IDX file '{path}' is truncated: header gives shape {shape} ({expected} bytes), found {found} bytes"
        )
    if found > expected:
        raise DataError(
            f"IDX file '{path}' is longer than its header says: header gives shape {shape} ({expected} bytes)"
        )


def _find_files(folder: Path) -> dict[tuple[str, str], Path]:
    files: dict[tuple[str, str], Path] = {}
    for path in sorted(folder.iterdir()):  # sorted: a plain file wins over its .gz twin
        match = PATTERN.match(path.name)
        if match and not path.is_dir():  # a FIFO or device of that name is refused when read, not skipped
            files.setdefault((match[1].lower(), match[2].lower()), path)
    for part in ("train", "t10k"):
        for kind in ("images", "labels"):
            if (part, kind) not in files:
                name = f"{part}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"
                raise DataError(f"IDX folder '{folder}' has no {part} {kind} file (expected '{name}' or '{name}.gz')")
    return files


def _read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path, "images"), read_idx(labels_path, "labels")
    if len(images) != len(labels):
        raise DataError(
            f"IDX files '{images_path}' and '{labels_path}' disagree: {len(images)} images but {len(labels)} labels"
        )
    return images, labels.astype(np.int64)
