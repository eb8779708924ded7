"""How a wall-clock budget is spent: the final training's time first, the search with the rest.

Every rule is a count of images times a measured pace (seconds per image, `pace.py`), so that it holds on
data of any size and on any machine; the constants below are shares and counts, not speeds.

1. The final training gets FINAL_SHARE of the budget, or more where FINAL_EPOCHS epochs of the best spec so
   far on train+val take longer at today's pace, or more where the best design's learning curve (curves.py)
   says that the time the search would take from it costs it more than TOLERANCE of accuracy
   (`final_reserve`, `curve_reserve`). The search stops once what it spent, the
   promotions still owed and this reserve fill the budget; the final training then gets all that is left,
   the epochs it is expected to reach follow from the pace (`final_epochs`), and its schedule is driven by
   its time (`final_schedule_epochs`), so it completes, annealed, when the budget ends.
2. Rung 0 is sized so that the search's share holds about RUNG0_EVALUATIONS candidates with their promotions
   at the pace of a typical network (the slower design, `plan_search`): two epochs of the whole training split
   on small data, of a share of it (never below MIN_PER_CLASS images per class) on large data.
3. The final network must reach FINAL_EPOCHS in the final training's time; of those on the highest rung that do
   at their pace now, the choice takes the best after equal images (`choose_final`), and a candidate whose pace
   even at the fastest rate (seconds per FLOP and image) measured so far is slower than that allows is not
   trained at all (`too_slow`).
4. A candidate may take CAP_FACTOR times its fair share of the search's time at its rung; a slower one has its
   schedule compressed into that time (fewer images, still annealed), and one that would need TOO_SLOW_MARGIN
   times that even at the fastest rate measured so far is not trained either.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields, replace

from swarmcnn.data import Dataset
from swarmcnn.search import journal_checks as checks
from swarmcnn.search.curves import Curve
from swarmcnn.search.evaluate import EvaluationConfig, failure
from swarmcnn.search.journal import EvaluationRecord
from swarmcnn.spec import Spec

# The final training's least share of the budget: half. Its time is fixed, not its epochs, and from half the
# budget to all of it the small VGG design gained 0.0 points of test accuracy on mnist-5k (saturated after 40
# epochs) and 2-3 on cifar10-dev (benchmarks/README.md, "How long a final training needs"); the search's half is
# what can find a better network than the designs.
FINAL_SHARE = 0.5
# Epochs of train+val the final training should get when the budget holds them: on all three benchmark sets the
# designs' test accuracy rose steeply up to 20 epochs, and by 0.2 to 6 points from 20 to 40.
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
PACE_NOISE = 1.25  # two timings of the same network a minute apart differ by up to this much on a busy machine
CHOICES = 8  # the final choice times at most this many of the best networks (a fraction of a second each)
# The accuracy the search may cost the best design's final training, as its learning curve predicts it: the
# search ends where the final's time, shortened by it, is predicted to cost the design this much against a
# training for the whole budget. Half a point: about the spread between two seeds of the small VGG design trained
# for the whole budget on cifar10-dev (72.3 and 71.4 at 500 per class). The curves of the ladder's short
# trainings overstate what more time gives (on cifar10-dev 2,000 per class they predicted about 3 points for
# doubling the final's 46 epochs, 1.25 were measured), so the cost measured is smaller still. Where the curve is
# nearly flat (mnist-5k: an exponent of 0.4 at an error of 1%) the final's share (FINAL_SHARE) decides instead.
TOLERANCE = 0.005


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

    @classmethod
    def from_dict(cls, values: dict) -> Plan:
        """The plan of `to_dict`, as a journal gives it back: each field checked (journal_checks.BadValue names the
        first that is wrong), so that a plan edited by hand never trains a rung of nonsense."""
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise checks.BadValue(unknown[0], "is not a field of a plan")
        missing = [f.name for f in fields(cls) if f.name not in values]
        if missing:
            raise checks.BadValue(missing[0], "is missing")
        fraction = checks.number(values["train_fraction"], "train_fraction", 0.0, 1.0)
        if fraction == 0:
            raise checks.BadValue("train_fraction", "0 trains on no images")
        max_seconds = checks.optional(checks.number, values["max_seconds"], "max_seconds", 0.0)
        return cls(fraction, checks.whole(values["epochs"], "epochs", 1), max_seconds,
                   checks.whole(values["top_rung"], "top_rung", 0, checks.MAX_RUNGS))


def final_images(data: Dataset) -> int:
    """Images in one epoch of the final training (train+val)."""
    return len(data.train) + len(data.val)


def final_reserve(
    budget: float, data: Dataset, seconds_per_image: float, yardstick: tuple[Curve, float] | None = None
) -> float:
    """The seconds the final training of a network of this pace needs: FINAL_SHARE of the budget at least, and
    the `curve_reserve` of the yardstick (the best design's curve and pace) where one is known."""
    reserve = max(FINAL_SHARE * budget, FINAL_EPOCHS * final_images(data) * seconds_per_image)
    return reserve if yardstick is None else max(reserve, curve_reserve(budget, *yardstick))


def curve_reserve(budget: float, curve: Curve, seconds_per_image: float) -> float:
    """The shortest final training that its curve predicts within TOLERANCE of a training for the whole budget.

    With error = c * t ** -a in the final's time t, error(t) = error(budget) + TOLERANCE solves to
    t = budget * (1 + TOLERANCE / error(budget)) ** (-1 / a); a flat curve (a = 0) needs no time of its own."""
    if curve.exponent <= 0:
        return 0.0
    error = curve.error_after(budget / seconds_per_image)
    return min(budget, budget * (1 + TOLERANCE / error) ** (-1 / curve.exponent))


def final_epochs(seconds: float, data: Dataset, seconds_per_image: float) -> int:
    """As many final epochs as the time holds at this pace; at least one (its schedule then follows the time)."""
    return max(1, int(seconds / (final_images(data) * seconds_per_image)))


def final_schedule_epochs(expected: int) -> int:
    """The epochs a final training of `expected` epochs in its time plans (see FINAL_OVERPLAN)."""
    return math.ceil(expected * FINAL_OVERPLAN) + 1


def final_pace_limit(seconds: float, data: Dataset) -> float:
    """The slowest pace (seconds per image) at which a final training of `seconds` still reaches FINAL_EPOCHS."""
    return seconds / (FINAL_EPOCHS * final_images(data))


def choose_final(
    ranking: list[EvaluationRecord],
    data: Dataset,
    seconds: float | None,
    pace: Callable[[str], float],
) -> EvaluationRecord | None:
    """The first of the first CHOICES of a ranking (highest rung, then best score: the best after equal images)
    whose final training reaches FINAL_EPOCHS in `seconds` at its pace now (`pace` of a spec); the first of the
    ranking when none does, or without a budget.

    A network twice as slow as another is worth it only if the final training can give it the epochs it needs:
    on cifar10-dev a search that chose its best network after 4 epochs regardless reached 63.6% test accuracy,
    its network too slow for more than 23 final epochs, where the small VGG design reaches over 70% in the
    same time. Beyond that the choice does not trade a lead for speed: a faster network's extra images were
    once credited with the pooled learning curve (curves.py), and on mnist-5k that chose LeNet-5, 8 times faster
    but 0.7 points behind the small VGG design after equal images, which ended 98.6% below the 98.9% of the design
    trained for the whole budget; the curves of small networks flatten sooner than the pooled power law says.
    Where the final's time is short for the best design the search is time-bound instead (loop.py) and trains
    that design.
    """
    if not ranking or seconds is None:
        return next(iter(ranking), None)
    limit = final_pace_limit(seconds, data) * PACE_NOISE
    return next((r for r in ranking[:CHOICES] if pace(r.spec) <= limit), ranking[0])


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
    share = max(budget - reserve, 0.0) / (RUNG0_EVALUATIONS * (1 + top_rung))  # seconds per candidate at rung 0
    floor = min(1.0, MIN_PER_CLASS * len(data.class_names) / train)  # as a share of the split
    fraction = min(base.train_fraction, max(floor, share / typical_seconds_per_image / (base.epochs * train)))
    limit = base.max_seconds
    if limit is None:
        limit = CAP_FACTOR * max(share, base.epochs * fraction * train * typical_seconds_per_image)
    return Plan(fraction, base.epochs, limit, top_rung)


def predicted_seconds(flops: int, images: int, records: Iterable[EvaluationRecord]) -> float | None:
    """A lower bound on a training's time: its FLOPs x images at the fastest rate seen; None before any."""
    rates = [r.seconds / (r.flops * r.images) for r in records if r.ok and r.flops and r.images]
    return flops * images * min(rates) if rates else None


def too_slow(
    spec: Spec,
    data: Dataset,
    config: EvaluationConfig,
    records: Iterable[EvaluationRecord],
    pace_limit: float | None = None,
) -> EvaluationRecord | None:
    """The record of a candidate too slow to try even at the fastest rate seen, else None: it could not train
    within its limit, or a final training could not give it FINAL_EPOCHS at the slowest pace allowed."""
    flops = spec.flops(data.input_shape, len(data.class_names))
    images = round(config.epochs * config.train_fraction * len(data.train))
    seconds = predicted_seconds(flops, images, records)
    limit = config.max_seconds
    if seconds is None:
        return None
    if pace_limit is not None and seconds / images > pace_limit * PACE_NOISE:
        reason = (
            f"{flops:,} FLOPs: at least {seconds / images * 1e3:.3g} ms per image, too slow for {FINAL_EPOCHS} "
            f"final epochs in the time kept for them (at most {pace_limit * 1e3:.3g} ms)"
        )
    elif limit is not None and seconds > TOO_SLOW_MARGIN * limit:
        reason = f"{flops:,} FLOPs x {images:,} images would take at least {seconds:.3g}s, over its {limit:.3g}s limit"
    else:
        return None
    params = spec.num_params(data.input_shape, len(data.class_names))
    return failure(spec, "too-slow", reason, params=params, flops=flops)


# A candidate may cost at most REACH times the FLOPs per image of the largest design the search starts from. The
# designs that fit an input say what a network for it costs; the default space reaches far beyond them (up to
# eight convolutions of 256 features at full resolution on an 8x8 digit: a thousand times LeNet-5's work), and
# a search by a count of candidates has no clock to refuse such a candidate by. Four times: the airbench design
# is 3.6 times the cost of airbench-small, the largest VGG design's neighbour in the space.
REACH = 4.0


def beyond_reach(spec: Spec, data: Dataset, largest: int | None) -> EvaluationRecord | None:
    """The record of a candidate over REACH times `largest` (FLOPs per image of the largest design), else None."""
    if largest is None:
        return None
    flops = spec.flops(data.input_shape, len(data.class_names))
    if flops <= REACH * largest:
        return None
    params = spec.num_params(data.input_shape, len(data.class_names))
    reason = f"{flops:,} FLOPs per image, over {REACH:g} times the largest design's {largest:,}"
    return failure(spec, "too-slow", reason, params=params, flops=flops)
