"""Score one candidate: train it briefly, measure it on the validation split, never crash the search.

The test split is not touched here: the search only ever sees train and validation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from swarmcnn.data import Dataset
from swarmcnn.errors import SwarmCNNError
from swarmcnn.memory import allocation_failure
from swarmcnn.search.journal import EvaluationRecord
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization, TrainConfig, build_seeded, fit

OBJECTIVES = ("accuracy", "accuracy-params")


@dataclass(frozen=True)
class EvaluationConfig:
    """How a candidate is trained and scored during the search (the final model gets more)."""

    epochs: int = 2
    train_fraction: float = 1.0
    batch_size: int | None = None  # None: TrainConfig's default for the training split's size
    lr: float | None = None  # None: TrainConfig's default for the network (`default_lr`)
    max_params: int = 2_000_000  # larger candidates get the worst score without training
    max_seconds: float | None = None  # per candidate: its schedule ends by then, with fewer images if it must
    augment: bool = False  # random shifts, as the final training gets them (`search --augment`)
    flip: bool = False  # random horizontal flips, likewise
    objective: str = "accuracy"  # or "accuracy-params": accuracy minus 0.01 per decade of parameters
    seed: int = 0
    device: str = "auto"  # every training of the search (candidates, promotions, final): swarmcnn.hardware
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise SwarmCNNError(f"unknown objective '{self.objective}'; choose one of {', '.join(OBJECTIVES)}")
        if self.epochs < 1 or self.max_params < 1 or (self.batch_size is not None and self.batch_size < 1):
            raise SwarmCNNError(
                f"candidate epochs and max params must be at least 1, got {self.epochs}, {self.max_params}"
            )
        self.train_config()  # the training settings are checked here, not once per candidate

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            train_fraction=self.train_fraction,
            max_seconds=self.max_seconds,
            augment=self.augment,
            flip=self.flip,
            seed=self.seed,
            device=self.device,
            precision=self.precision,
        )

    def score(self, accuracy: float, params: int) -> float:
        if self.objective == "accuracy-params":
            return accuracy - 0.01 * math.log10(max(params, 1))
        return accuracy


def evaluate_candidate(
    spec: Spec,
    data: Dataset,
    normalization: Normalization,
    config: EvaluationConfig,
    worker: str = "main",
    build: Callable[..., nn.Module] = build_seeded,
) -> EvaluationRecord:
    """Train, validate and score; any failure becomes the worst score with its reason (an allocation that fails:
    out-of-memory, with the size asked for). build: makes the network (build_seeded; a seam for tests)."""
    started = time.perf_counter()
    classes = len(data.class_names)
    params = flops = None

    def failed(status: str, reason: str, epochs: int = 0) -> EvaluationRecord:
        return failure(spec, status, reason, time.perf_counter() - started, worker, params, flops, epochs)

    try:
        params, flops = spec.num_params(data.input_shape, classes), spec.flops(data.input_shape, classes)
        if params > config.max_params:
            return failed("too-large", f"{params:,} parameters > limit {config.max_params:,}")
        model = build(spec, data.input_shape, classes, config.seed)
        result = fit(model, data, normalization, config.train_config())
    except SwarmCNNError as error:
        return failed("failed", str(error))
    except Exception as error:  # a candidate that breaks must not end the search; the reason is kept
        oom = allocation_failure(error, "training", config.device)  # MemoryError included
        if oom is not None:
            return failed("out-of-memory", str(oom))
        return failed("failed", f"{type(error).__name__}: {_first_line(error)}")
    if result.status == "diverged":
        return failed("diverged", result.reason, len(result.epochs))
    return EvaluationRecord(
        str(spec),
        "ok",
        result.reason,
        config.score(result.best_val_accuracy, params),
        result.best_val_accuracy,
        result.best_val_loss,
        params,
        flops,
        len(result.epochs),
        time.perf_counter() - started,
        worker,
        images=result.images,
        planned_images=result.planned_images,
    )


def failure(
    spec: Spec | str,
    status: str,
    reason: str,
    seconds: float = 0.0,
    worker: str = "main",
    params: int | None = None,
    flops: int | None = None,
    epochs: int = 0,
) -> EvaluationRecord:
    """The record of a candidate that gets the worst score, with its reason."""
    return EvaluationRecord(str(spec), status, reason, -math.inf, None, None, params, flops, epochs, seconds, worker)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
