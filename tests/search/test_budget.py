"""Sharing a wall-clock budget: the final training's share, rungs by time from the search's share, candidates
refused untrained, and budgeted searches that end with their final training completed."""

from __future__ import annotations

import dataclasses
import time

import pytest
import torch

from swarmcnn.data import Dataset, Split
from swarmcnn.designs import design
from swarmcnn.search.budget import (
    FINAL_SHARE,
    LADDER_CHILDREN,
    MIN_PER_CLASS,
    ONESHOT_SHARE,
    REACH,
    RUNG0_EVALUATIONS,
    SUPERNET_SHARE,
    TIMED_EPOCHS,
    TOO_SLOW_MARGIN,
    Plan,
    beyond_reach,
    final_epochs,
    final_plan,
    plan_budgeted,
    predicted_seconds,
    too_slow,
)
from swarmcnn.search.evaluate import EvaluationConfig, failure
from swarmcnn.search.journal import EvaluationRecord
from swarmcnn.search.ladder import ETA, by_rung, ranking, rung_config
from swarmcnn.search.loop import Search, SearchConfig
from swarmcnn.search.space import SearchSpace
from swarmcnn.spec import Spec
from tests.search.fakes import Scripted

TINY = SearchSpace(blocks=(1, 1), convs_per_block=(1, 1), features=(8, 16), fc_layers=(0, 1), neurons=(16, 32),
                   stems=("none",), heads=("flatten", "gap"))


def _record(spec: str, seconds: float, flops: int, images: int = 1000, score: float = 0.9) -> EvaluationRecord:
    return EvaluationRecord(spec, "ok", "trained", score, score, 0.3, 1000, flops, 2, seconds, images=images)


def _images(data: Dataset) -> int:
    return len(data.train) + len(data.val)


@pytest.mark.parametrize("pace", [1e-5, 1e-4, 1e-3])  # a fast, a middling and a slow network or machine
def test_final_epochs_fill_the_time_at_the_pace_and_never_drop_to_zero(digits, pace):
    seconds = 30.0
    epochs = final_epochs(seconds, digits, pace)
    assert epochs >= 1
    if epochs > 1:
        assert epochs * _images(digits) * pace <= seconds < (epochs + 1) * _images(digits) * pace


def test_the_final_plan_takes_the_time_left_an_epoch_when_none_is_and_the_users_epochs_where_they_fit(digits):
    pace = 1e-4
    one_epoch = _images(digits) * pace
    epochs, seconds = final_plan(20 * one_epoch, digits, pace)
    assert (epochs, seconds) == (final_epochs(20 * one_epoch, digits, pace), 20 * one_epoch)
    assert final_plan(-5.0, digits, pace) == (1, one_epoch)  # a search that overran its budget
    assert final_plan(20 * one_epoch, digits, pace, wanted=3) == (3, None)  # the user's schedule, untimed
    assert final_plan(20 * one_epoch, digits, pace, wanted=500) == (epochs, seconds)  # more than the time holds


def test_the_supernet_and_the_ladder_share_the_search_half_of_the_budget(digits):
    plan = plan_budgeted(600, digits, EvaluationConfig(), 2, "supernet", 3, 1e-6)
    search = (1 - FINAL_SHARE) * 600
    assert plan.by_time and plan.fitness == "supernet" and plan.first_trained == 1
    assert plan.oneshot_seconds == pytest.approx(ONESHOT_SHARE * search)
    assert plan.supernet_seconds == pytest.approx(SUPERNET_SHARE * plan.oneshot_seconds)
    # rungs 1 and 2 cost about the same each: all the entrants at rung 1, a third of them ETA times longer
    assert plan.max_seconds == pytest.approx((search - plan.oneshot_seconds) / (2 * (3 + LADDER_CHILDREN)))
    assert rung_config(plan, EvaluationConfig(), 2).max_seconds == pytest.approx(ETA * plan.max_seconds)
    assert rung_config(plan, EvaluationConfig(), 1).epochs == TIMED_EPOCHS  # ended by its time


def test_the_training_fitness_holds_its_candidates_and_promotions_in_the_search_share(digits):
    plan = plan_budgeted(600, digits, EvaluationConfig(), 2, "training", 3, 1e-6)
    assert plan.first_trained == 0 and plan.max_seconds == pytest.approx(300 / (3 * RUNG0_EVALUATIONS))


