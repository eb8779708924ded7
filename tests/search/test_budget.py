"""Sharing a wall-clock budget: the final training's reserve, rung 0 sized from the pace, candidates too slow to
try, and a budgeted search on data larger than digits that ends with its final training completed."""

from __future__ import annotations

import dataclasses
import time

import pytest
import torch

from swarmcnn.data import Dataset, Split
from swarmcnn.designs import design
from swarmcnn.inference import Normalization
from swarmcnn.search.budget import (
    CAP_FACTOR,
    FINAL_EPOCHS,
    FINAL_SHARE,
    MIN_PER_CLASS,
    RUNG0_EVALUATIONS,
    TOLERANCE,
    TOO_SLOW_MARGIN,
    choose_final,
    curve_reserve,
    final_epochs,
    final_pace_limit,
    final_reserve,
    plan_search,
    predicted_seconds,
    too_slow,
)
from swarmcnn.search.curves import Curve
from swarmcnn.search.evaluate import EvaluationConfig, failure
from swarmcnn.search.final import final_config
from swarmcnn.search.journal import EvaluationRecord
from swarmcnn.search.ladder import by_rung, ranking
from swarmcnn.search.loop import Search, SearchConfig
from swarmcnn.search.pace import seconds_per_image
from swarmcnn.search.space import SearchSpace
from swarmcnn.spec import Spec
from tests.search.fakes import Scripted

TINY = SearchSpace(blocks=(1, 1), convs_per_block=(1, 1), features=(8, 16), fc_layers=(0, 1), neurons=(16, 32))


def _record(spec: str, seconds: float, flops: int, images: int = 1000, score: float = 0.9) -> EvaluationRecord:
    return EvaluationRecord(spec, "ok", "trained", score, score, 0.3, 1000, flops, 2, seconds, images=images)


def _images(data: Dataset) -> int:
    return len(data.train) + len(data.val)


def test_the_final_training_keeps_its_share_of_the_budget_or_the_time_of_its_epochs(digits):
    fast = 1e-6  # seconds per image: its epochs take nothing, the share decides
    assert final_reserve(600, digits, fast) == FINAL_SHARE * 600
    slow = 1e-2
    assert final_reserve(600, digits, slow) == pytest.approx(FINAL_EPOCHS * _images(digits) * slow)


def test_a_design_still_learning_keeps_the_time_the_search_would_cost_it_over_tolerance(digits):
    pace = 1e-3  # seconds per image: 600 s hold 600,000 images
    flat = Curve(error=0.01, images=10_000, exponent=0.0)
    assert curve_reserve(600, flat, pace) == 0.0
    assert final_reserve(600, digits, 1e-6, (flat, pace)) == FINAL_SHARE * 600  # flat: the share decides
    steep = Curve(error=0.4, images=10_000, exponent=0.2)  # photos: error still falls by a seventh per doubling
    reserve = curve_reserve(600, steep, pace)
    assert FINAL_SHARE * 600 < reserve < 600
    lost = steep.accuracy_after(600 / pace) - steep.accuracy_after(reserve / pace)
    assert lost == pytest.approx(TOLERANCE)  # the search may cost the design just the tolerance
    assert final_reserve(600, digits, 1e-6, (steep, pace)) == reserve
    learned = Curve(error=0.02, images=10_000, exponent=0.5)  # digits: nearly learned, more time gives little
    assert curve_reserve(600, learned, pace) < FINAL_SHARE * 600


@pytest.mark.parametrize("pace", [1e-5, 1e-4, 1e-3])  # a fast, a middling and a slow network or machine
def test_final_epochs_fill_the_time_at_the_pace_and_never_drop_to_zero(digits, pace):
    seconds = 30.0
    epochs = final_epochs(seconds, digits, pace)
    assert epochs >= 1
    if epochs > 1:
        assert epochs * _images(digits) * pace <= seconds < (epochs + 1) * _images(digits) * pace


def _bigger(data: Dataset, copies: int) -> Dataset:
    """The set repeated with one-pixel shifts: more images of the same kind."""
    def grow(split: Split) -> Split:
        shifts = [torch.roll(split.x, shifts=(dy, dx), dims=(-2, -1)) for dy, dx in [(0, 0), (0, 1), (1, 0), (1, 1)]]
        return Split(torch.cat(shifts[:copies]), split.y.repeat(copies))

    return dataclasses.replace(data, train=grow(data.train), val=grow(data.val))


def _first(split: Split, count: int) -> Split:
    return Split(split.x[:count], split.y[:count])


