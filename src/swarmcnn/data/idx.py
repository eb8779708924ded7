"""IDX folders (the MNIST / Fashion-MNIST format): train and t10k images and labels, plain or gzipped.

Format: http://yann.lecun.com/exdb/mnist/ -- a big-endian header (magic, then one uint32 per
dimension) followed by the raw uint8 values.
"""

from __future__ import annotations

import gzip
import re
import struct
import zlib
from pathlib import Path

import numpy as np

from swarmcnn.data.splits import Arrays
from swarmcnn.errors import DataError

# loose on purpose: the files circulate as 'train-images-idx3-ubyte', 'train-images.idx3-ubyte', '....gz'
PATTERN = re.compile(r"^(train|t10k)-(images|labels)[-.]idx[13]-ubyte(\.gz)?$", re.IGNORECASE)
MAGIC = {"images": 0x00000803, "labels": 0x00000801}


def is_idx_folder(folder: Path) -> bool:
    """Whether folder holds any IDX file, so that load_data reads it as IDX rather than as an image folder."""
    return any(PATTERN.match(p.name) for p in folder.iterdir() if p.is_file())


def load_folder(folder: Path) -> tuple[Arrays, Arrays]:
    """The train and the t10k (test) parts of an IDX folder, as (N, 1, H, W) uint8 and int64 labels."""
    files = _find_files(folder)
    train_x, train_y = _read_pair(files["train", "images"], files["train", "labels"])
    test_x, test_y = _read_pair(files["t10k", "images"], files["t10k", "labels"])
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(
            f"IDX files '{files['train', 'images']}' and '{files['t10k', 'images']}' differ in image size: "
            f"{train_x.shape[1]}x{train_x.shape[2]} and {test_x.shape[1]}x{test_x.shape[2]}"
        )
    names = tuple(str(label) for label in range(int(max(train_y.max(initial=0), test_y.max(initial=0))) + 1))
    return Arrays(train_x[:, None], train_y, names), Arrays(test_x[:, None], test_y, names)


def read_idx(path: Path, kind: str) -> np.ndarray:
    """One IDX file as a uint8 array of the shape its header gives; kind is 'images' or 'labels'."""
    data = _read_bytes(path)
    if len(data) < 4 or struct.unpack(">I", data[:4])[0] != MAGIC[kind]:
        found = f"0x{struct.unpack('>I', data[:4])[0]:08x}" if len(data) >= 4 else "nothing"
        raise DataError(
            f"'{path}' is not an IDX {kind} file: magic number should be 0x{MAGIC[kind]:08x}, found {found}"
        )
    dims = 3 if kind == "images" else 1
    header = 4 + 4 * dims
    if len(data) < header:
        raise DataError(f"IDX file '{path}' is truncated: it ends inside its header")
    shape = struct.unpack(f">{dims}I", data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        state = "truncated" if len(data) - header < expected else "longer than its header says"
        raise DataError(
            f"IDX file '{path}' is {state}: header gives shape {shape} ({expected} bytes), "
            f"found {len(data) - header} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _find_files(folder: Path) -> dict[tuple[str, str], Path]:
    files: dict[tuple[str, str], Path] = {}
    for path in sorted(folder.iterdir()):  # sorted: a plain file wins over its .gz twin
        match = PATTERN.match(path.name)
        if match and path.is_file():
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


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rb") as stream:
                return stream.read()
        return path.read_bytes()
    except EOFError:
        raise DataError(f"cannot read IDX file '{path}': the gzip stream is truncated") from None
    except (OSError, zlib.error) as error:
        raise DataError(f"cannot read IDX file '{path}': {error}") from None
