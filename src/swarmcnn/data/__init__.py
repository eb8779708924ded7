"""Data sources -> in-memory train/val/test tensors.

Every source (built-in, image folder, video folder, IDX folder, .npz, series files) is read once into one
uint8 array (float32 for float .npz data and for signals) and split by index, so training batches are slices
of a tensor, as in airbench. Pictures are (N, C, H, W), video clips (N, C, T, H, W) sampled to
DataConfig.frames frames (see swarmcnn.data.video), signals (N, C, L) brought to one length with missing
values filled (see swarmcnn.data.signals). torch, sklearn, Pillow and PyAV are imported only when data is
loaded. A built-in name wins over a folder of the same name; write './digits' for the folder.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from swarmcnn.data.builtin import BUILTIN
from swarmcnn.data.files import check_regular_file
from swarmcnn.data.signals import SignalFacts
from swarmcnn.data.splits import Arrays, Parts, first_per_class
from swarmcnn.errors import DataError, did_you_mean
from swarmcnn.memory import check_fits

if TYPE_CHECKING:
    import torch

__all__ = [
    "BUILTIN",
    "DataConfig",
    "Dataset",
    "Split",
    "check_regular_file",
    "from_arrays",
    "load_data",
    "load_image_file",
    "load_inputs",
]

NORMALIZATIONS = ("channel", "series")  # DataConfig.normalize: per channel over the training split, or per series


@dataclass(frozen=True)
class DataConfig:
    image_size: tuple[int, int] | None = None  # (H, W) to resize every image to; None = keep (must all agree)
    val_fraction: float = 0.15
    test_fraction: float = 0.15  # ignored for sources with their own test split (IDX)
    split_seed: int = 0  # the split is deterministic given this
    frames: int = 8  # frames per video clip, evenly spaced over the clip (ignored for images)
    per_class: int | None = None  # at most this many samples per class to train and validate on (the first ones)
    length: int | None = None  # instants per signal, every series resampled to it; None = the longest (signals)
    normalize: str = "channel"  # signals: "series" also brings each series to mean 0 and std 1 (NORMALIZATIONS)

    def __post_init__(self) -> None:
        if self.image_size is not None:
            object.__setattr__(self, "image_size", _checked_size(self.image_size))
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise DataError(f"{name} must be in [0, 1), got {value}")
        if self.val_fraction + self.test_fraction >= 1:
            raise DataError(
                f"val_fraction + test_fraction must stay below 1 to leave data for training, "
                f"got {self.val_fraction} + {self.test_fraction}"
            )
        # sklearn's random_state takes 0..2**32-1
        if not isinstance(self.split_seed, numbers.Integral) or not 0 <= self.split_seed < 2**32:
            raise DataError(f"split_seed must be an integer in 0..{2**32 - 1}, got {self.split_seed!r}")
        if not isinstance(self.frames, numbers.Integral) or isinstance(self.frames, bool) or self.frames < 1:
            raise DataError(f"frames (per video clip) must be a positive integer, got {self.frames!r}")
        if self.per_class is not None and (
            not isinstance(self.per_class, numbers.Integral) or isinstance(self.per_class, bool) or self.per_class < 1
        ):
            raise DataError(f"per_class (samples per class) must be a positive integer, got {self.per_class!r}")
        if self.length is not None and (
            not isinstance(self.length, numbers.Integral) or isinstance(self.length, bool) or self.length < 1
        ):
            raise DataError(f"length (instants per signal) must be a positive integer, got {self.length!r}")
        if self.normalize not in NORMALIZATIONS:
            raise DataError(f"normalize must be one of {', '.join(NORMALIZATIONS)}, got {self.normalize!r:.40}"
                            + did_you_mean(str(self.normalize), list(NORMALIZATIONS)))


@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # uint8 (N, C, H, W) or (N, C, T, H, W), in memory, contiguous; float32 for npz float data
    # and for signals (N, C, L)
    y: torch.Tensor  # int64 (N,)

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class Dataset:
    train: Split
    val: Split
    test: Split
    class_names: tuple[str, ...]
    input_shape: tuple[int, ...]  # (C, H, W) for images, (C, T, H, W) for video, (C, L) for signals
    source: str  # as the user gave it: a built-in name or a path
    normalize: str = "channel"  # as DataConfig.normalize: "series" where every series was standardised
    signal: SignalFacts | None = None  # signals: what bringing them to one length and filling them did

    @functools.cached_property
    def fingerprint(self) -> str:
        """A hash of every split's arrays and the class names: a resumed search checks that its data is the same
        (file names and times would miss a file rewritten in place, or the same data copied elsewhere)."""
        digest = hashlib.blake2b(digest_size=16)
        digest.update(json.dumps(list(self.class_names)).encode())
        for split in (self.train, self.val, self.test):
            for tensor in (split.x, split.y):
                array = np.ascontiguousarray(tensor.numpy())
                digest.update(f"{array.dtype.str}{array.shape}".encode())
                digest.update(array.reshape(-1).view(np.uint8))  # the bytes in place, no copy
        return digest.hexdigest()


def load_data(source: str, config: DataConfig = DataConfig()) -> Dataset:
    """Read a built-in set, an IDX folder, an image or video folder (split into train/ and test/ folders or
    not), an .npz file or series files (.ts, UCR .tsv/.txt, a NAME_TRAIN and NAME_TEST pair or a folder holding
    one), and split it as config says; a source's own test and validation parts are kept."""
    source = str(source)
    return _dataset(_read(source, config), config, source)


