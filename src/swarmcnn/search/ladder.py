"""Multi-fidelity ranking: every candidate trained briefly, the best of each rung again on ETA times the images.

Asynchronous successive halving (ASHA: Li et al., "A system for massively parallel hyperparameter tuning",
MLSys 2020, after Jamieson & Talwalkar's successive halving and Hyperband): rung 0 scores every candidate on
a few training images; a candidate among the best 1/ETA of all those scored at rung k so far is trained again,
from scratch, on ETA times the images (rung k+1), up to the top rung. Each rung then costs about as much as
rung 0 (ETA times fewer candidates, ETA times the images), so most of the budget still goes to many cheap
evaluations and a little to a faithful look at the best; the final spec is the best of the highest rung whose
pace gives it the final training's epochs (budget.py, `choose_final`).

Fidelity is counted in seconds in a budgeted search (every rung's training is driven by its time, ETA times
longer per rung: networks are ranked by what they reach in the time they get, as in the final training), and in
training images in a search by a count of candidates (a seed then repeats it to the last digit; a rung grows the
share of the training split first, more distinct images saying more than repeated ones, then the epochs).
With the supernet fitness rung 0 is the supernet's score, and the ladder's trained rungs start at 1 (budget.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from swarmcnn.search.evaluate import EvaluationConfig
from swarmcnn.search.journal import EvaluationRecord, ranked

if TYPE_CHECKING:
    from swarmcnn.search.budget import Plan

ETA = 3  # ASHA's reduction factor: the usual 3 (Hyperband and ASHA use 3 or 4)

Rungs = Mapping[int, Mapping[str, EvaluationRecord]]  # rung -> spec -> its record at that rung


def rung_config(plan: Plan, base: EvaluationConfig, rung: int) -> EvaluationConfig:
    """The training of rung `rung`: ETA times the time (by time) or the images and the time limit (by images) of
    the rung below, from the plan's first trained rung."""
    base = plan.rung0(base)
    factor = ETA ** (rung - plan.first_trained)
    if plan.by_time:
        return replace(base, max_seconds=base.max_seconds * factor)
    images = base.epochs * base.train_fraction * factor  # in training splits
    fraction = min(1.0, base.train_fraction * factor)
    limit = None if base.max_seconds is None else base.max_seconds * factor
    return replace(base, train_fraction=fraction, epochs=max(base.epochs, round(images / fraction)), max_seconds=limit)


def due(rungs: Rungs, top: int, first: int = 0) -> list[tuple[EvaluationRecord, int]]:
    """ASHA's promotions: (record, next rung) for each candidate among the best 1/ETA of its rung, not yet above,
    from rung `first` up."""
    promotions = []
    for rung in range(first, top):
        scored = rungs.get(rung, {})
        above = rungs.get(rung + 1, {})
        best = ranked(scored.values())[: len(scored) // ETA]
        promotions += [(record, rung + 1) for record in best if record.spec not in above]
    return promotions


def finishing(rungs: Rungs, top: int, first: int = 0) -> tuple[EvaluationRecord, int] | None:
    """The next promotion that puts the best of every rung on the rung above, lowest rung first, or None.

    When the search ends, the best of a rung may not have been promoted yet (too few candidates, or it came
    last); the final spec is chosen at the highest rung, so it must hold the best of those below.
    """
    for rung in range(first, top):
        best = next(iter(ranked(rungs.get(rung, {}).values())), None)
        if best is not None and best.spec not in rungs.get(rung + 1, {}):
            return best, rung + 1
    return None


def finishing_seconds(
    rungs: Rungs, top: int, seconds: Callable[[EvaluationRecord], float], first: int = 0
) -> float:
    """About how long the finishing promotions would take: each rung's best, if not promoted yet, up to the top.

    seconds(record) is what the record's training would take now at its own rung (the pace may have changed);
    each rung above costs ETA times the one below."""
    total = 0.0
    for rung in range(first, top):
        best = next(iter(ranked(rungs.get(rung, {}).values())), None)
        if best is not None and best.spec not in rungs.get(rung + 1, {}):
            total += seconds(best) * sum(ETA**k for k in range(1, top - rung + 1))
    return total


def ranking(rungs: Rungs) -> list[EvaluationRecord]:
    """The trained candidates at the highest rung each reached, higher rungs first, best first within a rung."""
    seen: set[str] = set()
    order = []
    for rung in sorted(rungs, reverse=True):
        for record in ranked(rungs[rung].values()):
            if record.spec not in seen:
                seen.add(record.spec)
                order.append(record)
    return order


def best_of_top(rungs: Rungs) -> EvaluationRecord | None:
    """The best trained candidate of the highest rung that has one."""
    return next(iter(ranking(rungs)), None)


def by_rung(records: Iterable[EvaluationRecord]) -> dict[int, dict[str, EvaluationRecord]]:
    """Records grouped by rung, each rung by spec."""
    rungs: dict[int, dict[str, EvaluationRecord]] = {}
    for record in records:
        rungs.setdefault(record.rung, {})[record.spec] = record
    return rungs
