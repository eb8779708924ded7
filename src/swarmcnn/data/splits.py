"""Labelled arrays as a source reads them, and the deterministic stratified split into train/val/test."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from swarmcnn.errors import DataError

if TYPE_CHECKING:
    from swarmcnn.data.signals import SignalFacts


class Arrays(NamedTuple):
    """What every source returns before splitting: x (N, C, H, W), y int64 (N,), and the class names."""

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]

    def take(self, indices: np.ndarray) -> Arrays:
        return Arrays(self.x[indices], self.y[indices], self.class_names)


class Parts(NamedTuple):
    """What a source holds: the pool to split, and its own test and validation parts where it ships them."""

    pool: Arrays
    test: Arrays | None = None  # IDX t10k files, a test/ folder
    val: Arrays | None = None  # a val/ folder
    facts: SignalFacts | None = None  # signals read from files: their preparation, already done (lengths, filling)


def first_per_class(arrays: Arrays, count: int) -> Arrays:
    """At most `count` samples of each class, the first ones in the source's order (a smaller set to try)."""
    order = np.arange(len(arrays.y))
    rank = np.zeros(len(order), dtype=np.int64)
    for label in np.unique(arrays.y):
        members = order[arrays.y == label]
        rank[members] = np.arange(len(members))
    return arrays.take(order[rank < count])


def split_indices(
    y: np.ndarray,
    class_names: tuple[str, ...],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    source: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, val and test indices into y: stratified, repeatable given seed, every class in every split.

    test_fraction 0 (as for IDX, which brings its own test set) gives an empty test split.
    """
    min_keep = 1 + (val_fraction > 0)
    _check_class_sizes(y, class_names, min_keep + (test_fraction > 0), source)
    rest, test = _carve(np.arange(len(y)), y, test_fraction, seed, min_keep)
    # val_fraction is of the whole set; the test part is already gone
    train, val = _carve(rest, y, val_fraction / (1 - test_fraction), seed, 1)
    return train, val, test


def _check_class_sizes(y: np.ndarray, class_names: tuple[str, ...], needed: int, source: str) -> None:
    counts = np.bincount(y, minlength=len(class_names))
    for label, count in enumerate(counts):
        if 0 < count < needed:  # a class without samples cannot be stratified, but does no harm
            raise DataError(
                f"class '{class_names[label]}' in '{source}' has only {count} sample(s); "
                f"a stratified split into {needed} parts needs at least {needed} per class"
            )


def _carve(pool: np.ndarray, y: np.ndarray, fraction: float, seed: int, min_keep: int) -> tuple[np.ndarray, np.ndarray]:
    """Split pool into (keep, held) with held about fraction of it, stratified by y."""
    if fraction == 0:
        return pool, pool[:0]
    from sklearn.model_selection import train_test_split

    classes = len(np.unique(y[pool]))
    # sklearn refuses a part smaller than the number of classes; _check_class_sizes makes this range non-empty
    held_count = min(max(math.ceil(fraction * len(pool) - 1e-9), classes), len(pool) - classes * min_keep)
    keep, held = train_test_split(pool, test_size=held_count, stratify=y[pool], random_state=seed)
    return _every_class_on_both_sides(keep, held, y, min_keep)


def _every_class_on_both_sides(
    keep: np.ndarray, held: np.ndarray, y: np.ndarray, min_keep: int
) -> tuple[np.ndarray, np.ndarray]:
    """Move single samples so each class has one held and min_keep kept.

    sklearn rounds the per-class counts against the total size, so a rare class can land entirely on one side.
    """
    to_held: list[int] = []
    to_keep: list[int] = []
    for label in np.unique(y[np.concatenate([keep, held])]):
        kept, heldout = keep[y[keep] == label], held[y[held] == label]
        if len(heldout) == 0:  # _check_class_sizes left more than min_keep on the kept side
            to_held.append(int(kept[-1]))
        elif len(kept) < min_keep:
            to_keep.extend(heldout[: min_keep - len(kept)].tolist())
    if not to_held and not to_keep:
        return keep, held
    keep = np.concatenate([keep[~np.isin(keep, to_held)], np.asarray(to_keep, dtype=keep.dtype)])
    held = np.concatenate([held[~np.isin(held, to_keep)], np.asarray(to_held, dtype=held.dtype)])
    return keep, held
