"""How a wall-clock budget is spent: the final training's share first, the search with the rest, every network of
the search ranked at equal time.

Every rule is a share of the budget, a count of networks, or a count of images times a measured pace (seconds
per image, `pace.py`), so that it holds on data of any size and on a machine of any speed; no constant here is a
speed or an epoch count.

1. The final training gets FINAL_SHARE of the budget and whatever the search leaves of the rest; the epochs it is
   expected to reach follow from the chosen network's pace (`final_epochs`), and its schedule is driven by its
   time (`final_schedule_epochs`), so it completes, annealed, when the budget ends.
2. The search spends the rest. Every training in it is driven by its time, not its images (`Plan.by_time`):
   a network is ranked by what it reaches in the time it is given, so a slow one, which sees fewer images,
   ranks by that, as it would in the final training. Rung k trains for ETA**k times the time of the first trained
   rung, the best 1/ETA of each rung again on the next (ladder.py).
3. The fitness the swarm is told (`Plan.fitness`):
   - "supernet": ONESHOT_SHARE of the search's time goes to a weight-sharing supernet (supernet.py): first
     SUPERNET_SHARE of it to its training, then each of the swarm's proposals is scored in a fraction of a second
     (oneshot.py), so that the swarm moves over hundreds of networks. The designs and the LADDER_CHILDREN best of
     the swarm's then enter the ladder at rung 1, trained for real; the rest of the search's time is the ladder's.
   - "training": each proposal trains at rung 0, for a time that lets the search's time hold RUNG0_EVALUATIONS
     of them with their promotions.
   Rung 0 (or 1) never trains a network for less than MIN_PER_CLASS images per class at a design's pace.
4. The final network is the best of the highest rung.
5. A candidate beyond REACH times the largest design's FLOPs (`beyond_reach`), or one predicted to see fewer than
   MIN_PER_CLASS images per class in its rung's time at the fastest rate per FLOP seen (`too_slow`), is refused
   untrained.

Without a budget (a search by a count of candidates) the rungs are counted in images (the journaled plan of the
user's epochs and train fraction), so that a seed repeats a search to the last digit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace

from swarmcnn.data import Dataset
from swarmcnn.ensemble import members_for
from swarmcnn.search import journal_checks as checks
from swarmcnn.search.evaluate import EvaluationConfig, failure
from swarmcnn.search.journal import EvaluationRecord
from swarmcnn.spec import Spec
from swarmcnn.train import batches_per_epoch

# The final training's share of the budget: half. From half the budget to all of it the small VGG design gained
# 0.0 points of test accuracy on mnist-5k (saturated) and 2-3 on cifar10-dev (benchmarks/README.md, "How long a
# final training needs"); the search's half is what can find a better network than the designs.
FINAL_SHARE = 0.5
# The final training plans this many times the epochs its pace predicts, so that its schedule ends by its time,
# not by its images: a pace measured a little slow (a burst of other work) then leaves no budget unused, and one
# measured fast only brings the end of the schedule forward; either way it ends annealed, on time.
FINAL_OVERPLAN = 1.5
# The one-shot fitness: the supernet's share of the search's time (its training and the swarm's scores), of which
# its training takes SUPERNET_SHARE; LADDER_CHILDREN of the swarm's best join the designs in the ladder.
ONESHOT_SHARE = 0.4
SUPERNET_SHARE = 0.7
LADDER_CHILDREN = 6
RUNG0_EVALUATIONS = 40  # the training fitness: five generations of a swarm of 8, the fewest in which a swarm moves
MIN_PER_CLASS = 100  # a rung never trains on fewer images per class (fewer rank networks by luck)
# A time-driven rung plans this many epochs of its split at most: its time ends it long before.
TIMED_EPOCHS = 1000
FITNESSES = ("supernet", "training")

# A candidate may cost at most REACH times the FLOPs per image of the largest design the search starts from. The
# designs that fit an input say what a network for it costs; the default space reaches far beyond them (up to
# eight convolutions of 256 features at full resolution on an 8x8 digit: a thousand times LeNet-5's work), and
# a search by a count of candidates has no clock to refuse such a candidate by. Four times: the airbench design
# is 3.6 times the cost of airbench-small, the largest VGG design's neighbour in the space.
REACH = 4.0


@dataclass(frozen=True)
class Plan:
    """The fidelity of the rungs, decided once per search (journaled for a resume).

    Without a budget: rung 0 trains train_fraction of the split for `epochs` (ETA times the images per rung
    above). With one (`by_time`): the first trained rung trains each network for `max_seconds`, ETA times longer
    per rung above; with the supernet fitness rung 0 is the supernet's score and the ladder starts at rung 1.
    """

    train_fraction: float
    epochs: int
    max_seconds: float | None  # the first trained rung's time limit per candidate; ETA times more per rung above
    top_rung: int
    by_time: bool = False
    fitness: str = "training"
    supernet_seconds: float = 0.0  # the supernet's training
    oneshot_seconds: float = 0.0  # the supernet's training and the swarm's scores, from the search's start

    @property
    def first_trained(self) -> int:
        """The lowest rung whose networks train: 1 where the supernet scores rung 0."""
        return 1 if self.fitness == "supernet" else 0

    def rung0(self, base: EvaluationConfig) -> EvaluationConfig:
        """The first trained rung's training."""
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
        missing = [name for name in ("train_fraction", "epochs", "max_seconds", "top_rung") if name not in values]
        if missing:
            raise checks.BadValue(missing[0], "is missing")
        fraction = checks.number(values["train_fraction"], "train_fraction", 0.0, 1.0)
        if fraction == 0:
            raise checks.BadValue("train_fraction", "0 trains on no images")
        fitness = values.get("fitness", "training")
        if fitness not in FITNESSES:
            raise checks.BadValue("fitness", f"{fitness!r} is not one of {', '.join(FITNESSES)}")
        return cls(
            fraction,
            checks.whole(values["epochs"], "epochs", 1),
            checks.optional(checks.number, values["max_seconds"], "max_seconds", 0.0),
            checks.whole(values["top_rung"], "top_rung", 0, checks.MAX_RUNGS),
            checks.flag(values.get("by_time", False), "by_time"),
            fitness,
            checks.number(values.get("supernet_seconds", 0.0), "supernet_seconds", 0.0),
            checks.number(values.get("oneshot_seconds", 0.0), "oneshot_seconds", 0.0),
        )


