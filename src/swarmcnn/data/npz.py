"""NumPy .npz files with arrays x (pictures), y (integer labels) and optionally classes (names)."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from swarmcnn.data.splits import Arrays
from swarmcnn.errors import DataError


def load_npz(path: Path) -> Arrays:
    """x as (N, C, H, W): uint8 when the values fit 0..255 as integers, float32 otherwise."""
    fields = _read_fields(path)
    x, y = _pictures(path, fields["x"]), _labels(path, fields["y"])
    if len(x) != len(y):
        raise DataError(f"npz file '{path}': field 'x' has {len(x)} samples but field 'y' has {len(y)} labels")
    if len(x) == 0:
        raise DataError(f"npz file '{path}' holds no samples (fields 'x' and 'y' are empty)")
    names = _class_names(path, fields.get("classes"), y)
    if y.min() < 0 or y.max() >= len(names):
        bad = int(y.min()) if y.min() < 0 else int(y.max())
        raise DataError(
            f"npz file '{path}' field 'y': labels out of range: found {bad}, expected 0..{len(names) - 1}"
            + (" (one per name in field 'classes')" if "classes" in fields else "")
        )
    return Arrays(x, y, names)


def _read_fields(path: Path) -> dict[str, np.ndarray]:
    try:
        # opened here, not by np.load, which leaks its file handle when the archive is corrupt;
        # allow_pickle=False: an npz from elsewhere must not be able to run code when loaded
        with path.open("rb") as stream:
            return _fields(path, np.load(stream, allow_pickle=False))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"cannot read npz file '{path}': {error}") from None


def _fields(path: Path, archive: object) -> dict[str, np.ndarray]:
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"'{path}' holds a single .npy array, not an npz archive with fields 'x' and 'y'")
    missing = [name for name in ("x", "y") if name not in archive.files]
    if missing:
        found = ", ".join(f"'{name}'" for name in archive.files) or "none"
        raise DataError(f"npz file '{path}' has no field '{missing[0]}' (found: {found})")
    return {name: _field(path, archive, name) for name in ("x", "y", "classes") if name in archive.files}


def _field(path: Path, archive: np.lib.npyio.NpzFile, name: str) -> np.ndarray:
    try:
        return archive[name]
    except ValueError as error:  # object arrays need pickle, which stays off
        raise DataError(
            f"npz file '{path}' field '{name}' cannot be read without pickle ({error}); save it as a plain array"
        ) from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise DataError(f"npz file '{path}' field '{name}' is corrupt: {error}") from None


def _pictures(path: Path, x: np.ndarray) -> np.ndarray:
    """(N, H, W) or channels-last (N, H, W, C) as (N, C, H, W), in the narrowest faithful dtype."""
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[3] in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    else:
        raise DataError(
            f"npz file '{path}' field 'x' has shape {x.shape}; expected (N, H, W) or (N, H, W, C) with C 1 or 3"
        )
    if x.dtype.kind in "biu":
        in_byte_range = x.size == 0 or (x.min() >= 0 and x.max() <= 255)
        # integers beyond a byte (16-bit pictures) keep their values as float32 rather than being clipped
        return np.ascontiguousarray(x, dtype=np.uint8 if in_byte_range else np.float32)
    if x.dtype.kind != "f":
        raise DataError(f"npz file '{path}' field 'x' has dtype {x.dtype}; expected integers or floats")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        first = int(np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))[0])
        raise DataError(f"npz file '{path}' field 'x' holds NaN or infinite values (first in sample {first})")
    return x


def _labels(path: Path, y: np.ndarray) -> np.ndarray:
    if y.ndim != 1:
        raise DataError(f"npz file '{path}' field 'y' has shape {y.shape}; expected one label per sample, (N,)")
    if y.dtype.kind not in "iu":
        raise DataError(
            f"npz file '{path}' field 'y' has dtype {y.dtype}; labels must be integers 0..K-1 (save y.astype(int))"
        )
    if y.dtype == np.uint64 and y.size and y.max() > np.iinfo(np.int64).max:
        raise DataError(f"npz file '{path}' field 'y': labels out of range: found {int(y.max())}")
    return y.astype(np.int64)


def _class_names(path: Path, classes: np.ndarray | None, y: np.ndarray) -> tuple[str, ...]:
    if classes is None:
        return tuple(str(label) for label in range(max(int(y.max()), 0) + 1))
    if classes.ndim != 1:
        raise DataError(f"npz file '{path}' field 'classes' has shape {classes.shape}; expected a list of names")
    names = tuple(v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in classes.tolist())
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DataError(f"npz file '{path}' field 'classes' names '{duplicates[0]}' more than once")
    return names
