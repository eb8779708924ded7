"""How a wall-clock budget is spent: the final training's time first, the search with the rest.

Every rule is a count of images times a measured pace (seconds per image, `pace.py`), so that it holds on
data of any size and on any machine; the constants below are shares and counts, not speeds.

1. The final training gets FINAL_SHARE of the budget, or more where FINAL_EPOCHS epochs of the best spec so
   far on train+val take longer at today's pace (`final_reserve`). The search stops once what it spent, the
   promotions still owed and this reserve fill the budget; the final training then gets all that is left,
   the epochs it is expected to reach follow from the pace (`final_epochs`), and its schedule is driven by
   its time (`final_schedule_epochs`), so it completes, annealed, when the budget ends.
2. Rung 0 is sized so that the search's share holds about RUNG0_EVALUATIONS candidates with their promotions
   at the pace of a typical candidate (`plan_search`): two epochs of the whole training split on small data,
   of a share of it (never below MIN_PER_CLASS images per class) on large data.
3. A candidate may take CAP_FACTOR times as long as a typical one at its rung; a slower one has its schedule
   compressed into that time (fewer images, still annealed), and one that would need TOO_SLOW_MARGIN times
   that even at the fastest rate measured so far is not trained at all (`too_slow`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

from swarmcnn.data import Dataset
from swarmcnn.search.evaluate import EvaluationConfig, failure
from swarmcnn.search.journal import EvaluationRecord
from swarmcnn.spec import Spec

# The final training's least share of the budget. Half: of a 10-minute budget on mnist-5k the small VGG net
# gains nothing from 150 epochs over 75 (benchmarks/README.md, "Final training"), while the search's half
# finds better networks than the designs it starts from.
FINAL_SHARE = 0.5
# Epochs of train+val the final training should get when the budget holds them: with the one-cycle recipe,
# test accuracy of the designs still rose from 20 to 40 epochs on all three benchmark sets, and less after.
FINAL_EPOCHS = 40
# The final training plans this many times the epochs its pace predicts, so that its schedule ends by its time,
# not by its images: a pace measured a little slow (a burst of other work) then leaves no budget unused, and one
# measured fast only brings the end of the schedule forward; either way it ends annealed, on time.
FINAL_OVERPLAN = 1.5
RUNG0_EVALUATIONS = 40  # five generations of a swarm of 8: the fewest in which a swarm moves
MIN_PER_CLASS = 100  # rung 0 never trains on fewer images per class (fewer rank networks by luck)
CAP_FACTOR = 4.0
# A prediction from FLOPs takes the fastest rate seen, which small, overhead-bound networks overstate:
# only a candidate predicted this far over its limit is refused untrained; the others are tried, compressed.
TOO_SLOW_MARGIN = 1.5


@dataclass(frozen=True)
class Plan:
    """The fidelity of rung 0 and the promotions above it, decided once per search (journaled for a resume)."""

    train_fraction: float
    epochs: int
    max_seconds: float | None  # rung 0's time limit per candidate; ETA times more per rung above
    top_rung: int

    def rung0(self, base: EvaluationConfig) -> EvaluationConfig:
        return replace(base, train_fraction=self.train_fraction, epochs=self.epochs, max_seconds=self.max_seconds)

    def to_dict(self) -> dict:
        return asdict(self)


def final_images(data: Dataset) -> int:
    """Images in one epoch of the final training (train+val)."""
    return len(data.train) + len(data.val)


def final_reserve(budget: float, data: Dataset, seconds_per_image: float) -> float:
    """The seconds the final training of a network of this pace needs: FINAL_SHARE of the budget at least."""
    return max(FINAL_SHARE * budget, FINAL_EPOCHS * final_images(data) * seconds_per_image)


def final_epochs(seconds: float, data: Dataset, seconds_per_image: float) -> int:
    """As many final epochs as the time holds at this pace; at least one (its schedule then follows the time)."""
    return max(1, int(seconds / (final_images(data) * seconds_per_image)))


def final_schedule_epochs(expected: int) -> int:
    """The epochs a final training of `expected` epochs in its time plans (see FINAL_OVERPLAN)."""
    return math.ceil(expected * FINAL_OVERPLAN) + 1


def plan_search(
    budget: float,
    data: Dataset,
    base: EvaluationConfig,
    top_rung: int,
    reserve: float,
    typical_seconds_per_image: float,
) -> Plan:
    """Rung 0 for a search that may spend budget - reserve seconds, at the pace of a typical candidate.

    A candidate costs about 1 + top_rung times its rung-0 training over the ladder (each rung costs as much
    as rung 0, see ladder.py); rung 0 takes at most base's fidelity (two epochs of the training split).
    """
    train = len(data.train)
    affordable = max(budget - reserve, 0.0) / (RUNG0_EVALUATIONS * (1 + top_rung) * typical_seconds_per_image)
    floor = min(1.0, MIN_PER_CLASS * len(data.class_names) / train)  # as a share of the split
    fraction = min(base.train_fraction, max(floor, affordable / (base.epochs * train)))
    limit = base.max_seconds
    if limit is None:
        limit = CAP_FACTOR * base.epochs * fraction * train * typical_seconds_per_image
    return Plan(fraction, base.epochs, limit, top_rung)


def predicted_seconds(flops: int, images: int, records: Iterable[EvaluationRecord]) -> float | None:
    """A lower bound on a training's time: its FLOPs x images at the fastest rate seen; None before any."""
    rates = [r.seconds / (r.flops * r.images) for r in records if r.ok and r.flops and r.images]
    return flops * images * min(rates) if rates else None


def too_slow(
    spec: Spec, data: Dataset, config: EvaluationConfig, records: Iterable[EvaluationRecord]
) -> EvaluationRecord | None:
    """The record of a candidate that could not train within its limit even at the fastest rate seen, else None."""
    flops = spec.flops(data.input_shape, len(data.class_names))
    images = round(config.epochs * config.train_fraction * len(data.train))
    seconds = predicted_seconds(flops, images, records)
    limit = config.max_seconds
    if limit is None or seconds is None or seconds <= TOO_SLOW_MARGIN * limit:
        return None
    reason = f"{flops:,} FLOPs x {images:,} images would take at least {seconds:.3g}s, over its {limit:.3g}s limit"
    params = spec.num_params(data.input_shape, len(data.class_names))
    return failure(spec, "too-slow", reason, params=params, flops=flops)
