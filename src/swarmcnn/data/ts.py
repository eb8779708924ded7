"""The `.ts` format of sktime / aeon and the UEA & UCR archives: a header, then one case per line.

    # comments anywhere
    @problemName BasicMotions
    @timeStamps false          (true is refused: the values must be equally spaced)
    @missing false             ('?' is read as missing wherever it appears; the header is not trusted)
    @univariate false
    @dimensions 6              (channels; 1 where @univariate true)
    @equalLength true
    @seriesLength 100          (checked against every case, and against memory before anything is read)
    @classLabel true Standing Running Walking Badminton     (or 'false': cases without labels, to predict)
    @data
    0.07,0.07,-0.9:1.1,1.6,1.0:...:Standing

Channels are separated by ':', values by ',', the label comes last; '?' (or NaN) is a missing value. Header keys
are case-insensitive, labels are not. The class names are @classLabel's, in its order.

Written here rather than taken from sktime or aeon: both are large (pandas, numba, their own data types) and
not a dependency of swarmcnn, and their readers neither name the line of a fault nor check a header against
memory. Missing values are filled here, line by line, so that a series with no values at all names its line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swarmcnn.data.files import check_regular_file
from swarmcnn.data.signals import BYTES_PER_VALUE, SeriesFile, fill_missing, parse_values
from swarmcnn.errors import DataError, did_you_mean
from swarmcnn.memory import check_fits

KEYS = ("problemname", "timestamps", "missing", "univariate", "dimensions", "equallength", "serieslength",
        "classlabel", "targetlabel", "data")
_BOOLEAN = ("timestamps", "missing", "univariate", "equallength", "targetlabel")
_SPELLED = {key: key for key in KEYS} | {"problemname": "problemName", "timestamps": "timeStamps",
                                        "equallength": "equalLength", "serieslength": "seriesLength",
                                        "classlabel": "classLabel", "targetlabel": "targetLabel"}
TEXT_BYTES = 3  # the text in memory (bytes, then str) per byte of the file, while its lines are parsed
TOKEN_BYTES = 32  # a line's values as Python strings, per character of the line (a value takes 2 at least)
_LONG_LINE = 2**20  # lines above this length are checked against memory before they are split


@dataclass(frozen=True)
class Header:
    """What a .ts file's header says; None where it says nothing."""

    problem_name: str | None = None
    univariate: bool | None = None
    dimensions: int | None = None
    equal_length: bool | None = None
    series_length: int | None = None
    classes: tuple[str, ...] | None = None  # @classLabel's labels; None for '@classLabel false'
    labelled: bool = True
    data_line: int = 0  # the line number of @data

    @property
    def channels(self) -> int | None:
        return self.dimensions if self.dimensions is not None else (1 if self.univariate else None)


def read_ts(path: Path) -> SeriesFile:
    """Every case of a .ts file (missing values filled), its labels and the header's classes; a fault ends in one
    DataError naming the file and the line."""
    check_regular_file(path, ".ts file")
    size = path.stat().st_size
    check_fits(TEXT_BYTES * size, f".ts file '{path}' of {size:,} bytes", DataError)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise DataError(f".ts file '{path}' is not UTF-8 text (byte {error.start}): not a .ts file") from None
    header = _header(path, lines)
    rows = [(n, line.strip()) for n, line in enumerate(lines[header.data_line:], start=header.data_line + 1)]
    rows = [(n, line) for n, line in rows if line and not line.startswith("#")]
    _check_claimed_size(path, header, len(rows))
    return _cases(path, header, rows)


def _header(path: Path, lines: list[str]) -> Header:
    values: dict = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("@"):
            raise DataError(f".ts file '{path}' line {number}: a case before '@data' (the header ends with a line "
                            "'@data'); is this a .ts file?")
        key, _, rest = line[1:].partition(" ")
        key, rest = key.lower(), rest.strip()
        if key not in KEYS:
            hint = did_you_mean(key, list(KEYS))
            raise DataError(f".ts file '{path}' line {number}: unknown header '@{line[1:].split(' ')[0][:40]}'{hint}")
        if key == "data":
            if rest:
                raise DataError(f".ts file '{path}' line {number}: '@data' takes no value, got '{rest[:40]}'")
            return _checked(path, values, number)
        if key in values:
            raise DataError(f".ts file '{path}' line {number}: '@{_SPELLED[key]}' is given twice")
        values[key] = (_header_value(path, number, key, rest), number)
    raise DataError(f".ts file '{path}' has no '@data' line: its header never ends, so it holds no cases")


