"""Scoring one candidate: a normal one gets its validation accuracy, every failure the worst score and a reason."""

from __future__ import annotations

import dataclasses
import math

import pytest

from swarmcnn.errors import SwarmCNNError
from swarmcnn.search import evaluate as evaluate_module
from swarmcnn.search.evaluate import EvaluationConfig, evaluate_candidate
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization

SMALL = Spec.parse("conv8x3 relu maxpool2 fc32 relu")
CHEAP = EvaluationConfig(epochs=1, train_fraction=0.5)


@pytest.fixture(scope="module")
def normalization(digits):
    return Normalization.of(digits.train.x)


class _Untouchable:
    """Stands in for the test split: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the test split was used ({name})")

    def __len__(self):
        raise AssertionError("the test split was used (len)")


def _assert_worst(record, status: str) -> None:
    assert record.status == status, record
    assert record.score == -math.inf and not record.ok
    assert record.val_accuracy is None and record.val_loss is None
    assert record.reason


def test_normal_candidate_is_ok_with_val_accuracy_params_and_flops_of_its_spec(digits, normalization):
    record = evaluate_candidate(SMALL, digits, normalization, CHEAP, worker="w1")
    assert record.status == "ok" and record.ok
    assert 0 < record.val_accuracy <= 1
    assert record.score == record.val_accuracy  # the default objective is plain accuracy
    assert math.isfinite(record.val_loss)
    assert record.params == SMALL.num_params(digits.input_shape, 10)
    assert record.flops == SMALL.flops(digits.input_shape, 10)
    assert record.spec == str(SMALL) and record.epochs == 1 and record.worker == "w1"
    assert record.seconds > 0


def test_evaluation_is_repeatable_with_the_same_seed(digits, normalization):
    first = evaluate_candidate(SMALL, digits, normalization, CHEAP)
    second = evaluate_candidate(SMALL, digits, normalization, CHEAP)
    assert first.val_accuracy == second.val_accuracy and first.val_loss == second.val_loss


def test_candidate_over_max_params_is_too_large_and_never_trained(digits, normalization, monkeypatch):
    trained = []
    monkeypatch.setattr(evaluate_module, "fit", lambda *args, **kwargs: trained.append(args))
    record = evaluate_candidate(SMALL, digits, normalization, EvaluationConfig(max_params=1000))
    _assert_worst(record, "too-large")
    assert trained == [] and record.epochs == 0
    assert record.params == SMALL.num_params(digits.input_shape, 10)  # still reported: it says why
    assert "1,000" in record.reason


def test_exploding_learning_rate_is_diverged_with_the_loss_in_the_reason(digits, normalization):
    record = evaluate_candidate(SMALL, digits, normalization, EvaluationConfig(epochs=1, lr=1e6))
    _assert_worst(record, "diverged")
    assert "loss" in record.reason


def test_nan_in_the_data_is_diverged(digits, normalization):
    x = digits.train.x.float()
    x[:, :, 3, 3] = math.nan
    data = dataclasses.replace(digits, train=dataclasses.replace(digits.train, x=x))
    record = evaluate_candidate(SMALL, data, normalization, CHEAP)
    _assert_worst(record, "diverged")
    assert "nan" in record.reason.lower()


def test_exception_while_training_is_failed_with_its_message(digits, normalization, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(evaluate_module, "fit", boom)
    record = evaluate_candidate(SMALL, digits, normalization, CHEAP)
    _assert_worst(record, "failed")
    assert "boom" in record.reason and "RuntimeError" in record.reason


def test_spec_that_does_not_fit_the_input_is_failed_not_raised(digits, normalization):
    record = evaluate_candidate(Spec.parse("conv8x3 relu maxpool16"), digits, normalization, CHEAP)
    _assert_worst(record, "failed")


def test_out_of_memory_error_is_reported_as_such(digits, normalization, monkeypatch):
    def oom(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore details")

    monkeypatch.setattr(evaluate_module, "fit", oom)
    record = evaluate_candidate(SMALL, digits, normalization, CHEAP)
    _assert_worst(record, "out-of-memory")
    assert "\n" not in record.reason


def test_keyboard_interrupt_is_not_swallowed(digits, normalization, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate_module, "fit", interrupt)
    with pytest.raises(KeyboardInterrupt):
        evaluate_candidate(SMALL, digits, normalization, CHEAP)


def test_candidate_over_its_time_limit_is_scored_with_its_schedule_compressed(digits, normalization):
    record = evaluate_candidate(SMALL, digits, normalization, EvaluationConfig(epochs=500, max_seconds=0.3))
    assert record.ok and record.compressed  # scored after fewer images than planned, not thrown away
    assert 0 < record.images < record.planned_images == 500 * len(digits.train)
    assert record.seconds < 3  # a schedule cut by time, not a training of 500 epochs
    assert "time limit" in record.reason


def test_accuracy_params_objective_scores_a_bigger_net_lower_at_equal_accuracy():
    config = EvaluationConfig(objective="accuracy-params")
    assert config.score(0.9, 1_000) > config.score(0.9, 100_000)
    assert config.score(0.9, 1_000) - config.score(0.9, 10_000) == pytest.approx(0.01)  # 0.01 per decade
    assert config.score(0.95, 100_000) > config.score(0.9, 1_000)  # accuracy still leads
    plain = EvaluationConfig()
    assert plain.score(0.9, 1_000) == plain.score(0.9, 100_000) == 0.9


def test_accuracy_params_objective_is_used_for_the_candidate_score(digits, normalization):
    config = dataclasses.replace(CHEAP, objective="accuracy-params")
    record = evaluate_candidate(SMALL, digits, normalization, config)
    assert record.score == pytest.approx(config.score(record.val_accuracy, record.params))
    assert record.score < record.val_accuracy


def test_unknown_objective_and_impossible_limits_are_refused():
    with pytest.raises(SwarmCNNError, match="did you mean|choose one of"):
        EvaluationConfig(objective="acuracy")
    with pytest.raises(SwarmCNNError, match="at least 1"):
        EvaluationConfig(epochs=0)
    with pytest.raises(SwarmCNNError, match="at least 1"):
        EvaluationConfig(max_params=0)


@pytest.mark.parametrize(
    "changes", [{"train_fraction": 0.0}, {"train_fraction": 1.5}, {"lr": -1.0}, {"batch_size": 0}, {"max_seconds": -1}]
)
def test_impossible_training_settings_are_refused_when_the_config_is_made(changes):
    with pytest.raises(SwarmCNNError):
        EvaluationConfig(**changes)


def test_the_test_split_is_never_touched(digits, normalization):
    data = dataclasses.replace(digits, test=_Untouchable())
    record = evaluate_candidate(SMALL, data, normalization, CHEAP)
    assert record.status == "ok" and 0 < record.val_accuracy <= 1
