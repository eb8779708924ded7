"""NumPy .npz files with arrays x (pictures, clips or signals), y (integer labels), optionally classes (names) and
layout.

Arrays given in memory (`swarmcnn.from_arrays`, the scikit-learn estimator) are checked and converted by the
same code (`checked_arrays`), so that both are read, and refused, alike.

How x is read (N samples, C channels, T frames):
    layout given (one of LAYOUTS, a string saved as np.savez(..., layout="NCHW")): as it says
    2-D: signals of one channel (N, L)
    3-D: gray pictures (N, H, W); signals (N, C, L) need layout 'NCL'
    4-D: pictures (N, H, W, C) when the last axis is 1, 3 or 4, else pictures (N, 1, H, W) when the second
         axis is 1, else gray video (N, T, H, W); but a second axis of 3 or 4 (and a last one of neither)
         is ambiguous, pictures with channels first or clips of 3 or 4 frames, and refused unless layout says
    5-D: video (N, T, H, W, C)
C is 1 (gray), 3 (RGB) or 4 where the shape implies it, any count where layout says so; every channel is
kept (a fourth of an array may be data, near-infrared or depth: only image files drop alpha, as a convention,
when they are read; a model of 4 channels takes arrays, not PNGs, at predict). A gray video whose
width is 1, 3 or 4 reads as pictures unless layout says 'NTHW'. Pictures become (N, C, H, W), clips
(N, C, T, H, W); x must be integers or finite floats (not bool, complex, strings or objects). Signals become
float32 (N, C, L) of any channel count, NaN where a value is missing (filled along time, `swarmcnn.data.signals`).

Labels: with a field 'classes', y indexes its names (0..K-1). Without one, the distinct values of y are the
classes, named by their values in increasing order, so labels 0, 1 and 10**9 make the 3 classes '0', '1'
and '1000000000' and no label value decides an allocation. Negative labels are refused (often 'unlabelled').

Every array's shape and dtype are read from its .npy header and checked against the free memory before
the array itself is read: a small compressed file can claim any size.
"""

from __future__ import annotations

import lzma
import math
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from swarmcnn.data.files import check_regular_file
from swarmcnn.data.signals import LAYOUTS as SIGNAL_LAYOUTS
from swarmcnn.data.signals import as_signals
from swarmcnn.data.splits import Arrays
from swarmcnn.errors import DataError
from swarmcnn.memory import check_fits

FIELDS = ("x", "y", "classes", "layout")
LAYOUTS = ("NHW", "NHWC", "NCHW", "NTHW", "NTHWC", "NCTHW", "NL", "NCL")  # the last two: signals
CHANNELS = (1, 3, 4)  # gray, RGB, RGBA
# what a damaged archive or .npy header raises, from zipfile, its decompressors and numpy.lib.format
_CORRUPT = (
    OSError,
    ValueError,
    EOFError,
    RuntimeError,
    NotImplementedError,
    struct.error,
    SyntaxError,
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
)


@dataclass(frozen=True)
class Origin:
    """Where x and y come from, as messages name them: the fields of an npz file, or the arrays given to
    `swarmcnn.from_arrays`, which the same code checks, so that both are refused alike."""

    whole: str  # "npz file 'd.npz'" or "the arrays"
    file: bool = True  # fields of a file (field 'x', fixed by saving it again) or arguments (array x, passed)

    def key(self, name: str) -> str:
        """A field without its source: field 'x', or array x."""
        return f"field '{name}'" if self.file else _ARGUMENTS[name]

    def field(self, name: str) -> str:
        """A field with its source, as a message begins: npz file 'd.npz' field 'x', or array x."""
        return f"{self.whole} {self.key(name)}" if self.file else self.key(name)

    def fix(self, in_file: str, in_arguments: str) -> str:
        return in_file if self.file else in_arguments


_ARGUMENTS = {"x": "array x", "y": "array y", "classes": "class_names", "layout": "layout"}


def load_npz(path: Path) -> Arrays:
    """x as (N, C, H, W) or (N, C, T, H, W): uint8 when the values fit 0..255 as integers, float32 otherwise."""
    fields = _read_fields(path)
    return checked_arrays(Origin(f"npz file '{path}'"), fields["x"], fields["y"], fields.get("classes"),
                          fields.get("layout"))


def checked_arrays(
    origin: Origin, x: np.ndarray, y: np.ndarray, classes: np.ndarray | None = None, layout: np.ndarray | None = None
) -> Arrays:
    """Labelled samples checked and converted as the module docstring says, wherever they come from."""
    layout = _layout(origin, layout, x.shape)
    y = _labels(origin, y)
    if len(x) != len(y):
        where = f"{origin.whole}: " if origin.file else ""
        raise DataError(f"{where}{origin.key('x')} has {len(x)} samples but {origin.key('y')} has {len(y)} labels")
    if len(x) == 0:
        empty = "fields 'x' and 'y' are" if origin.file else "arrays x and y are"
        raise DataError(f"{origin.whole} {'holds' if origin.file else 'hold'} no samples ({empty} empty)")
    _check_pixels(origin, x)
    y, names = _classes(origin, y, classes)
    return Arrays(pictures(origin, x, layout), y, names)