def from_arrays(
    x,
    y,
    *,
    class_names: Sequence[str] | None = None,
    layout: str | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    source: str = "arrays",
    normalize: str = "channel",
    length: int | None = None,
) -> Dataset:
    """A data set from pictures, clips or signals in memory (NumPy arrays or anything np.asarray takes), split as
    load_data splits a source.

    x is read as an .npz file's field 'x' is (layout: one of npz.LAYOUTS where its shape is ambiguous, "NCL" for
    signals (N, C, L)) and refused alike. y: integer labels (indices into class_names where given), or class
    names themselves. source: what the data set, and a model trained on it, name as its origin. normalize and
    length: as DataConfig's, for signals.
    """
    from swarmcnn.data import npz

    config = DataConfig(val_fraction=val_fraction, test_fraction=test_fraction, split_seed=seed,
                        normalize=normalize, length=length)
    origin = npz.Origin("the arrays", file=False)
    x, y = _as_array(x, "x"), _as_array(y, "y")
    if y.dtype.kind == "O":  # a list of names, or of numbers, as the array of its own kind
        y = _as_array(y.tolist(), "y")
    if y.dtype.kind in "US" and y.ndim == 1:  # labels given by name
        y, class_names = _label_indices(y, class_names)
    check_fits(npz.bytes_needed("x", x.shape, x.dtype) - x.nbytes, f"arrays x of shape {x.shape}", DataError)
    classes = None if class_names is None else np.asarray(list(class_names))
    layout_given = None if layout is None else np.asarray(npz.resolve_layout(origin, layout, x.shape))
    parts = Parts(npz.checked_arrays(origin, x, y, classes, layout_given))
    return _dataset(parts, config, source)


def _as_array(values, name: str) -> np.ndarray:
    try:
        return np.asarray(values)
    except (ValueError, TypeError) as error:  # ragged lists
        raise DataError(f"array {name} cannot be read as one array: {error}") from None


