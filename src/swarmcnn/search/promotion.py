"""Promotion: the few best candidates of a search trained again, longer, before the final choice.

A candidate is scored after a short training (2 epochs by default), which ranks networks by how fast they
learn and, on a small validation split, by luck: the top few are often within one or two validation images
of each other. Training the best `promote` of them PROMOTION_FACTOR times longer and choosing among those
is the last rung of successive halving (Jamieson & Talwalkar, 2016; Li et al., Hyperband, 2018): most of
the budget still goes to many cheap evaluations, a little to a more faithful look at the finalists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from swarmcnn.search.evaluate import EvaluationConfig
from swarmcnn.search.journal import EvaluationRecord, ranked

PROMOTION_FACTOR = 3  # a promoted candidate trains this many times the candidate epochs (and time limit)


def promotion_config(evaluation: EvaluationConfig) -> EvaluationConfig:
    """The candidates' training settings, PROMOTION_FACTOR times longer."""
    limit = None if evaluation.max_seconds is None else evaluation.max_seconds * PROMOTION_FACTOR
    return replace(evaluation, epochs=evaluation.epochs * PROMOTION_FACTOR, max_seconds=limit)


def finalists(records: Iterable[EvaluationRecord], count: int) -> list[EvaluationRecord]:
    """The `count` best trained candidates by search score, best first."""
    return ranked(records)[:count]


def promotion_seconds(records: Iterable[EvaluationRecord], count: int, promoted: Iterable[str]) -> float:
    """How long promoting today's finalists would take, those already promoted aside."""
    done = set(promoted)
    return sum(r.seconds * PROMOTION_FACTOR for r in finalists(records, count) if r.spec not in done)
