"""The UCR archive's own text files: `NAME_TRAIN.tsv` / `NAME_TEST.tsv` (the 2018 archive, tab-separated) and the
older `NAME_TRAIN` / `NAME_TRAIN.txt` (values separated by spaces or commas), one series per line with its
label first, often written as a float (`1.0000000e+00`).

One channel per series. The 2018 archive pads the series of its variable-length sets with NaN to the longest:
NaNs at the end of a line shorten its series (brought to one length with the others, `swarmcnn.data.signals`),
NaNs inside it are missing values, filled. Labels are class names as written, a number in its shortest form
(`1.0000000e+00` is class '1'); numeric classes are ordered by value, others by name.

Written here for the reasons given in `swarmcnn.data.ts`: a fault names its file and line.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from swarmcnn.data.files import check_regular_file
from swarmcnn.data.signals import MISSING, SeriesFile, fill_missing, parse_values
from swarmcnn.data.ts import TEXT_BYTES
from swarmcnn.errors import DataError
from swarmcnn.memory import check_fits

_SEPARATORS = {".tsv": re.compile(r"\t"), "other": re.compile(r"[\s,]+")}


def read_ucr(path: Path) -> SeriesFile:
    """Every series of a UCR text file (label first), missing values filled; a fault names the file and line."""
    check_regular_file(path, "UCR file")
    size = path.stat().st_size
    check_fits(TEXT_BYTES * size, f"UCR file '{path}' of {size:,} bytes", DataError)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise DataError(f"UCR file '{path}' is not text (byte {error.start}): not a .tsv or .txt series file") from None
    separator = _SEPARATORS[".tsv" if path.suffix.lower() == ".tsv" else "other"]
    cases, labels, numbers, filled = [], [], [], 0
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        where = f"UCR file '{path}' line {number}"
        label, *tokens = separator.split(line)
        while tokens and tokens[-1].strip().lower() in MISSING:  # the padding of a shorter series
            tokens.pop()
        values = parse_values(tokens, where)
        filled += fill_missing(values, where)
        cases.append([values])
        labels.append(class_name(label, where))
        numbers.append(number)
    if not cases:
        raise DataError(f"UCR file '{path}' holds no series (it is empty)")
    return SeriesFile(cases, labels, None, numbers, f"UCR file '{path}'", filled)


def class_name(text: str, where: str) -> str:
    """A label as the class name it stands for: numbers in their shortest form ('1.0000000e+00' is '1')."""
    text = text.strip()
    if not text or text.lower() in MISSING:
        raise DataError(f"{where}: the label (the first value) is {'missing' if text else 'empty'}")
    try:
        value = float(text)
    except ValueError:
        return text
    if not math.isfinite(value):
        raise DataError(f"{where}: the label (the first value) is '{text[:40]}', not a class")
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def ordered_classes(labels: list[str]) -> tuple[str, ...]:
    """The distinct labels: by value where all are numbers (so '10' comes after '9'), else by name."""
    names = set(labels)
    try:
        return tuple(sorted(names, key=float))
    except ValueError:
        return tuple(sorted(names))