def _read_fields(path: Path) -> dict[str, np.ndarray]:
    check_regular_file(path, "npz file")
    try:
        # zipfile rather than np.load: each array's header is checked before the array is read, and np.load
        # leaks its file handle when the archive is corrupt
        with path.open("rb") as stream:
            if stream.read(6) == b"\x93NUMPY":
                raise DataError(f"'{path}' holds a single .npy array, not an npz archive with fields 'x' and 'y'")
            stream.seek(0)
            with zipfile.ZipFile(stream) as archive:
                return _fields(path, archive)
    except _CORRUPT as error:
        raise DataError(f"cannot read npz file '{path}': {_one_line(error)}") from None


def _fields(path: Path, archive: zipfile.ZipFile) -> dict[str, np.ndarray]:
    members = {name.removesuffix(".npy"): name for name in archive.namelist()}  # np.savez's names, as np.load
    missing = [name for name in ("x", "y") if name not in members]
    if missing:
        found = ", ".join(f"'{name}'" for name in members) or "none"
        raise DataError(f"npz file '{path}' has no field '{missing[0]}' (found: {found})")
    return {name: _field(path, archive, name, members[name]) for name in FIELDS if name in members}


def _field(path: Path, archive: zipfile.ZipFile, name: str, member: str) -> np.ndarray:
    try:
        with archive.open(member) as stream:
            shape, dtype = _header(stream)
        if dtype.hasobject:  # object arrays need pickle, which stays off: an npz must not run code when read
            raise DataError(
                f"npz file '{path}' field '{name}' cannot be read without pickle (dtype {dtype}); "
                "save it as a plain array"
            )
        what = f"npz file '{path}' field '{name}' of shape {shape} and dtype {dtype}"
        check_fits(bytes_needed(name, shape, dtype), what, DataError)
        with archive.open(member) as stream:
            return np.lib.format.read_array(stream, allow_pickle=False)
    except _CORRUPT as error:
        raise DataError(f"npz file '{path}' field '{name}' is corrupt: {_one_line(error)}") from None