def final_images(data: Dataset) -> int:
    """Images in one epoch of the final training (train+val)."""
    return len(data.train) + len(data.val)


def search_seconds(budget: float) -> float:
    """The search's share of a budget: what the final training's share leaves."""
    return (1 - FINAL_SHARE) * budget


def final_epochs(seconds: float, data: Dataset, seconds_per_image: float) -> int:
    """As many final epochs as the time holds at this pace; at least one (its schedule then follows the time)."""
    return max(1, int(seconds / (final_images(data) * seconds_per_image)))


def final_plan(seconds_left: float, data: Dataset, seconds_per_image: float, wanted: int | None = None
               ) -> tuple[int, float | None]:
    """The final training's epochs and time limit: all that is left of the budget (an epoch at least, for a search
    that overran it), at this pace; the user's `wanted` epochs where they fit, with no time limit then."""
    seconds = max(seconds_left, final_images(data) * seconds_per_image)
    epochs = final_epochs(seconds, data, seconds_per_image)
    if wanted and wanted < epochs:
        return wanted, None  # the user's epochs fit: the schedule is theirs, not the time's
    return epochs, seconds


def final_members(
    epochs: int, seconds: float | None, data: Dataset, batch_size: int | None = None
) -> tuple[int, int, float | None]:
    """The final training as trainings averaged (swarmcnn.ensemble.members_for, on the steps its epochs take on
    train+val at batch_size): how many, and each one's epochs and time. Only a final driven by its time is split;
    the user's epochs are one training's."""
    steps = batches_per_epoch(final_images(data), batch_size)
    members = 1 if seconds is None else members_for(epochs, steps)
    return members, epochs // members, None if seconds is None else seconds / members


def final_schedule_epochs(expected: int) -> int:
    """The epochs a final training of `expected` epochs in its time plans (see FINAL_OVERPLAN)."""
    return math.ceil(expected * FINAL_OVERPLAN) + 1


def plan_budgeted(
    budget: float,
    data: Dataset,
    base: EvaluationConfig,
    top_rung: int,
    fitness: str,
    designs: int,
    seconds_per_image: float,
) -> Plan:
    """The rungs of a search of `budget` seconds: the first trained rung's time per network, from the search's
    share, the networks that enter it and the pace of a typical one (the slowest design, `seconds_per_image`)."""
    search = search_seconds(budget)
    least = MIN_PER_CLASS * len(data.class_names) * seconds_per_image  # a rung's fewest images, in seconds
    rungs = top_rung + 1 - (1 if fitness == "supernet" else 0)  # trained rungs, each costing about the same
    if fitness == "supernet":
        oneshot = ONESHOT_SHARE * search
        first = (search - oneshot) / (max(rungs, 1) * (designs + LADDER_CHILDREN))
        return Plan(1.0, TIMED_EPOCHS, max(first, least), top_rung, True, fitness, SUPERNET_SHARE * oneshot, oneshot)
    first = search / (rungs * RUNG0_EVALUATIONS)
    return Plan(1.0, TIMED_EPOCHS, max(first, least), top_rung, True, fitness)


def predicted_seconds(flops: int, images: int, records: Iterable[EvaluationRecord]) -> float | None:
    """A lower bound on a training's time: its FLOPs x images at the fastest rate seen; None before any."""
    rates = [r.seconds / (r.flops * r.images) for r in records if r.ok and r.flops and r.images]
    return flops * images * min(rates) if rates else None


def too_slow(
    spec: Spec, data: Dataset, config: EvaluationConfig, records: Iterable[EvaluationRecord], by_time: bool
) -> EvaluationRecord | None:
    """The record of a candidate too slow to try even at the fastest rate seen, else None: in its rung's time it
    would see fewer than MIN_PER_CLASS images per class (by time), or it would need far more than its time limit
    for its images (by images)."""
    flops = spec.flops(data.input_shape, len(data.class_names))
    limit = config.max_seconds
    if limit is None:
        return None
    least = MIN_PER_CLASS * len(data.class_names)
    images = least if by_time else round(config.epochs * config.train_fraction * len(data.train))
    seconds = predicted_seconds(flops, images, records)
    if seconds is None or seconds <= (1.0 if by_time else TOO_SLOW_MARGIN) * limit:
        return None
    if by_time:
        reason = f"{flops:,} FLOPs: fewer than {least:,} images in its {limit:.3g}s even at the fastest rate seen"
    else:
        reason = f"{flops:,} FLOPs x {images:,} images would take at least {seconds:.3g}s, over its {limit:.3g}s limit"
    params = spec.num_params(data.input_shape, len(data.class_names))
    return failure(spec, "too-slow", reason, params=params, flops=flops)


# A prediction from FLOPs takes the fastest rate seen, which small, overhead-bound networks overstate: by images,
# only a candidate predicted this far over its limit is refused untrained; the others are tried, compressed.
TOO_SLOW_MARGIN = 1.5


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