def test_rung_zero_is_two_epochs_of_the_split_when_the_budget_holds_them_and_a_share_when_not(digits):
    base = EvaluationConfig()
    roomy = plan_search(600, digits, base, 2, reserve=300, typical_seconds_per_image=1e-5)
    assert (roomy.train_fraction, roomy.epochs) == (1.0, 2)
    big = _bigger(digits, 4)
    tight = plan_search(60, big, base, 2, reserve=30, typical_seconds_per_image=1e-3)
    assert tight.train_fraction < 1.0 and tight.epochs == 2
    assert tight.train_fraction * len(big.train) >= MIN_PER_CLASS * 10 - 1  # never below the floor
    spent = 40 * 3 * 2 * tight.train_fraction * len(big.train) * 1e-3  # 40 candidates, each over 3 rungs
    assert spent == pytest.approx(30, rel=0.01) or tight.train_fraction * len(big.train) <= MIN_PER_CLASS * 10 + 1
    assert tight.max_seconds == pytest.approx(CAP_FACTOR * 2 * tight.train_fraction * len(big.train) * 1e-3)
    fast = plan_search(600, digits, base, 2, reserve=300, typical_seconds_per_image=1e-7)
    assert fast.max_seconds == pytest.approx(CAP_FACTOR * 300 / (RUNG0_EVALUATIONS * 3))  # its fair share x 4
    given = plan_search(60, big, dataclasses.replace(base, max_seconds=7.0), 2, 30, 1e-3)
    assert given.max_seconds == 7.0  # the user's own limit wins


def test_prediction_uses_the_fastest_rate_per_image_of_trained_candidates_only():
    assert predicted_seconds(1000, 100, []) is None
    records = [
        _record("conv8x3 relu", 4.0, 1000, images=100),  # 40 µs per FLOP-image
        _record("conv16x3 relu", 2.0, 1000, images=200),  # 10 µs: the fastest
        failure("conv32x3 relu", "failed", "broke", seconds=0.001, flops=1000),  # not a rate
    ]
    assert predicted_seconds(5000, 100, records) == pytest.approx(5.0)


def test_a_candidate_too_slow_even_at_the_fastest_rate_is_refused_and_one_just_over_is_tried(digits):
    small = Spec.parse("conv8x3 relu")
    flops = small.flops(digits.input_shape, 10)
    config = EvaluationConfig(epochs=1, train_fraction=1.0, max_seconds=1.0)
    seen = [_record(str(small), 1.0, flops, images=len(digits.train))]  # 1 s for one epoch
    assert too_slow(small, digits, config, seen) is None
    barely = dataclasses.replace(config, max_seconds=1.0 / TOO_SLOW_MARGIN + 0.01)
    assert too_slow(small, digits, barely, seen) is None  # predicted just over the limit: tried, compressed
    refused = too_slow(small, digits, dataclasses.replace(config, max_seconds=0.5), seen)
    assert refused.status == "too-slow" and refused.seconds == 0 and "over its 0.5s limit" in refused.reason
    assert too_slow(small, digits, dataclasses.replace(config, max_seconds=None), seen) is None


def test_the_final_choice_takes_the_best_network_its_time_trains_for_final_epochs(digits):
    images = _images(digits)
    slow, fast, faster = (_record(f"conv{n}x3 relu", 1.0, 1000) for n in (64, 16, 8))
    paces = {slow.spec: 1e-2, fast.spec: 1e-4, faster.spec: 1e-5}  # seconds per image now
    seconds = FINAL_EPOCHS * images * 1e-3  # the time holds FINAL_EPOCHS at 1 ms per image
    assert final_pace_limit(seconds, digits) == pytest.approx(1e-3)
    ranking = [slow, fast, faster]  # best first
    assert choose_final(ranking, digits, seconds, paces.__getitem__) is fast  # slow would get 4 epochs
    assert choose_final(ranking, digits, None, paces.__getitem__) is slow  # no budget: the best
    assert choose_final([slow], digits, seconds, paces.__getitem__) is slow  # none fits: the best after all
    assert choose_final([], digits, seconds, paces.__getitem__) is None


def test_the_final_choice_keeps_the_top_rungs_leader_over_a_faster_network_behind_it(digits):
    seconds = FINAL_EPOCHS * _images(digits) * 1e-3
    leader = dataclasses.replace(_record("conv64x3 relu", 1.0, 1000, images=10_000, score=0.62), rung=2)
    faster = dataclasses.replace(_record("conv16x3 relu", 1.0, 1000, images=10_000, score=0.58), rung=2)
    below = dataclasses.replace(_record("conv8x3 relu", 1.0, 1000, images=3_000, score=0.6), rung=1)
    ranking = [leader, faster, below]
    paces = {leader.spec: 8e-4, faster.spec: 2e-4, below.spec: 1e-5}  # the leader four times slower, still fits
    assert choose_final(ranking, digits, seconds, paces.__getitem__) is leader
    paces[leader.spec] = 2e-3  # now too slow for FINAL_EPOCHS: the next of the ranking, never the lower rung first
    assert choose_final(ranking, digits, seconds, paces.__getitem__) is faster


def test_a_candidate_too_slow_for_the_final_epochs_is_refused_untrained(digits):
    small = Spec.parse("conv8x3 relu")
    flops = small.flops(digits.input_shape, 10)
    config = EvaluationConfig(epochs=1, train_fraction=1.0)
    seen = [_record(str(small), 1.0, flops, images=len(digits.train))]  # its pace: 1 s an epoch
    pace = 1.0 / len(digits.train)
    assert too_slow(small, digits, config, seen, pace_limit=pace) is None
    refused = too_slow(small, digits, config, seen, pace_limit=pace / 2)
    assert refused.status == "too-slow" and f"too slow for {FINAL_EPOCHS} final epochs" in refused.reason