def _header(stream: BinaryIO) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a .npy header, without reading the values."""
    version = np.lib.format.read_magic(stream)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(stream)
    return shape, dtype


def bytes_needed(name: str, shape: tuple[int, ...], dtype: np.dtype) -> int:
    """The array, and for x and y what is made of them: the converted copy, and a copy per split."""
    count = math.prod(shape)
    if name == "x":
        return count * (dtype.itemsize + 2 * (1 if dtype == np.uint8 else 4))
    if name == "y":
        return count * (dtype.itemsize + 2 * 8)
    return count * dtype.itemsize


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _layout(origin: Origin, given: np.ndarray | None, shape: tuple[int, ...]) -> str:
    """The layout of x: as field 'layout' says, else implied by its shape (see the module docstring)."""
    if given is None:
        return _implied_layout(origin, shape)
    text = given.item() if given.ndim == 0 and given.dtype.kind in "US" else None
    text = text.decode(errors="replace") if isinstance(text, bytes) else text
    if text not in LAYOUTS:
        shown = repr(text) if text is not None else f"an array of shape {given.shape} and dtype {given.dtype}"
        raise DataError(f"{origin.field('layout')} is {shown}; expected one of {', '.join(LAYOUTS)}")
    if len(text) != len(shape):
        raise DataError(f"{origin.field('layout')} is '{text}' but {origin.key('x')} has shape {shape}")
    return text


def _implied_layout(origin: Origin, shape: tuple[int, ...]) -> str:
    if len(shape) == 2:
        return "NL"
    if len(shape) == 3:
        return "NHW"
    if len(shape) == 5:
        if shape[4] not in CHANNELS:  # likely channels first: a layout, not a guess, says other channel counts
            first = shape[1] in CHANNELS
            hint = "; for channels first " + origin.fix("save it with", "pass") + " layout='NCTHW'" if first else ""
            how = origin.fix("a field 'layout' ('NTHWC')", "layout='NTHWC'")
            raise DataError(
                f"{origin.field('x')} has shape {shape}, read as NTHWC: C must be 1, 3 or 4, got {shape[4]}{hint}; "
                f"for {shape[4]} channels say so with {how}"
            )
        return "NTHWC"
    if len(shape) != 4:
        raise DataError(
            f"{origin.field('x')} has shape {shape}; expected (N, H, W), (N, H, W, C) with C 1, 3 or 4, "
            "(N, T, H, W), (N, T, H, W, C), or signals (N, L) or (N, C, L) (with layout 'NCL')"
        )
    if shape[3] in CHANNELS:
        return "NHWC"
    if shape[1] == 1:  # a clip of one frame is a picture
        return "NCHW"
    if shape[1] in CHANNELS:
        how = origin.fix("a field 'layout': np.savez(..., layout='NCHW') or layout='NTHW'", "layout='NCHW' or 'NTHW'")
        raise DataError(
            f"{origin.field('x')} of shape {shape} is ambiguous: pictures with {shape[1]} channels first "
            f"(N, C, H, W) or gray clips of {shape[1]} frames (N, T, H, W)? Say which with {how}"
        )
    return "NTHW"


def resolve_layout(origin: Origin, given: str | None, shape: tuple[int, ...]) -> str:
    """The layout of samples of this shape: as given, else implied by it (see the module docstring)."""
    if given is not None and not isinstance(given, str):
        raise DataError(f"layout must be None or one of {', '.join(LAYOUTS)}, got {given!r:.80}")
    return _layout(origin, None if given is None else np.asarray(given), shape)


def _check_pixels(origin: Origin, x: np.ndarray) -> None:
    if 0 in x.shape[1:]:
        raise DataError(f"{origin.field('x')} has shape {x.shape}: its pictures hold no pixels")


def pictures(origin: Origin, x: np.ndarray, layout: str) -> np.ndarray:
    """x in the given layout as channels-first (N, C, H, W) or (N, C, T, H, W), in the narrowest faithful dtype;
    signals as float32 (N, C, L)."""
    if layout in SIGNAL_LAYOUTS:
        return as_signals(origin.field("x"), x, layout)
    if x.dtype.kind not in "iuf":
        fix = origin.fix(" (save x.astype(np.uint8) * 255)", " (pass x.astype(np.uint8) * 255)")
        raise DataError(
            f"{origin.field('x')} has dtype {x.dtype}; expected integers or floats"
            + (fix if x.dtype.kind == "b" else "")
        )
    _check_pixels(origin, x)
    if "C" in layout:  # every channel is kept: a fourth may be data (near-infrared, depth), not an alpha to drop
        x = np.moveaxis(x, layout.index("C"), 1)
    else:
        x = x[:, None]
    if len(x) == 0:  # nothing to check: the dtype of an empty batch to predict does not matter
        return np.zeros(x.shape, dtype=np.uint8)
    if x.dtype.kind in "iu":
        in_byte_range = x.min() >= 0 and x.max() <= 255
        # integers beyond a byte (16-bit pictures) keep their values as float32 rather than being clipped
        return np.ascontiguousarray(x, dtype=np.uint8 if in_byte_range else np.float32)
    finite = np.isfinite(x)
    if not finite.all():
        first = int(np.flatnonzero(~finite.reshape(len(x), -1).all(axis=1))[0])
        raise DataError(f"{origin.field('x')} holds NaN or infinite values (first in sample {first})")
    largest = max(float(x.max()), -float(x.min()))
    if largest > float(np.finfo(np.float32).max):
        raise DataError(f"{origin.field('x')} holds values beyond float32's range (up to {largest:.3g})")
    return np.ascontiguousarray(x, dtype=np.float32)


def _labels(origin: Origin, y: np.ndarray) -> np.ndarray:
    if y.ndim != 1:
        raise DataError(f"{origin.field('y')} has shape {y.shape}; expected one label per sample, (N,)")
    if y.dtype.kind not in "iu":
        fix = origin.fix("save y.astype(int)", "pass y.astype(int), or class names as y")
        raise DataError(f"{origin.field('y')} has dtype {y.dtype}; labels must be integers 0..K-1 ({fix})")
    if y.dtype == np.uint64 and y.size and y.max() > np.iinfo(np.int64).max:
        raise DataError(f"{origin.field('y')}: labels out of range: found {int(y.max())}")
    return y.astype(np.int64)


def _classes(origin: Origin, y: np.ndarray, classes: np.ndarray | None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Labels as indices 0..K-1 and the K class names (see the module docstring)."""
    names = None if classes is None else _class_names(origin, classes)
    if y.min() < 0 or (names is not None and y.max() >= len(names)):
        bad = int(y.min()) if y.min() < 0 else int(y.max())
        expected = "0 or more" if names is None else f"0..{len(names) - 1} (one per name in {origin.key('classes')})"
        raise DataError(f"{origin.field('y')}: labels out of range: found {bad}, expected {expected}")
    if names is not None:
        return y, names
    values, indices = np.unique(y, return_inverse=True)
    return indices.reshape(-1).astype(np.int64), tuple(str(value) for value in values.tolist())


def _class_names(origin: Origin, classes: np.ndarray) -> tuple[str, ...]:
    if classes.ndim != 1:
        raise DataError(f"{origin.field('classes')} has shape {classes.shape}; expected a list of names")
    names = tuple(v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in classes.tolist())
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(f"{origin.field('classes')} names '{name}' more than once")
        seen.add(name)
    return names
