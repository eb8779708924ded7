"""The end of a search: the chosen spec trained longer on train+val, then tested once on the test split.

Kept apart from the loop so that anything that picks a spec (the loop, or a benchmark's baseline that runs
no swarm) gets exactly the same final training.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from swarmcnn.data import Dataset, Split
from swarmcnn.search.evaluate import EvaluationConfig
from swarmcnn.spec import Spec
from swarmcnn.train import (
    Evaluation,
    Normalization,
    TrainConfig,
    TrainReporter,
    TrainResult,
    build_seeded,
    evaluate,
    fit,
)


@dataclass
class FinalModel:
    """The trained network with what it needs to be saved, and how training and the test went."""

    model: nn.Module
    data: Dataset  # train+val as its training split
    normalization: Normalization
    config: TrainConfig
    result: TrainResult
    test: Evaluation


def train_plus_val(data: Dataset) -> Dataset:
    """The final model learns from everything but the test split (the search already chose it on val).

    Its validation split is empty: the validation images are training images now.
    """
    train = Split(torch.cat([data.train.x, data.val.x]), torch.cat([data.train.y, data.val.y]))
    return replace(data, train=train, val=Split(data.val.x[:0], data.val.y[:0]))


def final_config(
    evaluation: EvaluationConfig,
    epochs: int,
    seed: int,
    augment: bool = False,
    flip: bool = False,
    max_seconds: float | None = None,
) -> TrainConfig:
    """The final training's settings: the candidates' batch size and learning rate, longer, with augmentation."""
    return TrainConfig(
        epochs=epochs,
        batch_size=evaluation.batch_size,
        lr=evaluation.lr,
        augment=augment,
        flip=flip,
        seed=seed,
        max_seconds=None if max_seconds is None else max(0.0, max_seconds),
        device=evaluation.device,
        precision=evaluation.precision,
    )


def train_final(spec: Spec, data: Dataset, config: TrainConfig, reporter: TrainReporter | None = None) -> FinalModel:
    """Train spec on train+val as config says, then test it once."""
    whole = train_plus_val(data)
    normalization = Normalization.of(whole.train.x)
    model = build_seeded(spec, whole.input_shape, len(whole.class_names), config.seed)
    result = fit(model, whole, normalization, config, reporter=reporter)
    return FinalModel(model, whole, normalization, config, result, evaluate(model, whole.test, normalization))
