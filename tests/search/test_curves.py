"""Learning curves from the ladder: the pooled exponent of two rungs, and a curve extended to more images."""

from __future__ import annotations

import dataclasses
import math

import pytest

from swarmcnn.search.curves import MAX_EXPONENT, Curve, exponent
from swarmcnn.search.evaluate import failure
from swarmcnn.search.journal import EvaluationRecord
from swarmcnn.search.ladder import by_rung


def _scored(spec: str, rung: int, accuracy: float, images: int) -> EvaluationRecord:
    return EvaluationRecord(spec, "ok", "", accuracy, accuracy, 0.5, 1000, 1000, 2, 1.0, rung=rung, images=images)


def test_a_curve_through_two_scores_passes_through_both_and_keeps_falling():
    low, high = _scored("a", 1, 0.6, 1000), _scored("a", 2, 0.7, 3000)
    found = exponent(by_rung([low, high]), top=2)
    assert found == pytest.approx(math.log(0.4 / 0.3) / math.log(3))
    curve = Curve.of(high, found)
    assert curve.accuracy_after(3000) == pytest.approx(0.7)
    assert curve.accuracy_after(1000) == pytest.approx(0.6)
    assert 0.7 < curve.accuracy_after(9000) < curve.accuracy_after(27000) < 1.0


def test_the_exponent_is_the_median_of_the_networks_on_both_rungs():
    records = [
        _scored("a", 1, 0.5, 1000), _scored("a", 2, 0.75, 4000),  # error halves: 0.5
        _scored("b", 1, 0.5, 1000), _scored("b", 2, 0.5, 4000),  # flat: 0
        _scored("c", 1, 0.6, 1000), _scored("c", 2, 0.8, 4000),  # error halves: 0.5
        _scored("d", 1, 0.6, 1000),  # not promoted: no curve
    ]
    assert exponent(by_rung(records), top=2) == pytest.approx(0.5)


def test_noise_makes_no_rising_error_and_no_impossibly_steep_fall():
    fell = [_scored("a", 1, 0.7, 1000), _scored("a", 2, 0.6, 3000)]  # scored worse after more images
    assert exponent(by_rung(fell), top=2) == 0.0
    perfect = [_scored("a", 1, 0.5, 1000), _scored("a", 2, 1.0, 3000)]
    assert exponent(by_rung(perfect), top=2) == MAX_EXPONENT


def test_without_two_scored_rungs_there_is_no_curve():
    assert exponent(by_rung([_scored("a", 0, 0.5, 1000)]), top=0) is None
    assert exponent(by_rung([_scored("a", 0, 0.5, 1000), _scored("b", 1, 0.6, 3000)]), top=1) is None
    broken = failure("a", "diverged", "loss became nan")
    assert exponent(by_rung([_scored("a", 0, 0.5, 1000), dataclasses.replace(broken, rung=1)]), top=1) is None
