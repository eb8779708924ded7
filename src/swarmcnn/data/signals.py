"""Signals: C channels recorded over L instants (sensors, EEG electrodes, prices), as one float32 array (N, C, L)
whichever source they come from.

What the signal sources share (`swarmcnn.data.ts`, `.ucr`, `.npz` and `from_arrays`, the built-in `bumps`):

- Values are read as float64, refused where they are text, empty, infinite or beyond float32, and kept as
  float32. '?' (and NaN) is a missing value.
- Missing values are filled by linear interpolation along time between the nearest values on each side (the
  nearest value itself before the first or after the last); a series with no value at all is refused.
- Series of unequal lengths are all brought to one length (the longest of the source, its own test part
  included, unless `DataConfig.length` says) by linear interpolation over each series' own span, as the
  deep-learning baselines did (Fawaz et al., "Deep learning for time series classification: a review", 2019:
  the unequal multivariate sets resampled to their longest series).
- `standardized` is the per-series z-normalisation of the UCR baselines (`DataConfig.normalize = "series"`),
  the same arithmetic as `swarmcnn.inference.standardized_series`, which models apply to what they are given.

How many series were resampled and how many values filled is kept (`SignalFacts`) for the data summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from swarmcnn.errors import DataError
from swarmcnn.memory import check_fits

LAYOUTS = ("NL", "NCL")  # (N, L) one channel, (N, C, L)
MISSING = ("?", "nan")  # tokens read as a missing value (compared in lower case)
# memory per value of a data set: the float32 array, its copy in a split, and a float64 series while it is read
BYTES_PER_VALUE = 16
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class SeriesFile(NamedTuple):
    """The cases of one file as read, before they are brought to one length."""

    cases: list[list[np.ndarray]]  # per case, per channel: float64 values, missing ones filled
    labels: list[str] | None  # per case, as written; None where the file has none
    classes: tuple[str, ...] | None  # the class names the file declares, in its order (.ts @classLabel)
    lines: list[int]  # the line number of each case, for messages
    name: str  # how messages name the file
    filled: int = 0  # missing values filled

    @property
    def channels(self) -> int:
        return len(self.cases[0])

    @property
    def lengths(self) -> list[int]:
        return [len(values) for case in self.cases for values in case]


@dataclass(frozen=True)
class SignalFacts:
    """What preparing a signal set did: its length, the lengths read, series resampled and values filled."""

    series: int  # cases read
    length: int  # instants of every series now
    shortest: int  # the shortest series read
    longest: int  # the longest series read
    resampled: int = 0  # cases brought to `length` from another length
    filled: int = 0  # missing values filled

    def __add__(self, other: SignalFacts) -> SignalFacts:
        return SignalFacts(self.series + other.series, self.length, min(self.shortest, other.shortest),
                           max(self.longest, other.longest), self.resampled + other.resampled,
                           self.filled + other.filled)

    def describe(self) -> str:
        """One phrase for the data summary: '29 instants; 270 of 640 series of 7-26 resampled, 3 values filled'."""
        text = f"{self.length} instants"
        if self.resampled:
            lengths = f"{self.shortest}-{self.longest}" if self.shortest != self.longest else f"{self.shortest}"
            text += f"; {self.resampled} of {self.series} series of {lengths} instants resampled to {self.length}"
        if self.filled:
            text += f"; {self.filled} missing value{'s' * (self.filled != 1)} filled"
        return text


def parse_values(tokens: list[str], where: str) -> np.ndarray:
    """One series' values from their texts, float64, NaN where missing; a text that is not a number is refused
    naming where and which value."""
    if not tokens or tokens == [""]:
        raise DataError(f"{where}: an empty series (no values)")
    texts = ["nan" if token.strip().lower() in MISSING else token for token in tokens]
    try:
        values = np.array(texts, dtype=np.float64)
    except ValueError:
        index = next(i for i, text in enumerate(texts) if not _is_number(text))
        shown = tokens[index].strip()[:40]
        what = f"'{shown}' is not a number" if shown else "an empty value (two separators in a row)"
        raise DataError(f"{where}, value {index + 1}: {what}") from None
    big = np.abs(np.nan_to_num(values, nan=0.0)) > _FLOAT32_MAX
    if big.any():
        index = int(np.flatnonzero(big)[0])
        raise DataError(f"{where}, value {index + 1}: {tokens[index].strip()[:40]} is beyond float32's range"
                        + (" (infinite)" if np.isinf(values[index]) else ""))
    return values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def fill_missing(values: np.ndarray, where: str) -> int:
    """Fill the NaNs of one series in place by linear interpolation along time; how many there were."""
    missing = np.isnan(values)
    count = int(missing.sum())
    if count == len(values):
        raise DataError(f"{where}: every one of its {len(values)} values is missing")
    if count:
        known = np.flatnonzero(~missing)
        values[missing] = np.interp(np.flatnonzero(missing), known, values[known])
    return count


def resampled(values: np.ndarray, length: int) -> np.ndarray:
    """values (..., L) at `length` instants spread evenly over the same span, by linear interpolation; a single
    value is repeated."""
    if values.shape[-1] == length:
        return values
    if values.shape[-1] == 1:
        return np.repeat(values, length, axis=-1)
    position = np.linspace(0, values.shape[-1] - 1, length)
    left = np.minimum(position.astype(np.int64), values.shape[-1] - 2)
    share = position - left
    return values[..., left] * (1 - share) + values[..., left + 1] * share


def to_array(series: SeriesFile, length: int) -> tuple[np.ndarray, int]:
    """The cases of a file as one float32 (N, C, length) array, and how many cases were resampled."""
    count, channels = len(series.cases), series.channels
    check_fits(BYTES_PER_VALUE * count * channels * length,
               f"{series.name}: {count:,} cases of {channels} channel(s) at {length:,} instants", DataError)
    x = np.empty((count, channels, length), dtype=np.float32)
    changed = 0
    for i, case in enumerate(series.cases):
        changed += any(len(values) != length for values in case)
        for c, values in enumerate(case):
            x[i, c] = resampled(values, length)
    return x, changed


def prepared(x: np.ndarray, length: int | None, what: str) -> tuple[np.ndarray, SignalFacts]:
    """Signals in an array (N, C, L), NaN where missing, filled and brought to `length` (None: as they are)."""
    count, channels, instants = x.shape
    target = length or instants
    check_fits(BYTES_PER_VALUE * count * channels * max(target, instants), f"{what} at {target:,} instants",
               DataError)
    x = np.array(x, dtype=np.float32)  # a copy: the caller's array stays as it was
    holes = np.flatnonzero(np.isnan(x).reshape(count * channels, instants).any(axis=1))
    filled = 0
    for row in holes.tolist():
        values = x[row // channels, row % channels].astype(np.float64)
        filled += fill_missing(values, f"{what}: sample {row // channels} channel {row % channels + 1}")
        x[row // channels, row % channels] = values
    if target != instants:
        x = np.ascontiguousarray(resampled(x, target), dtype=np.float32)
    facts = SignalFacts(count, target, instants, instants, count if target != instants else 0, filled)
    return x, facts


def standardized(x: np.ndarray) -> np.ndarray:
    """Each series (the last axis) at mean 0 and standard deviation 1; as `inference.standardized_series`."""
    from swarmcnn.inference import SERIES_EPS, SERIES_FLAT

    centred = x - x.mean(axis=-1, keepdims=True, dtype=np.float64)
    deviation = np.sqrt(np.square(centred).mean(axis=-1, keepdims=True))
    floor = SERIES_EPS + SERIES_FLAT * np.abs(x).mean(axis=-1, keepdims=True, dtype=np.float64)
    return np.ascontiguousarray(centred / np.maximum(deviation, floor), dtype=np.float32)


def as_signals(field: str, x: np.ndarray, layout: str) -> np.ndarray:
    """Numbers (N, L) or (N, C, L) as float32 (N, C, L), NaN kept where missing (`prepared` fills it); field names
    the array in messages ("npz file 'd.npz' field 'x'", "array x")."""
    if x.dtype.kind not in "iuf":
        raise DataError(f"{field} has dtype {x.dtype}; signals must be integers or floats")
    x = x[:, None] if layout == "NL" else x
    if 0 in x.shape[1:]:
        raise DataError(f"{field} has shape {x.shape} read as {layout}: its series hold no values")
    if x.dtype.kind == "f" and len(x):
        magnitude = np.abs(np.nan_to_num(x, nan=0.0, posinf=np.inf, neginf=np.inf))
        big = (magnitude > _FLOAT32_MAX).reshape(len(x), -1).any(axis=1)
        if big.any():
            raise DataError(f"{field} holds infinite values or values beyond float32's range (first in sample "
                            f"{int(np.flatnonzero(big)[0])}); a missing value is NaN")
    return np.ascontiguousarray(x, dtype=np.float32)
