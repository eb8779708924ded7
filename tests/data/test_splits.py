"""The stratified train/val/test split: deterministic, disjoint, every class everywhere it can be."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmcnn.data.splits import split_indices
from swarmcnn.errors import DataError


def _labels(*counts: int) -> np.ndarray:
    return np.repeat(np.arange(len(counts)), counts)


def _names(y: np.ndarray) -> tuple[str, ...]:
    return tuple(f"class{label}" for label in range(y.max() + 1))


def test_same_seed_gives_the_same_split_and_another_seed_another():
    y = _labels(50, 30, 20)
    first = split_indices(y, _names(y), 0.2, 0.2, 7, "test")
    again = split_indices(y, _names(y), 0.2, 0.2, 7, "test")
    other = split_indices(y, _names(y), 0.2, 0.2, 8, "test")
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[2], other[2])


def test_split_keeps_the_class_proportions():
    y = _labels(600, 300, 100)
    for part in split_indices(y, _names(y), 0.15, 0.15, 0, "test")[1:]:
        shares = np.bincount(y[part]) / len(part)
        assert np.allclose(shares, [0.6, 0.3, 0.1], atol=0.02)


def test_rare_class_still_lands_in_every_split():
    y = _labels(200, 3, 4)
    for part in split_indices(y, _names(y), 0.15, 0.15, 0, "test"):
        assert set(y[part].tolist()) == {0, 1, 2}


def test_class_with_too_few_samples_is_named():
    y = _labels(50, 2)
    with pytest.raises(DataError, match="class 'rare' in 'pets' has only 2 sample"):
        split_indices(y, ("common", "rare"), 0.15, 0.15, 0, "pets")


def test_two_samples_suffice_without_a_test_split():
    y = _labels(50, 2)
    train, val, test = split_indices(y, ("common", "rare"), 0.15, 0.0, 0, "idx")
    assert len(test) == 0 and 1 in y[train] and 1 in y[val]


def test_class_without_samples_is_allowed():
    y = np.array([0] * 10 + [2] * 10)
    train, val, test = split_indices(y, ("a", "b", "c"), 0.2, 0.2, 0, "npz")
    assert len(train) + len(val) + len(test) == 20


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(3, 40), min_size=2, max_size=6),
    val_fraction=st.floats(0.05, 0.45),
    test_fraction=st.floats(0.0, 0.45),
    seed=st.integers(0, 2**31 - 1),
)
def test_splits_partition_the_data_and_hold_every_class(counts, val_fraction, test_fraction, seed):
    y = _labels(*counts)
    parts = split_indices(y, _names(y), val_fraction, test_fraction, seed, "test")
    together = np.concatenate(parts)
    assert np.array_equal(np.sort(together), np.arange(len(y)))
    for part in parts if test_fraction > 0 else parts[:2]:
        assert set(y[part].tolist()) == set(range(len(counts)))
