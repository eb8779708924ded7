"""NumPy .npz files with arrays x (pictures or clips), y (integer labels), optionally classes (names) and layout.

How x is read (N samples, T frames, C channels last):
    layout given ('NHW', 'NHWC', 'NTHW' or 'NTHWC', a string saved as np.savez(..., layout="NTHW")): as it says
    3-D: images (N, H, W)
    4-D: images (N, H, W, C) when the last axis is 1 or 3, else gray video (N, T, H, W)
    5-D: video (N, T, H, W, C)
C must be 1 or 3. A gray video whose width is 1 or 3 reads as images unless layout says 'NTHW'.
Images become (N, C, H, W), clips (N, C, T, H, W).
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from swarmcnn.data.splits import Arrays
from swarmcnn.errors import DataError

LAYOUTS = ("NHW", "NHWC", "NTHW", "NTHWC")


def load_npz(path: Path) -> Arrays:
    """x as (N, C, H, W) or (N, C, T, H, W): uint8 when the values fit 0..255 as integers, float32 otherwise."""
    fields = _read_fields(path)
    layout = _layout(path, fields.get("layout"), fields["x"].shape)
    x, y = _pictures(path, fields["x"], layout), _labels(path, fields["y"])
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
    return {name: _field(path, archive, name) for name in ("x", "y", "classes", "layout") if name in archive.files}


def _field(path: Path, archive: np.lib.npyio.NpzFile, name: str) -> np.ndarray:
    try:
        return archive[name]
    except ValueError as error:  # object arrays need pickle, which stays off
        raise DataError(
            f"npz file '{path}' field '{name}' cannot be read without pickle ({error}); save it as a plain array"
        ) from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise DataError(f"npz file '{path}' field '{name}' is corrupt: {error}") from None


def _layout(path: Path, given: np.ndarray | None, shape: tuple[int, ...]) -> str:
    """The layout of x: as field 'layout' says, else implied by its shape (see the module docstring)."""
    if given is None:
        implied = {3: "NHW", 4: "NHWC" if shape[-1:] in ((1,), (3,)) else "NTHW", 5: "NTHWC"}
        if len(shape) not in implied:
            raise DataError(
                f"npz file '{path}' field 'x' has shape {shape}; expected (N, H, W), (N, H, W, C) with C 1 or 3, "
                "(N, T, H, W) or (N, T, H, W, C)"
            )
        return implied[len(shape)]
    text = given.item() if given.ndim == 0 and given.dtype.kind in "US" else None
    text = text.decode(errors="replace") if isinstance(text, bytes) else text
    if text not in LAYOUTS:
        shown = repr(text) if text is not None else f"an array of shape {given.shape} and dtype {given.dtype}"
        raise DataError(f"npz file '{path}' field 'layout' is {shown}; expected one of {', '.join(LAYOUTS)}")
    if len(text) != len(shape):
        raise DataError(f"npz file '{path}' field 'layout' is '{text}' but field 'x' has shape {shape}")
    return text


def _pictures(path: Path, x: np.ndarray, layout: str) -> np.ndarray:
    """x in the given layout as channels-first (N, C, H, W) or (N, C, T, H, W), in the narrowest faithful dtype."""
    if layout.endswith("C"):
        if x.shape[-1] not in (1, 3):
            raise DataError(
                f"npz file '{path}' field 'x' has shape {x.shape}, read as {layout}: C must be 1 or 3, "
                f"got {x.shape[-1]}"
            )
        x = np.moveaxis(x, -1, 1)
    else:
        x = x[:, None]
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