@pytest.mark.parametrize("fitness", ["supernet", "training"])
def test_a_rung_never_trains_for_fewer_images_per_class_than_the_floor_at_a_designs_pace(digits, fitness):
    slow = 1e-2  # seconds per image: a slow machine, a short budget
    plan = plan_budgeted(60, digits, EvaluationConfig(), 2, fitness, 2, slow)
    assert plan.max_seconds == pytest.approx(MIN_PER_CLASS * 10 * slow)


def test_a_journaled_plan_of_an_older_search_reads_as_one_by_images():
    plan = Plan.from_dict({"train_fraction": 0.5, "epochs": 2, "max_seconds": None, "top_rung": 2})
    assert not plan.by_time and plan.fitness == "training" and plan.first_trained == 0


def test_by_images_each_rung_trains_eta_times_the_images_of_the_one_below():
    plan = Plan(0.1, 2, 4.0, 2)
    second = rung_config(plan, EvaluationConfig(), 2)
    assert second.train_fraction * second.epochs == pytest.approx(0.1 * 2 * ETA**2)
    assert second.max_seconds == pytest.approx(4.0 * ETA**2)


def test_prediction_uses_the_fastest_rate_per_image_of_trained_candidates_only():
    assert predicted_seconds(1000, 100, []) is None
    records = [
        _record("conv8x3 relu", 4.0, 1000, images=100),  # 40 µs per FLOP-image
        _record("conv16x3 relu", 2.0, 1000, images=200),  # 10 µs: the fastest
        failure("conv32x3 relu", "failed", "broke", seconds=0.001, flops=1000),  # not a rate
    ]
    assert predicted_seconds(5000, 100, records) == pytest.approx(5.0)


def test_by_images_a_candidate_too_slow_even_at_the_fastest_rate_is_refused_and_one_just_over_is_tried(digits):
    small = Spec.parse("conv8x3 relu")
    flops = small.flops(digits.input_shape, 10)
    config = EvaluationConfig(epochs=1, train_fraction=1.0, max_seconds=1.0)
    seen = [_record(str(small), 1.0, flops, images=len(digits.train))]  # 1 s for one epoch
    assert too_slow(small, digits, config, seen, by_time=False) is None
    barely = dataclasses.replace(config, max_seconds=1.0 / TOO_SLOW_MARGIN + 0.01)
    assert too_slow(small, digits, barely, seen, by_time=False) is None  # predicted just over: tried, compressed
    refused = too_slow(small, digits, dataclasses.replace(config, max_seconds=0.5), seen, by_time=False)
    assert refused.status == "too-slow" and refused.seconds == 0 and "over its 0.5s limit" in refused.reason
    assert too_slow(small, digits, dataclasses.replace(config, max_seconds=None), seen, by_time=False) is None


def test_by_time_a_candidate_that_would_see_too_few_images_in_its_rung_is_refused(digits):
    small = Spec.parse("conv8x3 relu")
    flops = small.flops(digits.input_shape, 10)
    seen = [_record(str(small), 1.0, flops, images=1000)]  # 1 ms per image
    floor = MIN_PER_CLASS * 10  # images
    roomy = EvaluationConfig(max_seconds=floor * 1e-3 * 1.1)
    assert too_slow(small, digits, roomy, seen, by_time=True) is None
    refused = too_slow(small, digits, dataclasses.replace(roomy, max_seconds=floor * 1e-3 * 0.9), seen, True)
    assert refused.status == "too-slow" and f"fewer than {floor:,} images" in refused.reason


def test_a_candidate_beyond_the_reach_of_the_designs_is_refused_untrained(digits):
    largest = design("vgg-3block").flops(digits.input_shape, 10)
    huge = Spec.parse(" ".join(["conv256x5 bn relu"] * 4))
    assert beyond_reach(design("lenet5"), digits, largest) is None
    refused = beyond_reach(huge, digits, largest)
    assert refused.status == "too-slow" and f"over {REACH:g} times the largest design's" in refused.reason
    assert beyond_reach(huge, digits, None) is None  # without designs: no reach


