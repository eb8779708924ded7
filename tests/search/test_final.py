"""The final training: a diverged one is trained again at a lower rate, not saved as NaN."""

import math

from swarmcnn.search.final import RATE_AFTER_DIVERGING, RETRIES_AFTER_DIVERGING, final_summary, train_final
from swarmcnn.train import TrainConfig

SMALL = "conv8x3 relu maxpool2 fc32 relu"


def test_a_training_that_learns_is_trained_once(digits):
    final = train_final(SMALL, digits, TrainConfig(epochs=1, seed=0))
    assert final.retries == 0 and final.result.ok and final.config.lr is None


def test_a_diverged_training_is_tried_again_at_a_lower_rate_within_half_its_time_at_least(digits):
    # at 1e8 every try blows up: the last one is returned, at a quarter of the rate per retry
    final = train_final(SMALL, digits, TrainConfig(epochs=1, seed=0, lr=1e8, max_seconds=60.0, precision="fp32"))
    assert final.retries == RETRIES_AFTER_DIVERGING and final.result.status == "diverged"
    assert math.isclose(final.config.lr, 1e8 * RATE_AFTER_DIVERGING**RETRIES_AFTER_DIVERGING)
    assert 30.0 <= final.config.max_seconds < 60.0  # what is left of the minute, no less than half of it
    assert final.result.peak_lr == final.config.lr  # the model records the rate it was trained at
    assert final.trained.training["lr"] == final.config.lr


def test_a_diverged_bf16_training_is_tried_again_in_fp32_at_its_rate_first(digits):
    final = train_final(SMALL, digits, TrainConfig(epochs=1, seed=0, lr=1e8, precision="bf16"))
    assert final.retries == 2 and final.config.precision == "fp32" and final.result.precision == "fp32"
    assert math.isclose(final.config.lr, 1e8 * RATE_AFTER_DIVERGING)  # fp32 at 1e8, then fp32 at a quarter


def test_the_journal_keeps_the_retries(digits):
    from swarmcnn.search.journal import EvaluationRecord
    from swarmcnn.search.journal_checks import checked_final

    final = train_final(SMALL, digits, TrainConfig(epochs=1, seed=0, lr=1e8))
    best = EvaluationRecord(SMALL, "ok", "", 0.5, 0.5, 1.0, 100, 1000, 1, 1.0)
    summary = checked_final(final_summary(best, final, 1, None, {"found_by": "design"}))
    assert summary["final_retries"] == RETRIES_AFTER_DIVERGING
