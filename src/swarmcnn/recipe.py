"""A training's settings (the recipe): optimizer, schedule, regularisation, augmentation, time; checked where they
enter, so that a bad option fails before any data is read. `train.fit` follows them."""

from __future__ import annotations

import math
from dataclasses import dataclass

from swarmcnn.errors import SwarmCNNError
from swarmcnn.schedule import SCHEDULES

OPTIMIZERS = ("adamw", "sgd")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int | None = None  # None: default_batch_size(training images)
    lr: float | None = None  # peak learning rate; None: default_lr(model, optimizer), from the network
    weight_decay: float = 1e-2  # decoupled (AdamW) weight decay; SGD gets a tenth of it
    optimizer: str = "adamw"  # or "sgd" (with Nesterov momentum)
    momentum: float = 0.9
    warmup: float = 0.2  # share of the schedule over which the learning rate rises to its peak (one-cycle)
    label_smoothing: float = 0.1
    schedule: str = "one-cycle"  # the rate after the warm-up: "one-cycle" (a cosine to zero) or "linear"
    lookahead: bool = False  # an average of the weights copied back into the network as it trains (steps.py)
    ema: float | None = None  # decay of an average of the weights the model ends with (e.g. 0.999); None: none
    patience: int | None = None  # stop after this many epochs without a better validation loss; None: never
    augment: bool = False  # random shifts of up to 1/8 of the picture
    flip: bool = False  # random horizontal flips (not for digits or text)
    seed: int = 0
    train_fraction: float = 1.0  # the search trains candidates on part of the training split
    max_seconds: float | None = None  # the time allotted: the schedule ends with its images or this time
    device: str = "auto"  # auto: a CUDA GPU where there is one (swarmcnn.hardware)
    precision: str = "auto"  # auto: bf16 autocast where the device computes it fast, else fp32

    def __post_init__(self) -> None:
        # field names as the options are named (--weight-decay: weight_decay), so the message names the culprit
        if self.epochs < 1:
            raise SwarmCNNError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size is not None and self.batch_size < 1:
            raise SwarmCNNError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.schedule not in SCHEDULES:
            raise SwarmCNNError(f"unknown schedule '{self.schedule}'; choose one of {', '.join(SCHEDULES)}")
        if self.optimizer not in OPTIMIZERS:
            raise SwarmCNNError(f"unknown optimizer '{self.optimizer}'; choose one of {', '.join(OPTIMIZERS)}")
        if not 0 < self.train_fraction <= 1:
            raise SwarmCNNError(f"train fraction must be in (0, 1], got {self.train_fraction}")
        if self.lr is not None and not 0 < self.lr < math.inf:
            raise SwarmCNNError(f"lr (the peak learning rate) must be a positive finite number, got {self.lr}")
        if not 0 <= self.weight_decay < math.inf:
            raise SwarmCNNError(f"weight_decay must be a finite number >= 0, got {self.weight_decay}")
        if not 0 <= self.momentum < 1:
            raise SwarmCNNError(f"momentum must be in [0, 1), got {self.momentum}")
        if not 0 <= self.warmup < 1:
            raise SwarmCNNError(f"warm-up share must be in [0, 1), got {self.warmup}")
        if not 0 <= self.label_smoothing < 1:
            raise SwarmCNNError(f"label smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise SwarmCNNError(f"weight average decay must be in (0, 1), got {self.ema}")
        if self.patience is not None and self.patience < 1:
            raise SwarmCNNError(f"patience must be at least 1 epoch (None: no early stopping), got {self.patience}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**64:
            raise SwarmCNNError(f"seed must be a whole number from 0 to 2**64 - 1, got {self.seed!r}")
        if self.max_seconds is not None and not self.max_seconds >= 0:
            raise SwarmCNNError(f"time limit must not be negative, got {self.max_seconds}s")
