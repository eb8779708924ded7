"""Signal sources on disk: a `.ts`, `.tsv` or old UCR file, a `NAME_TRAIN` + `NAME_TEST` pair of them (their own
test split kept), or a folder holding such a pair, as the UEA & UCR archives ship every problem; and the cases of
a file to classify (`predict`, `explain`), `.npy` arrays among them.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from swarmcnn.data.signals import BYTES_PER_VALUE, SeriesFile, SignalFacts, prepared, to_array
from swarmcnn.data.splits import Arrays, Parts
from swarmcnn.errors import DataError

# NAME_TRAIN.ts, NAME_TEST.tsv, NAME_TRAIN.txt, NAME_TRAIN (the old UCR archive's files have no suffix)
SPLIT_NAME = re.compile(r"^(?P<name>.+)_(?P<part>TRAIN|TEST)(?P<suffix>\.ts|\.tsv|\.txt)?$", re.IGNORECASE)
SUFFIXES = (".ts", ".tsv")  # read as signals whatever their name
_PREFERENCE = (".ts", ".tsv", ".txt", "")  # where a folder holds a problem in several formats


def is_signal_file(path: Path) -> bool:
    """Whether path names a file of series: .ts or .tsv, or NAME_TRAIN / NAME_TEST (plain or .txt)."""
    return path.suffix.lower() in SUFFIXES or SPLIT_NAME.match(path.name) is not None


def pair_in_folder(folder: Path) -> tuple[Path, Path] | None:
    """The NAME_TRAIN and NAME_TEST files of the one problem a folder holds; None where it holds none."""
    pairs: dict[tuple[str, str], dict[str, Path]] = {}
    for path in folder.iterdir():
        match = SPLIT_NAME.match(path.name)
        if match and not path.is_dir():
            key = (match["name"], (match["suffix"] or "").lower())
            pairs.setdefault(key, {})[match["part"].upper()] = path
    complete = {key: parts for key, parts in pairs.items() if set(parts) == {"TRAIN", "TEST"}}
    names = sorted({name for name, _ in complete})
    if len(names) > 1:
        raise DataError(f"folder '{folder}' holds the series of several problems ({', '.join(names)}); "
                        f"name one of their files, e.g. '{complete[min(complete)]['TRAIN']}'")
    if not complete:
        return None
    key = min(complete, key=lambda k: _PREFERENCE.index(k[1]))
    return complete[key]["TRAIN"], complete[key]["TEST"]


def load_source(path: Path, length: int | None) -> Parts:
    """A file (with its NAME_TEST file beside it where path is NAME_TRAIN) or a folder, as labelled parts of one
    length, with what their preparation did."""
    train, test = _files(path)
    first = read_series(train)
    labels = _labels_of(first)
    classes = first.classes or _ordered(labels)
    second = None if test is None else read_series(test)
    # the longest of the whole problem, as the baselines took it (dl-4-tsc's transform_mts_to_ucr_format): a test
    # case is not cut short for being the longest; only the length is read from it
    target = length or max(first.lengths + (second.lengths if second is not None else []))
    pool, facts = _arrays(first, classes, target)
    if second is None:
        return Parts(pool, facts=facts)
    if second.channels != first.channels:
        raise DataError(f"{second.name} has {second.channels} channel(s) but {first.name} has {first.channels}")
    own_test, test_facts = _arrays(second, classes, target)
    return Parts(pool, test=own_test, facts=facts + test_facts)


def _files(path: Path) -> tuple[Path, Path | None]:
    if path.is_dir():
        pair = pair_in_folder(path)
        if pair is None:
            raise DataError(f"folder '{path}' holds no NAME_TRAIN and NAME_TEST series files")
        return pair
    match = SPLIT_NAME.match(path.name)
    if match and match["part"].upper() == "TRAIN":
        part = match["part"]
        test = path.with_name(path.name[: match.start("part")] + ("TEST" if part.isupper() else "test")
                              + path.name[match.end("part"):])
        return path, test if test.is_file() else None
    return path, None


def read_series(path: Path) -> SeriesFile:
    """The cases of one file, by its format: .ts, else UCR text."""
    if path.suffix.lower() == ".ts":
        from swarmcnn.data.ts import read_ts

        return read_ts(path)
    from swarmcnn.data.ucr import read_ucr

    return read_ucr(path)


def _labels_of(series: SeriesFile) -> list[str]:
    if series.labels is None:
        raise DataError(f"{series.name} has no class labels ('@classLabel false'): its cases can be classified by a "
                        "model, not trained on")
    return series.labels


def _ordered(labels: list[str]) -> tuple[str, ...]:
    from swarmcnn.data.ucr import ordered_classes

    return ordered_classes(labels)


def _arrays(series: SeriesFile, classes: tuple[str, ...], length: int) -> tuple[Arrays, SignalFacts]:
    index = {name: i for i, name in enumerate(classes)}
    labels = _labels_of(series)
    unknown = next((i for i, label in enumerate(labels) if label not in index), None)
    if unknown is not None:
        raise DataError(f"{series.name} line {series.lines[unknown]}: class '{labels[unknown][:40]}' is not one of "
                        f"the training classes ({', '.join(classes)})")
    x, changed = to_array(series, length)
    lengths = series.lengths
    facts = SignalFacts(len(series.cases), length, min(lengths), max(lengths), changed, series.filled)
    return Arrays(x, np.array([index[label] for label in labels], dtype=np.int64), classes), facts


def load_cases(path: str | Path, input_shape: tuple[int, ...]) -> np.ndarray:
    """The cases of a file to classify, float32 (N, C, L) at the model's shape: a .ts or UCR file (labels ignored),
    or a .npy array (N, C, L), or (N, L) for a one-channel model; brought to L instants, missing values filled."""
    path = Path(path)
    channels, length = input_shape
    if path.suffix.lower() == ".npy":
        return prepared(_npy_cases(path, channels), length, f"array file '{path}'")[0]
    if not is_signal_file(path):
        raise DataError(f"'{path}' is not a file of series: the model takes signals {channels}×{length}; give a .ts, "
                        ".tsv, NAME_TEST(.txt) or .npy file")
    series = read_series(path)
    if series.channels != channels:
        raise DataError(f"{series.name} has {series.channels} channel(s) but the model takes {channels}")
    return to_array(series, length)[0]


def _npy_cases(path: Path, channels: int) -> np.ndarray:
    from swarmcnn.data.signals import as_signals

    x = _read_npy(path)
    where = f"array file '{path}'"
    if x.ndim == 2 and channels == 1:
        return as_signals(where, x, "NL")
    if x.ndim != 3 or x.shape[1] != channels:
        one = " or (N, L)" if channels == 1 else ""
        raise DataError(f"{where} has shape {x.shape}; the model takes cases (N, {channels}, L){one}")
    return as_signals(where, x, "NCL")


def _read_npy(path: Path) -> np.ndarray:
    """A .npy array, its header's shape and dtype checked (no pickle, memory) before the values are read."""
    from swarmcnn.data.files import check_regular_file
    from swarmcnn.memory import check_fits

    check_regular_file(path, "array file")
    try:
        with path.open("rb") as stream:
            version = np.lib.format.read_magic(stream)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(stream)
            if dtype.hasobject:
                raise DataError(f"array file '{path}' cannot be read without pickle (dtype {dtype})")
            count = int(np.prod(shape, dtype=object))
            check_fits(count * (dtype.itemsize + BYTES_PER_VALUE), f"array file '{path}' of shape {shape}", DataError)
            stream.seek(0)
            return np.load(stream, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"cannot read array file '{path}': {' '.join(str(error).split())[:200]}") from None