def _header_value(path: Path, number: int, key: str, rest: str):
    where = f".ts file '{path}' line {number}: '@{_SPELLED[key]}'"
    if key in _BOOLEAN:
        if rest.lower() not in ("true", "false"):
            raise DataError(f"{where} must be true or false, got '{rest[:40]}'")
        return rest.lower() == "true"
    if key in ("dimensions", "serieslength"):
        if not rest.isdigit() or len(rest) > 18 or int(rest) < 1:
            raise DataError(f"{where} must be a whole number of at least 1, got '{rest[:40]}'")
        return int(rest)
    if key == "classlabel":
        flag, _, labels = rest.partition(" ")
        if flag.lower() == "false" and not labels.strip():
            return None
        if flag.lower() != "true" or not labels.split():
            raise DataError(f"{where} must be 'true' followed by the labels, or 'false', got '{rest[:60]}'")
        names = labels.split()
        twice = next((name for i, name in enumerate(names) if name in names[:i]), None)
        if twice is not None:
            raise DataError(f"{where} lists label '{twice[:40]}' twice")
        return tuple(names)
    return rest  # problemName


def _checked(path: Path, values: dict, data_line: int) -> Header:
    """The header, once what swarmcnn cannot read (timestamps, regression) and contradictions are refused."""
    for key, what in (("timestamps", "timestamped values"), ("targetlabel", "regression targets, not classes")):
        if values.get(key, (False,))[0]:
            raise DataError(f".ts file '{path}' line {values[key][1]}: '@{_SPELLED[key]} true': {what}; swarmcnn "
                            "reads equally spaced series with class labels")
    get = {key: value for key, (value, _) in values.items()}
    if "classlabel" not in get:
        raise DataError(f".ts file '{path}' has no '@classLabel' line before '@data' (line {data_line}): write "
                        "'@classLabel true' and the labels for labelled cases, or '@classLabel false'")
    if get.get("univariate") and get.get("dimensions", 1) != 1:
        raise DataError(f".ts file '{path}' line {values['dimensions'][1]}: '@dimensions {get['dimensions']}' but "
                        "'@univariate true'; a univariate series has one channel")
    return Header(
        problem_name=get.get("problemname"),
        univariate=get.get("univariate"),
        dimensions=get.get("dimensions"),
        equal_length=get.get("equallength"),
        series_length=get.get("serieslength"),
        classes=get.get("classlabel"),
        labelled=get["classlabel"] is not None,
        data_line=data_line,
    )


def _check_claimed_size(path: Path, header: Header, cases: int) -> None:
    """What the header's lengths would take in memory, checked before any case is read."""
    if header.series_length is None:
        return
    channels = header.channels or 1
    needed = BYTES_PER_VALUE * cases * channels * header.series_length
    check_fits(needed, f".ts file '{path}': its header's '@seriesLength {header.series_length}' makes {cases:,} "
               f"cases of {channels:,} channel(s) × {header.series_length:,} instants, which", DataError)


def _cases(path: Path, header: Header, rows: list[tuple[int, str]]) -> SeriesFile:
    cases, labels, numbers, filled = [], [], [], 0
    channels = header.channels
    for number, line in rows:
        where = f".ts file '{path}' line {number}"
        if len(line) > _LONG_LINE:
            check_fits(TOKEN_BYTES * len(line), f"{where} ({len(line):,} characters)", DataError)
        if line.startswith("@"):
            raise DataError(f"{where}: a header line after '@data'")
        fields = line.split(":")
        label = None
        if header.labelled:
            label = fields.pop().strip()
            if label not in header.classes:
                raise DataError(f"{where}: label '{label[:40]}' is not one of @classLabel's "
                                f"({', '.join(header.classes)}){did_you_mean(label, list(header.classes))}")
        channels = channels or len(fields)
        if len(fields) != channels:
            said = "the header" if header.channels else f"line {numbers[0] if numbers else number}"
            raise DataError(f"{where}: {len(fields)} channel(s) separated by ':', but {said} says {channels}"
                            + ("; is the label missing?" if len(fields) == channels - 1 and header.labelled else ""))
        case = [parse_values(field.split(","), f"{where} channel {c + 1}") for c, field in enumerate(fields)]
        filled += sum(fill_missing(values, f"{where} channel {c + 1}") for c, values in enumerate(case))
        _check_length(where, header, case, cases)
        cases.append(case)
        labels.append(label)
        numbers.append(number)
    if not cases:
        raise DataError(f".ts file '{path}' holds no cases after '@data' (line {header.data_line})")
    return SeriesFile(cases, labels if header.labelled else None, header.classes, numbers, f".ts file '{path}'",
                      filled)


def _check_length(where: str, header: Header, case: list[np.ndarray], earlier: list) -> None:
    lengths = {len(values) for values in case}
    if header.series_length is not None and header.equal_length is not False and lengths != {header.series_length}:
        raise DataError(f"{where}: a series of {min(lengths)} values, but the header says @seriesLength "
                        f"{header.series_length}")
    if header.equal_length and earlier and lengths != {len(earlier[0][0])}:
        raise DataError(f"{where}: a series of {min(lengths)} values where the first case has {len(earlier[0][0])}, "
                        "but the header says @equalLength true")