def _label_indices(y: np.ndarray, class_names: Sequence[str] | None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Labels given by name: indices into class_names where given, else into the sorted distinct names."""
    labels = [v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in y.tolist()]
    names = tuple(sorted(set(labels))) if class_names is None else tuple(str(n) for n in class_names)
    index = {name: i for i, name in enumerate(names)}
    unknown = next((label for label in labels if label not in index), None)
    if unknown is not None:
        raise DataError(f"array y holds label '{unknown}', which is not one of class_names {list(names)}")
    return np.array([index[label] for label in labels], dtype=np.int64), names


def _dataset(parts: Parts, config: DataConfig, source: str) -> Dataset:
    """A source's labelled parts, cut to per_class, resized and split as config says."""
    parts = _as_kind(parts, config, source)
    pool = parts.pool if config.per_class is None else first_per_class(parts.pool, config.per_class)
    _check_two_classes(pool, source)
    own_test, own_val = parts.test, parts.val
    if config.image_size is not None:
        pool, own_test, own_val = (
            None if arrays is None else _resized(arrays, config.image_size) for arrays in (pool, own_test, own_val)
        )
    test_fraction = 0.0 if own_test is not None else config.test_fraction
    val_fraction = 0.0 if own_val is not None else config.val_fraction
    train, val, test = _split_indices(pool, replace(config, val_fraction=val_fraction), test_fraction, source)
    return Dataset(
        train=_to_split(pool.take(train)),
        val=_to_split(own_val if own_val is not None else pool.take(val)),
        test=_to_split(own_test if own_test is not None else pool.take(test)),
        class_names=pool.class_names,
        input_shape=tuple(int(d) for d in pool.x.shape[1:]),
        source=source,
        normalize=config.normalize,
        signal=parts.facts,
    )


def _as_kind(parts: Parts, config: DataConfig, source: str) -> Parts:
    """Signals filled and brought to one length (where their source has not done it) and standardised per series
    where config says; the settings of one kind of input refused for another."""
    signals = parts.pool.x.ndim == 3
    if not signals:
        for name, value, default in (("length", config.length, None), ("normalize", config.normalize, "channel")):
            if value != default:
                raise DataError(f"{name}={value!r} is for signals (N, C, L), but '{source}' holds "
                                f"{'clips' if parts.pool.x.ndim == 5 else 'pictures'}")
        return parts
    if config.image_size is not None:
        raise DataError(f"'{source}' holds signals: image_size does not apply to them (length sets their instants)")
    if parts.facts is None:  # arrays: nothing filled or resampled yet
        from swarmcnn.data.signals import prepared

        pool, facts = _prepared(parts.pool, config.length, f"'{source}'", prepared)
        test, test_facts = (None, None) if parts.test is None else _prepared(
            parts.test, pool.x.shape[-1], f"the test part of '{source}'", prepared)
        parts = parts._replace(pool=pool, test=test, facts=facts if test_facts is None else facts + test_facts)
    if config.normalize == "series":
        from swarmcnn.data.signals import standardized

        parts = parts._replace(**{name: None if arrays is None else arrays._replace(x=standardized(arrays.x))
                                  for name, arrays in (("pool", parts.pool), ("test", parts.test), ("val", parts.val))})
    return parts


def _prepared(arrays: Arrays, length: int | None, what: str, prepared) -> tuple[Arrays, SignalFacts]:
    x, facts = prepared(arrays.x, length, what)
    return arrays._replace(x=x), facts


def load_image_file(path: str | Path, input_shape: tuple[int, ...]) -> torch.Tensor:
    """One input for `predict`, uint8 and shaped as input_shape: an image file for (C, H, W); a video
    file or a folder of frames for (C, T, H, W), sampled, converted and resized as the data sources do.
    """
    import torch

    if len(input_shape) == 2:
        raise DataError(f"the model takes signals {tuple(input_shape)} (C, L): '{path}' is read with load_inputs")

    from swarmcnn.data.video import VIDEO_EXTENSIONS

    shown = "x".join(map(str, input_shape))
    check_fits(3 * math.prod(input_shape), f"an input of {shown} for '{path}'", DataError)  # decoded, resized, copied
    if len(input_shape) == 4:
        from swarmcnn.data.video import load_clip_file as load
    elif Path(path).suffix.lower() in VIDEO_EXTENSIONS:
        raise DataError(f"'{path}' is a video but the model takes images of shape {tuple(input_shape)} (C, H, W)")
    else:
        from swarmcnn.data.images import load_image_file as load
    return torch.from_numpy(load(path, input_shape))


def load_inputs(
    paths: Sequence[str | Path], input_shape: tuple[int, ...]
) -> tuple[list[tuple[str, int | None]], torch.Tensor]:
    """The inputs of files for `predict` and `explain`, each with where it comes from, (file, case): one input per
    image or video file (case None), and for a model of signals (C, L) every case of each file (0, 1, ...),
    brought to L instants as `signal_files.load_cases` says."""
    import torch

    if len(input_shape) != 2:
        inputs = [load_image_file(path, input_shape) for path in paths]
        return [(str(path), None) for path in paths], torch.stack(inputs)
    from swarmcnn.data.signal_files import load_cases

    origins, cases = [], []
    for path in paths:
        x = load_cases(path, input_shape)
        origins += [(str(path), i) for i in range(len(x))]
        cases.append(torch.from_numpy(x))
    return origins, torch.cat(cases)


def _read(source: str, config: DataConfig) -> Parts:
    """The labelled pool to split, and the source's own test (and validation) parts if it has them."""
    if source in BUILTIN:
        from swarmcnn.data.builtin import load_builtin

        return Parts(load_builtin(source, config.image_size, config.frames))
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(
            f"no data source '{source}': not a built-in name ({', '.join(BUILTIN)}) "
            "and no such file or folder" + did_you_mean(source, list(BUILTIN))
        )
    try:
        return _read_path(path, config)
    except PermissionError as error:
        raise DataError(f"cannot read '{error.filename or path}': permission denied") from None


def _read_path(path: Path, config: DataConfig) -> Parts:
    from swarmcnn.data import folders, idx, npz, signal_files

    if path.is_dir():
        if idx.is_idx_folder(path):
            return Parts(*idx.load_folder(path))
        if signal_files.pair_in_folder(path):
            return signal_files.load_source(path, config.length)
        if folders.split_folders(path):
            return folders.load_split_folders(path, config.image_size, config.frames, config.per_class)
        return Parts(folders.load_class_folders(path, config.image_size, config.frames, config.per_class))
    if path.suffix.lower() == ".npz":
        return Parts(npz.load_npz(path))
    if signal_files.is_signal_file(path):
        return signal_files.load_source(path, config.length)
    raise DataError(f"cannot use file '{path}' as data: expected a folder (class sub-folders, IDX or NAME_TRAIN and "
                    "NAME_TEST series files), a .npz file or a file of series (.ts, .tsv, NAME_TRAIN[.txt])")


def _split_indices(
    pool: Arrays, config: DataConfig, test_fraction: float, source: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from swarmcnn.data.splits import split_indices

    return split_indices(pool.y, pool.class_names, config.val_fraction, test_fraction, config.split_seed, source)


def _resized(arrays: Arrays, size: tuple[int, int]) -> Arrays:
    """All pictures (or video frames) at size (H, W) in one tensor operation; antialiased bilinear, as Pillow's."""
    if tuple(arrays.x.shape[-2:]) == size:
        return arrays
    import torch
    import torch.nn.functional as F

    lead = arrays.x.shape[:-2]  # (N, C) or (N, C, T): channels and frames are resized alike
    # the float copy, the resized floats and their uint8 version
    needed = 4 * arrays.x.size + 5 * math.prod(lead) * size[0] * size[1]
    check_fits(needed, f"{len(arrays.x)} inputs resized to {size[0]}x{size[1]}", DataError)
    x = torch.from_numpy(np.require(arrays.x, requirements=("C", "W"))).float()
    x = x.reshape(lead[0], math.prod(lead[1:]), *x.shape[-2:])
    x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    x = x.reshape(*lead, *size)
    if arrays.x.dtype == np.uint8:
        x = x.round().clamp(0, 255).to(torch.uint8)
    return Arrays(np.ascontiguousarray(x.numpy()), arrays.y, arrays.class_names)


def _check_two_classes(pool: Arrays, source: str) -> None:
    present = np.unique(pool.y)
    if len(present) == 0:
        raise DataError(f"'{source}' holds no samples")
    if len(present) == 1:
        raise DataError(
            f"'{source}' has samples of only one class ('{pool.class_names[present[0]]}'); "
            "a classifier needs at least two"
        )


def _to_split(arrays: Arrays) -> Split:
    import torch

    # np.require copies only arrays that are read-only or strided (IDX data is a view of the file's bytes)
    x = np.require(arrays.x, requirements=("C", "W"))
    y = np.require(arrays.y, dtype=np.int64, requirements=("C", "W"))
    return Split(torch.from_numpy(x), torch.from_numpy(y))


def _checked_size(size: object) -> tuple[int, int]:
    values = tuple(size) if isinstance(size, (tuple, list)) else ()
    if len(values) != 2 or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in values
    ):
        raise DataError(f"image_size must be two positive integers (H, W), got {size!r}")
    return int(values[0]), int(values[1])
