"""Train a spec on a data set and package the result as a model: the one path `swarmcnn train`, the search's final
training and the scikit-learn estimator share, so that a model's metrics and records mean the same wherever it
was trained.
"""

from __future__ import annotations

import math
from dataclasses import asdict, replace

import torch

from swarmcnn.checkpoint import TrainedModel
from swarmcnn.data import DataConfig, Dataset, Split
from swarmcnn.designs import spec_of
from swarmcnn.ensemble import combine, member_seed
from swarmcnn.errors import SwarmCNNError
from swarmcnn.memory import allocating
from swarmcnn.model import check_model_fits
from swarmcnn.spec import Spec
from swarmcnn.train import (
    EVALUATION_BATCH,
    Evaluation,
    Normalization,
    TrainConfig,
    TrainReporter,
    TrainResult,
    build_seeded,
    default_batch_size,
    evaluate,
    fit,
    training_record,
)


def check_trainable(spec: Spec, data: Dataset, config: TrainConfig) -> None:
    """Refuse, before torch allocates, a spec that does not fit the inputs (naming the layer) or the memory
    (a training batch, and an evaluation batch)."""
    from swarmcnn.hardware import resolve_device

    spec.shapes(data.input_shape)
    if config.flip and len(data.input_shape) == 2:
        raise SwarmCNNError("flip mirrors pictures left to right; a signal has no mirror image (time runs one way): "
                            "leave --flip out for signals")
    device = resolve_device(config.device or "auto")  # a CUDA device's own free memory counts there
    batch = config.batch_size or default_batch_size(len(data.train))
    for size, training in ((batch, True), (EVALUATION_BATCH, False)):
        check_model_fits(spec, data.input_shape, len(data.class_names), size, training=training, device=device)


def train_model(
    spec: Spec | str,
    data: Dataset,
    config: TrainConfig,
    reporter: TrainReporter | None = None,
    data_config: DataConfig | None = None,
    fingerprint: str | None = None,
) -> tuple[TrainedModel, TrainResult, Evaluation]:
    """Train spec (a Spec, spec text or design name) on data's training split, seeded, test it once on the test
    split, and package it.

    The model is returned whatever the training's status: whether a diverged or silent training may be saved is
    the caller's decision (`train` refuses it; the search journals it). data_config: the split settings the
    model records beside data.source, so that `evaluate` rebuilds the same splits; fingerprint: of the data set
    as those settings split it (default: data's own; the search's final training, on train+val, passes the
    search's), so that `evaluate` can tell when the data changed since.
    """
    spec = spec_of(spec)
    check_trainable(spec, data, config)
    model = build_seeded(spec, data.input_shape, len(data.class_names), config.seed)
    normalization = Normalization.of(data.train.x, series=data.normalize == "series")
    with allocating("training", config.device):  # the checks above are estimates: a failure is still one line
        result = fit(model, data, normalization, config, reporter=reporter)
        test = evaluate(model, data.test, normalization)
    settings = asdict(data_config) if data_config is not None else {}
    fingerprint = fingerprint or data.fingerprint
    trained = TrainedModel(
        model.to("cpu", memory_format=torch.contiguous_format),  # as `load` gives it back: the same last digits
        spec,
        data.input_shape,
        data.class_names,
        normalization,
        metrics=metrics(result, test, tested=len(data.test) > 0),
        data={"source": data.source, **settings, "fingerprint": fingerprint},
        training=training_record(config, result),
        input_dtype="float32" if data.train.x.is_floating_point() else "uint8",
    )
    return trained, result, test


def train_members(
    spec: Spec | str,
    data: Dataset,
    config: TrainConfig,
    members: int,
    reporter: TrainReporter | None = None,
    data_config: DataConfig | None = None,
) -> tuple[TrainedModel, list[TrainResult], Evaluation]:
    """`members` trainings of spec as `train_model` makes them (seeds `ensemble.member_seed`), one model of their
    averaged probabilities when there are several (`averaged`), and every training's result for the caller to judge.

    A training that did not learn (`learned`) ends them, its result the last: the caller refuses the model, and
    the trainings after it would be time spent for nothing."""
    trainings = []
    for k in range(members):
        trainings.append(train_model(spec, data, replace(config, seed=member_seed(config.seed, k)), reporter,
                                     data_config))
        if not learned(trainings[-1][1]):
            break
    models, results, tests = (list(values) for values in zip(*trainings))
    if len(results) < members or members == 1:
        return models[0], results, tests[0]
    model, test = averaged(models, results, data.test)
    return model, results, test


def learned(result: TrainResult) -> bool:
    """Whether a training may make a model: it did not diverge and trained at least one epoch."""
    return result.ok and bool(result.epochs)


def averaged(trained: list[TrainedModel], results: list[TrainResult], test: Split) -> tuple[TrainedModel, Evaluation]:
    """One model of several trainings of one spec on the same data (swarmcnn.ensemble), tested once as one on the
    test split: the first's record and training curve, the ensemble's test, each member's own test beside it."""
    module = combine([model.module for model in trained])
    first = trained[0]
    evaluation = evaluate(module, test, first.normalization)
    tested = len(test) > 0
    metrics = {
        **first.metrics,
        "test_accuracy": evaluation.accuracy if tested else None,
        "test_loss": evaluation.loss if tested else None,
        "train_seconds": sum(result.seconds for result in results),
        "member_test_accuracies": [model.metrics.get("test_accuracy") for model in trained],
    }
    return replace(first, module=module, metrics=metrics), evaluation


def metrics(result: TrainResult, test: Evaluation, tested: bool = True) -> dict:
    """What model.json records of a training: scores missing for want of a split are None (JSON null), not 0."""
    validated = math.isfinite(result.best_val_loss)
    return {
        "status": result.status,
        "reason": result.reason,
        "epochs": len(result.epochs),
        "val_accuracy": result.best_val_accuracy if validated else None,
        "val_loss": result.best_val_loss if validated else None,
        "test_accuracy": test.accuracy if tested else None,
        "test_loss": test.loss if tested else None,
        "train_seconds": result.seconds,
        **({"not_learning_epoch": result.not_learning} if result.not_learning else {}),
        "curve": curve(result),
    }


def curve(result: TrainResult) -> list[dict]:
    """The training curve, epoch by epoch, kept with the model so that `swarmcnn report` can draw it (an epoch
    that was not validated has null validation scores)."""
    return [{k: v if math.isfinite(v) else None for k, v in asdict(stats).items()} for stats in result.epochs]
