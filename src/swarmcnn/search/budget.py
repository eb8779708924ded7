"""How a wall-clock budget is shared between the search and the final training.

Four rules, from the one fact the search measures about every candidate: how long it took to train.
- The final training of the best spec must fit in what is left, so its epochs are estimated from the
  candidate's own seconds per epoch (`epoch_seconds`, `final_plan`); a best found so late that it would
  get less than half its epochs gives way to the best that fits (`choose_final`).
- A candidate whose final training alone would need more than FINAL_SHARE of the budget cannot be trained
  properly within it: it is stopped once it has trained for `candidate_seconds_limit`, or as soon as its
  pace shows it cannot finish (`TrainConfig.give_up_early`).
- A candidate that could not finish in that limit even at the fastest rate (seconds per FLOP) seen so far
  by a margin is not trained at all (`too_slow`): on a laptop CPU, one oversized network would otherwise
  take a whole share of the budget to be found too slow.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from swarmcnn.data import Dataset
from swarmcnn.search.evaluate import EvaluationConfig, failure
from swarmcnn.search.journal import EvaluationRecord, ranked
from swarmcnn.search.promotion import promotion_seconds
from swarmcnn.spec import Spec

# Of a wall-clock budget, the most the final training of one candidate may need. A quarter: on mnist-5k
# with 10 minutes the cheap candidates (pooling early) scored best after their short training, and a search
# that may train slow ones spends its budget on few evaluations (measured: 18 trained against 69).
FINAL_SHARE = 0.25
# A final epoch takes longer than a candidate's epoch scaled to train+val (augmentation, a validation pass
# over a larger split): 12% longer on mnist-5k with --augment. Estimates carry this margin.
FINAL_SLACK = 1.15
# A prediction from FLOPs takes the fastest rate seen, which small, overhead-bound networks overstate:
# only a candidate predicted this far over the limit is refused untrained; the others are tried and stopped.
TOO_SLOW_MARGIN = 1.5


def epoch_seconds(record: EvaluationRecord, data: Dataset, evaluation: EvaluationConfig) -> float:
    """How long one final epoch of a scored candidate will take: its seconds per epoch, scaled to train+val."""
    if not record.epochs:
        return 0.0
    return FINAL_SLACK * record.seconds / record.epochs * _final_to_candidate_images(data, evaluation)


def epochs_within(wanted: int, per_epoch: float, seconds_left: float | None) -> int:
    """As many epochs as wanted, fewer when a wall-clock budget would not hold them, never none."""
    if seconds_left is None or per_epoch <= 0:
        return wanted
    return max(1, min(wanted, math.floor(seconds_left / per_epoch)))


def final_plan(
    record: EvaluationRecord, data: Dataset, evaluation: EvaluationConfig, wanted: int, seconds_left: float | None
) -> tuple[int, float | None]:
    """Epochs for the final training of a scored candidate, and the time limit that holds the budget.

    The epochs are estimated with a margin; the limit (at least one epoch) holds the budget where the
    estimate was still short.
    """
    per_epoch = epoch_seconds(record, data, evaluation)
    limit = None if seconds_left is None else max(seconds_left, per_epoch)
    return epochs_within(wanted, per_epoch, seconds_left), limit


def choose_final(
    records: Iterable[EvaluationRecord],
    data: Dataset,
    evaluation: EvaluationConfig,
    wanted: int,
    seconds_left: float | None,
) -> EvaluationRecord | None:
    """The best-scoring candidate whose final training gets at least half its epochs in the time left.

    The search stops when the best so far would no longer fit, but a slow candidate that wins at the very
    end may not fit at all: rather than train it for an epoch or two, take the best that can be trained.
    Without a budget, or when none fits, simply the best.
    """
    candidates = ranked(records)
    if not candidates or seconds_left is None:
        return candidates[0] if candidates else None
    fitting = (r for r in candidates if epoch_seconds(r, data, evaluation) * wanted / 2 <= seconds_left)
    return next(fitting, candidates[0])


def search_seconds_left(
    budget_seconds: float,
    elapsed: float,
    records: Iterable[EvaluationRecord],
    data: Dataset,
    evaluation: EvaluationConfig,
    final_epochs: int,
    promote: int,
    promoted: Iterable[str] = (),
) -> float:
    """What a budgeted search may still spend on candidates: the budget less the time spent, the promotion
    of today's finalists (those not promoted yet) and the final training of today's best."""
    records = list(records)
    best = next(iter(ranked(records)), None)
    final = 0.0 if best is None else epoch_seconds(best, data, evaluation) * final_epochs
    return budget_seconds - elapsed - final - promotion_seconds(records, promote, promoted)


def candidate_seconds_limit(
    budget_seconds: float, final_epochs: int, data: Dataset, evaluation: EvaluationConfig
) -> float:
    """The longest a candidate may train if its final training is to fit in FINAL_SHARE of the budget."""
    final_epoch = FINAL_SHARE * budget_seconds / final_epochs
    return final_epoch / (FINAL_SLACK * _final_to_candidate_images(data, evaluation)) * evaluation.epochs


def predicted_seconds(flops: int, records: Iterable[EvaluationRecord]) -> float | None:
    """A lower bound on a candidate's training time: its FLOPs at the fastest rate seen; None before any."""
    rates = [r.seconds / r.flops for r in records if r.ok and r.flops]
    return flops * min(rates) if rates else None


def too_slow(
    spec: Spec, data: Dataset, max_seconds: float | None, records: Iterable[EvaluationRecord]
) -> EvaluationRecord | None:
    """The record of a candidate that cannot train within max_seconds even at the fastest rate seen, else None."""
    flops = spec.flops(data.input_shape, len(data.class_names))
    seconds = predicted_seconds(flops, records)
    if max_seconds is None or seconds is None or seconds <= TOO_SLOW_MARGIN * max_seconds:
        return None
    reason = f"{flops:,} FLOPs would take at least {seconds:.0f}s to train, over the {max_seconds:.0f}s limit"
    params = spec.num_params(data.input_shape, len(data.class_names))
    return failure(spec, "too-slow", reason, params=params, flops=flops)


def _final_to_candidate_images(data: Dataset, evaluation: EvaluationConfig) -> float:
    """Images in a final epoch (train+val) per image in a candidate's epoch."""
    return (len(data.train) + len(data.val)) / (len(data.train) * evaluation.train_fraction)