def test_a_ranking_holds_each_network_once_at_its_highest_rung_highest_rungs_first():
    low = [_record(f"conv{n}x3 relu", 1.0, 1000, score=s) for n, s in ((8, 0.9), (16, 0.8), (24, 0.7))]
    high = [dataclasses.replace(low[1], score=0.85, rung=1), dataclasses.replace(low[2], score=0.95, rung=1)]
    order = ranking(by_rung([*low, *high]))
    assert [(r.spec, r.rung) for r in order] == [(low[2].spec, 1), (low[1].spec, 1), (low[0].spec, 0)]


def _bigger(data: Dataset, copies: int) -> Dataset:
    """The set repeated with one-pixel shifts: more images of the same kind."""
    def grow(split: Split) -> Split:
        shifts = [torch.roll(split.x, shifts=(dy, dx), dims=(-2, -1)) for dy, dx in [(0, 0), (0, 1), (1, 0), (1, 1)]]
        return Split(torch.cat(shifts[:copies]), split.y.repeat(copies))

    return dataclasses.replace(data, train=grow(data.train), val=grow(data.val))


@pytest.mark.parametrize("fitness", ["supernet", "training"])
def test_a_budgeted_search_on_data_four_times_digits_ends_with_its_final_training_completed(tmp_path, digits, fitness):
    big = _bigger(digits, 4)
    budget = 20.0
    config = SearchConfig(source="digits", strategy="random", budget_seconds=budget, space=TINY, augment=True,
                          fitness=fitness)
    started = time.perf_counter()
    search = Search.start(tmp_path / "run", config, data=big)
    summary = search.run()
    wall = time.perf_counter() - started
    final = search.journal.get("final")
    assert final["final_status"] == "completed"  # its schedule ran to its end, by its time
    assert final["final_allotted_seconds"] >= 0.3 * budget  # the final training had its share
    assert wall < budget * 1.5 + 5
    records = search.journal.evaluations()
    assert [r.origin.get("design") for r in records[:2]] == ["lenet5", "vgg-3block"]  # the designs first
    assert summary.evaluations == len(records) >= 2
    promoted = search.journal.evaluations("promotions")
    assert promoted and all(r.rung >= 1 for r in promoted)  # the ladder above the first scores


def test_with_the_supernet_the_designs_and_the_swarms_best_enter_the_ladder_and_the_top_rungs_best_is_final(
    tmp_path, digits
):
    vgg, lenet = str(design("vgg-3block")), str(design("lenet5"))
    # after rung 1 and rung 2: one of the swarm's children ahead of both designs at the top
    scripted = Scripted(lambda spec, rung: 0.9 if spec == vgg else 0.5 if spec == lenet else 0.6 + 0.2 * rung,
                        first_rung=1)
    config = SearchConfig(source="digits", strategy="random", budget_seconds=16, space=TINY, fitness="supernet")
    search = Search.start(tmp_path / "run", config, executor=scripted, data=digits)
    search.run()
    final = search.journal.get("final")
    entrants = {spec for spec, rung in scripted.trained if rung == 1}
    scored = [r for r in search.journal.evaluations() if "design" not in r.origin]
    assert {vgg, lenet} <= entrants  # the designs always enter the ladder
    assert 0 < len(entrants - {vgg, lenet}) <= LADDER_CHILDREN < len(scored)  # the swarm's best of many
    assert all(r.origin.get("fitness") == "supernet" and r.rung == 0 for r in scored)
    assert search.journal.get("supernet")["steps"] > 0  # trained once, and saved for a resume
    assert (tmp_path / "run" / "supernet.safetensors").is_file()
    top = max(rung for _, rung in scripted.trained)
    assert final["best_rung"] == top == 2
    assert final["provenance"]["found_by"] == "swarm" and final["best_spec"] not in (vgg, lenet)


def test_a_design_that_leads_the_top_rung_is_the_final_and_is_found_by_design(tmp_path, digits):
    vgg = str(design("vgg-3block"))
    scripted = Scripted(lambda spec, rung: 0.95 if spec == vgg else 0.5 + 0.1 * rung, first_rung=1)
    config = SearchConfig(source="digits", strategy="random", budget_seconds=16, space=TINY, fitness="supernet")
    search = Search.start(tmp_path / "run", config, executor=scripted, data=digits)
    search.run()
    found = search.journal.get("final")["provenance"]
    assert found == {"found_by": "design", "design": "vgg-3block", "nearest_design": "vgg-3block",
                     "design_distance": 0}
