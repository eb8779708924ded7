"""The finalists compared by k-fold cross-validation when the validation split is too small to tell them apart.

A validation split of n cases measures an accuracy in steps of 1/n: the six validation cases of ArrowHead's 36, or
GunPoint's eight of 50, score many networks 100% and pick among them by luck (benchmarks/README.md, signals: the
final network changed from seed to seed on those sets). Below SMALL_VALIDATION cases (one case moves the accuracy
by more than a point) the best networks of the ladder's top rung are trained again on FOLDS stratified folds of
train+val, each scored on the fold it did not see: every one of the n_train + n_val cases is then a held-out case,
FOLDS times the trainings. The cross-validated scores form one rung above the top rung (`rung_of`), so that the
ladder's rule, the best of the highest rung is the final network, still holds, and a resume finds them journaled.

Only small data takes this path, where a training is short: its time comes out of the final training's
(`fold_config`), which on such data is hundreds of epochs (GunPoint: 60 s is thousands).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from swarmcnn.data import Dataset, Split
from swarmcnn.search.evaluate import EvaluationConfig, evaluate_candidate
from swarmcnn.search.journal import EvaluationRecord, ranked
from swarmcnn.search.ladder import Rungs
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization

SMALL_VALIDATION = 100  # fewer validation cases than this: one case is worth more than a point of accuracy
FOLDS = 5  # the usual k; fewer where the smallest class of train+val has fewer cases (2 at least)
FINALISTS = 3  # the top rung's best cross-validated: the ladder's ETA, the share of a rung it promotes
# Of the time left for the final training, at most: half. Where the validation split is this small the final
# training is hundreds of epochs (GunPoint at 2 minutes: 1,119 epochs in 64 s), while a third of it left each fold
# of two finalists less time than the ladder's first rung (2.1 s against 2.25 s) and no cross-validation at all.
SHARE_OF_FINAL = 1 / 2


def needs_cross_validation(data: Dataset) -> bool:
    """Whether the validation split is too small to rank the finalists by itself (and train+val can be folded)."""
    return 0 < len(data.val) < SMALL_VALIDATION and folds_for(data) >= 2


def folds_for(data: Dataset) -> int:
    """FOLDS, or fewer where a class of train+val has fewer cases than that: each fold holds every class."""
    labels = torch.cat([data.train.y, data.val.y])
    smallest = int(torch.bincount(labels, minlength=len(data.class_names)).min())
    return min(FOLDS, smallest)


def rung_of(top_rung: int) -> int:
    """The rung the cross-validated scores are journaled at: one above the ladder's top."""
    return top_rung + 1


def finalists(rungs: Rungs, top_rung: int) -> tuple[int, list[EvaluationRecord]]:
    """The highest trained rung up to the ladder's top, and its FINALISTS best records (none: nothing trained)."""
    for rung in sorted((r for r in rungs if r <= top_rung), reverse=True):
        best = ranked(rungs[rung].values())[:FINALISTS]
        if best:
            return rung, best
    return 0, []


def fold_config(config: EvaluationConfig, seconds_left: float | None, trainings: int,
                least: float | None) -> EvaluationConfig | None:
    """A fold's training: the top rung's (config), in a budgeted search for less time where all `trainings` would
    take more than SHARE_OF_FINAL of the seconds left for the final training; None where a fold would then train
    for less than `least`, the ladder's shortest training (a ranking by less is no better than the rung's)."""
    if seconds_left is None or config.max_seconds is None:
        return config
    seconds = min(config.max_seconds, SHARE_OF_FINAL * max(seconds_left, 0.0) / max(trainings, 1))
    return None if least is not None and seconds < least else replace(config, max_seconds=seconds)


def folded(data: Dataset, folds: int, seed: int) -> list[Dataset]:
    """train+val in `folds` stratified folds (scikit-learn's StratifiedKFold, shuffled by seed): each Dataset trains
    on all folds but one and validates on that one."""
    from sklearn.model_selection import StratifiedKFold

    x = torch.cat([data.train.x, data.val.x])
    y = torch.cat([data.train.y, data.val.y])
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    datasets = []
    for train, held in splitter.split(np.zeros(len(y)), y.numpy()):
        train, held = torch.from_numpy(train), torch.from_numpy(held)
        datasets.append(replace(data, train=Split(x[train], y[train]), val=Split(x[held], y[held])))
    return datasets


def cross_validate(
    spec: Spec, data: Dataset, normalization: Normalization, config: EvaluationConfig, folds: int
) -> EvaluationRecord:
    """spec's record over `folds` folds of train+val: the accuracy and loss over every held-out case, the
    trainings' seconds and images summed; the first failing fold's record if one fails."""
    records, sizes = [], []
    for fold in folded(data, folds, config.seed):
        record = evaluate_candidate(spec, fold, normalization, config)
        if not record.ok:
            return record
        records.append(record)
        sizes.append(len(fold.val))
    cases = sum(sizes)
    accuracy = sum(r.val_accuracy * n for r, n in zip(records, sizes)) / cases
    losses = [r.val_loss for r in records]
    loss = None if any(v is None or not math.isfinite(v) for v in losses) else sum(
        v * n for v, n in zip(losses, sizes)) / cases
    return replace(
        records[0],
        reason=f"{folds}-fold cross-validation over {cases} cases",
        score=config.score(accuracy, records[0].params),
        val_accuracy=accuracy,
        val_loss=loss,
        epochs=sum(r.epochs for r in records),
        seconds=sum(r.seconds for r in records),
        images=sum(r.images for r in records),
        planned_images=sum(r.planned_images for r in records),
    )
