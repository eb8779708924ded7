"""Sharing a wall-clock budget: final epochs that fit, a per-candidate limit, and candidates too slow to try."""

from __future__ import annotations

import pytest

from swarmcnn.search.budget import (
    FINAL_SHARE,
    TOO_SLOW_MARGIN,
    candidate_seconds_limit,
    choose_final,
    epoch_seconds,
    epochs_within,
    predicted_seconds,
    search_seconds_left,
    too_slow,
)
from swarmcnn.search.evaluate import EvaluationConfig, failure
from swarmcnn.search.journal import EvaluationRecord
from swarmcnn.search.loop import Search, SearchConfig
from swarmcnn.search.promotion import PROMOTION_FACTOR
from swarmcnn.search.space import SearchSpace
from swarmcnn.spec import Spec

TINY = SearchSpace(blocks=(1, 1), convs_per_block=(1, 1), features=(8, 16), fc_layers=(0, 1), neurons=(16, 32))


def _record(spec: str, seconds: float, flops: int, epochs: int = 2, score: float = 0.9) -> EvaluationRecord:
    return EvaluationRecord(spec, "ok", "trained", score, score, 0.3, 1000, flops, epochs, seconds)


@pytest.mark.parametrize("train_fraction", [1.0, 0.25])
def test_a_candidate_at_the_limit_would_need_exactly_the_final_share_of_the_budget(digits, train_fraction):
    evaluation = EvaluationConfig(epochs=2, train_fraction=train_fraction)
    limit = candidate_seconds_limit(600, 30, digits, evaluation)
    at_limit = _record("conv8x3 relu", limit, 1000, epochs=2)
    assert epoch_seconds(at_limit, digits, evaluation) * 30 == pytest.approx(FINAL_SHARE * 600)


def test_a_final_epoch_costs_more_than_a_candidate_epoch_on_more_images(digits):
    evaluation = EvaluationConfig(epochs=2)
    per_candidate_epoch = 10.0 / 2
    images = (len(digits.train) + len(digits.val)) / len(digits.train)
    assert epoch_seconds(_record("conv8x3 relu", 10.0, 1000), digits, evaluation) > per_candidate_epoch * images


@pytest.mark.parametrize(
    ("wanted", "per_epoch", "left", "expected"),
    [(30, 2.0, None, 30), (30, 2.0, 100.0, 30), (30, 2.0, 41.0, 20), (30, 2.0, 1.0, 1), (30, 2.0, -5.0, 1)],
)
def test_final_epochs_fit_what_is_left_and_never_drop_to_zero(wanted, per_epoch, left, expected):
    assert epochs_within(wanted, per_epoch, left) == expected


def test_prediction_uses_the_fastest_rate_of_trained_candidates_only():
    assert predicted_seconds(1000, []) is None
    records = [
        _record("conv8x3 relu", 4.0, 1000),  # 4 ms per FLOP
        _record("conv16x3 relu", 2.0, 1000),  # 2 ms per FLOP: the fastest
        failure("conv32x3 relu", "time-limit", "slow", seconds=0.001, flops=1000),  # not a rate: it was cut
    ]
    assert predicted_seconds(5000, records) == pytest.approx(10.0)


def test_search_with_a_budget_stops_candidates_at_the_derived_limit(tmp_path):
    config = SearchConfig(source="digits", strategy="random", budget_seconds=60, final_epochs=10, space=TINY)
    search = Search.start(tmp_path / "run", config)
    expected = candidate_seconds_limit(60, 10, search.data, config.evaluation)
    assert search.evaluation.max_seconds == pytest.approx(expected)
    given = SearchConfig(**{**vars(config), "evaluation": EvaluationConfig(max_seconds=7.0)})
    assert Search.start(tmp_path / "given", given).evaluation.max_seconds == 7.0  # the user's own limit wins


def test_candidate_too_slow_even_at_the_fastest_rate_is_recorded_without_training(tmp_path):
    config = SearchConfig(
        source="digits", strategy="random", evaluations=4, space=TINY, evaluation=EvaluationConfig(max_seconds=5.0)
    )
    search = Search.start(tmp_path / "run", config)
    small = "conv8x3 relu"
    flops = Spec.parse(small).flops(search.data.input_shape, len(search.data.class_names))
    search.known[small] = _record(small, 0.5, flops)
    assert search._too_slow(small) is None  # 0.5s: within the limit
    big = "conv128x5 relu conv128x5 relu fc256 relu"
    record = search._too_slow(big)
    assert record.status == "too-slow" and record.seconds == 0 and record.score == float("-inf")
    assert "over the 5s limit" in record.reason and record.flops > 100 * flops


def test_candidate_predicted_just_over_the_limit_is_still_tried(digits):
    small = Spec.parse("conv8x3 relu")
    flops = small.flops(digits.input_shape, 10)
    seen = [_record(str(small), 1.0, flops)]
    assert too_slow(small, digits, 0.9, seen) is None  # 1s predicted, within the margin of 0.9s
    assert too_slow(small, digits, 1.0 / (TOO_SLOW_MARGIN + 0.1), seen).status == "too-slow"


def test_final_choice_is_the_best_unless_it_would_get_under_half_its_epochs(digits):
    evaluation = EvaluationConfig(epochs=2)
    fast = _record("conv8x3 relu", 1.0, 1000, score=0.95)
    slow = _record("conv64x3 relu", 40.0, 1000, score=0.97)  # best, about 27s per final epoch
    worst = _record("conv4x3 relu", 0.5, 1000, score=0.90)
    records = [fast, slow, worst]
    assert choose_final(records, digits, evaluation, 30, None) is slow  # no budget: the best
    assert choose_final(records, digits, evaluation, 30, 10_000) is slow  # it fits
    assert choose_final(records, digits, evaluation, 30, 100) is fast  # slow would get 3 of 30 epochs
    assert choose_final(records, digits, evaluation, 30, 1) is slow  # nothing fits: the best after all
    assert choose_final([failure("conv8x3 relu", "failed", "x")], digits, evaluation, 30, 100) is None


def test_the_search_keeps_time_for_the_promotions_not_yet_run_and_the_final_training_of_the_best(digits):
    evaluation = EvaluationConfig(epochs=2)
    best, second = _record("conv8x3 relu", 4.0, 1000, score=0.9), _record("conv16x3 relu", 6.0, 2000, score=0.8)
    final = epoch_seconds(best, digits, evaluation) * 30
    left = search_seconds_left(600, 100, [second, best], digits, evaluation, 30, promote=2, promoted=[best.spec])
    assert left == pytest.approx(600 - 100 - final - 6.0 * PROMOTION_FACTOR)
    assert search_seconds_left(600, 100, [], digits, evaluation, 30, promote=2) == 500