def test_a_ranking_holds_each_network_once_at_its_highest_rung_highest_rungs_first():
    low = [_record(f"conv{n}x3 relu", 1.0, 1000, score=s) for n, s in ((8, 0.9), (16, 0.8), (24, 0.7))]
    high = [dataclasses.replace(low[1], score=0.85, rung=1), dataclasses.replace(low[2], score=0.95, rung=1)]
    order = ranking(by_rung([*low, *high]))
    assert [(r.spec, r.rung) for r in order] == [(low[2].spec, 1), (low[1].spec, 1), (low[0].spec, 0)]


def test_a_budgeted_search_on_data_four_times_digits_ends_with_its_final_training_completed(tmp_path, digits):
    big = _bigger(digits, 4)
    budget = 20.0
    config = SearchConfig(source="digits", strategy="random", budget_seconds=budget, space=TINY, augment=True)
    started = time.perf_counter()
    search = Search.start(tmp_path / "run", config, data=big)
    summary = search.run()
    wall = time.perf_counter() - started
    final = search.journal.get("final")
    assert final["final_status"] == "completed"  # its schedule ran to its end, by its images or its time
    assert final["final_epochs_trained"] >= 0.5 * final["final_epochs"] >= 0.5  # the pace was about right
    assert final["final_allotted_seconds"] >= 0.3 * budget  # the final training had its share
    assert wall < budget * 1.5 + 5
    records = search.journal.evaluations()
    assert [r.origin.get("design") for r in records[:2]] == ["lenet5", "vgg-3block"]  # the deepest VGG that fits
    assert summary.evaluations == len(records) >= 2


def test_designs_climb_and_the_better_on_the_top_rung_is_the_final_when_its_epochs_fill_the_budget(tmp_path, digits):
    vgg, lenet = design("vgg-3block"), design("lenet5")
    big = _bigger(digits, 4)
    pace = seconds_per_image(vgg, big, Normalization.of(big.train.x), final_config(EvaluationConfig(), 1, 0))
    budget = 0.5 * FINAL_EPOCHS * _images(big) * pace  # the design's 40 epochs: twice the budget
    # LeNet-5 leads after rung 0's few images, the VGG design after the climb's (photos in a short budget)
    climb = {str(vgg): (0.25, 0.5, 0.6), str(lenet): (0.28, 0.35, 0.4)}
    scripted = Scripted(lambda spec, rung: climb[spec][rung] if spec in climb else 0.3)
    config = SearchConfig(source="digits", strategy="random", budget_seconds=budget, space=TINY)
    search = Search.start(tmp_path / "run", config, executor=scripted, data=big)
    search.run()
    final = search.journal.get("final")
    assert [(spec, rung) for spec, rung in scripted.trained if rung > 0][:2] == [(str(lenet), 1), (str(lenet), 2)]
    assert (str(vgg), 2) in scripted.trained  # both climbed, though the final's reserve held all of the budget
    assert final["time_bound"] and final["best_spec"] == str(vgg) and final["final_status"] == "completed"


@pytest.mark.parametrize("still_learning", [True, False])
def test_a_design_still_learning_at_the_budgets_end_gets_the_search_time_and_is_the_final(
    tmp_path, digits, still_learning
):
    vgg, lenet = (str(design(name)) for name in ("vgg-3block", "lenet5"))
    # after 1, 3 and 9 times the images: photos in a short budget (error still falling fast), or digits (learned)
    climb = (0.2, 0.3, 0.4) if still_learning else (0.97, 0.98, 0.985)
    scripted = Scripted(lambda spec, rung: climb[rung] if spec == vgg else 0.1 if spec == lenet else 0.99)
    config = SearchConfig(source="digits", strategy="random", budget_seconds=8, space=TINY)
    few = dataclasses.replace(digits, train=_first(digits.train, 150), val=_first(digits.val, 60))  # 40 epochs: ~2 s
    search = Search.start(tmp_path / "run", config, executor=scripted, data=few)
    search.run()
    final = search.journal.get("final")
    candidates = [spec for spec, rung in scripted.trained if rung == 0 and spec not in (vgg, lenet)]
    # the better design of rung 0 climbed the ladder first: its curve is the budget's yardstick
    assert [(spec, rung) for spec, rung in scripted.trained if rung > 0][:2] == [(vgg, 1), (vgg, 2)]
    assert final["curve_exponent"] is not None
    assert search.journal.get("time_bound", False) == still_learning  # the search's decision, the final's too
    if still_learning:
        assert final["time_bound"] and final["best_spec"] == vgg and not candidates
    else:  # the candidates' lead after equal images stands: the search ran and one of them is the final network
        assert (lenet, 2) in scripted.trained  # every design climbs, not the best of rung 0 only
        assert not final["time_bound"] and candidates and final["best_spec"] not in (vgg, lenet)
    assert final["final_status"] == "completed"
