"""Learning curves from the ladder: how a network's validation error falls with the training images it sees.

The ladder trains its best networks again on ETA times the images (ladder.py), so that each finalist has been
scored after two training lengths. The error is taken to fall as a power of the images, error = c * images ** -a
(the power law of learning curves: Hestness et al., "Deep learning scaling is predictable, empirically", 2017;
Domhan et al. extrapolate curves to stop hyperparameter trials early, IJCAI 2015), so that two scores predict
a network's error after the images its own pace allows in a final training's time. This is what the final
training's share of the budget (budget.py) needs: how much a longer final training still gains, against what
a longer search might find. (The final network itself is chosen after equal images, budget.choose_final: one
pooled curve credits a small network's extra images with the gains of large ones.)

One exponent serves all finalists: the median of theirs. With a few hundred validation images, one network's
two scores differ by a handful of images, too few to tell its exponent from its neighbours'; the exponent is
rather a property of the data and the recipe (how fast more training still helps), and the pooled one ranks
finalists by what differs between them: their error after equal images and their pace.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

from swarmcnn.search.journal import EvaluationRecord

MAX_EXPONENT = 1.0  # error falling faster than 1/images is noise between two scores, not a curve
MIN_ERROR = 1e-3  # a perfect validation score is one image from an error: never a zero to divide by


@dataclass(frozen=True)
class Curve:
    """error(images) = error * (images / self.images) ** -exponent: a network's score after `images`, extended."""

    error: float
    images: int
    exponent: float

    @classmethod
    def of(cls, record: EvaluationRecord, exponent: float) -> Curve:
        return cls(_error(record), record.images, exponent)

    def error_after(self, images: float) -> float:
        return self.error * (max(images, 1.0) / self.images) ** -self.exponent

    def accuracy_after(self, images: float) -> float:
        return 1.0 - self.error_after(images)


def exponent(rungs: Mapping[int, Mapping[str, EvaluationRecord]], top: int) -> float | None:
    """The median exponent of the networks scored on both of the two highest rungs up to `top`; None without any
    (no promotions, or nothing above rung 0 yet)."""
    if top < 1:
        return None
    below, above = rungs.get(top - 1, {}), rungs.get(top, {})
    pairs = [(below[spec], record) for spec, record in above.items() if spec in below]
    found = [_exponent(low, high) for low, high in pairs if _scored(low) and _scored(high)]
    return statistics.median(found) if found else None


def _exponent(low: EvaluationRecord, high: EvaluationRecord) -> float:
    if high.images <= low.images:
        return 0.0
    fall = math.log(_error(low) / _error(high)) / math.log(high.images / low.images)
    return min(max(fall, 0.0), MAX_EXPONENT)  # a score that fell with more images is noise: a flat curve


def _scored(record: EvaluationRecord) -> bool:
    return record.ok and record.val_accuracy is not None and record.images > 0


def _error(record: EvaluationRecord) -> float:
    return max(1.0 - record.val_accuracy, MIN_ERROR)
