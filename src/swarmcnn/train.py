"""One training loop: backpropagation on in-memory tensors, early stopping, and a status instead of a crash.

Batches are slices of the uint8 tensors the data source holds, normalised per batch on the fly
(as airbench does): no DataLoader, no per-sample Python on the hot path.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from swarmcnn.data import Dataset, Split
from swarmcnn.errors import SwarmCNNError

OPTIMIZERS = ("adamw", "sgd")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float | None = None  # None: 5e-3 for AdamW, 5e-2 for SGD (tuned on digits, see tests/test_train.py)
    weight_decay: float = 5e-2  # decoupled (AdamW) weight decay; SGD gets a tenth of it
    optimizer: str = "adamw"  # or "sgd" (with Nesterov momentum)
    momentum: float = 0.9
    patience: int | None = 5  # epochs without a better validation loss before stopping; None: never
    augment: bool = False  # random shifts of up to 1/8 of the picture
    flip: bool = False  # random horizontal flips (not for digits or text)
    seed: int = 0
    train_fraction: float = 1.0  # the search trains candidates on part of the training split
    max_seconds: float | None = None  # the search's per-candidate time limit
    give_up_early: bool = False  # stop as soon as the pace shows max_seconds cannot hold the whole training
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise SwarmCNNError(f"epochs and batch size must be at least 1, got {self.epochs}, {self.batch_size}")
        if self.optimizer not in OPTIMIZERS:
            raise SwarmCNNError(f"unknown optimizer '{self.optimizer}'; choose one of {', '.join(OPTIMIZERS)}")
        if not 0 < self.train_fraction <= 1:
            raise SwarmCNNError(f"train fraction must be in (0, 1], got {self.train_fraction}")
        if self.lr is not None and not self.lr > 0:
            raise SwarmCNNError(f"learning rate must be positive, got {self.lr}")
        if self.max_seconds is not None and not self.max_seconds >= 0:
            raise SwarmCNNError(f"time limit must not be negative, got {self.max_seconds}s")

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return 5e-3 if self.optimizer == "adamw" else 5e-2


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean and standard deviation of the training split, in the stored units (0..255 for uint8)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def of(cls, x: torch.Tensor) -> Normalization:
        channels = x.transpose(0, 1).reshape(x.shape[1], -1)
        mean, std = [], []
        for values in channels:  # one channel at a time keeps the float copy small
            values = values.double()
            mean.append(values.mean().item())
            std.append(max(values.std().item(), 1e-6))
        return cls(tuple(mean), tuple(std))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        mean = torch.tensor(self.mean, device=x.device).view(shape)
        std = torch.tensor(self.std, device=x.device).view(shape)
        return (x.float() - mean) / std


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    images_per_second: float


@dataclass
class TrainResult:
    """What happened: status is 'completed', 'early-stopped', 'time-limit' or 'diverged'."""

    status: str
    reason: str
    epochs: list[EpochStats] = field(default_factory=list)
    best_val_loss: float = math.inf
    best_val_accuracy: float = 0.0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != "diverged"


class TrainReporter:
    """Receives progress; the CLI's display subclasses it. Training itself never prints."""

    def start(self, epochs: int, batches_per_epoch: int) -> None: ...

    def batch(self, epoch: int, batch: int, loss: float) -> None: ...

    def epoch_end(self, stats: EpochStats) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    loss: float
    per_class_accuracy: tuple[float, ...]
    confusion: tuple[tuple[int, ...], ...]  # rows: true class, columns: predicted class

    def to_dict(self, class_names: tuple[str, ...]) -> dict:
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "per_class_accuracy": dict(zip(class_names, self.per_class_accuracy)),
            "confusion_matrix": [list(row) for row in self.confusion],
            "class_names": list(class_names),
        }


def build_seeded(spec, input_shape: tuple[int, ...], num_classes: int, seed: int) -> nn.Module:
    """Build with a fixed initialisation, leaving the global random state as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return spec.build(input_shape, num_classes)


def fit(
    model: nn.Module,
    data: Dataset,
    normalization: Normalization,
    config: TrainConfig = TrainConfig(),
    reporter: TrainReporter | None = None,
) -> TrainResult:
    """Train by backpropagation; the model ends with its best weights by validation loss.

    With an empty validation split (a final training on train+val) every epoch is kept and the model ends
    with its last weights: there is nothing to validate on and no reason to stop early.
    """
    reporter = reporter or TrainReporter()
    device = torch.device(config.device)
    generator = torch.Generator().manual_seed(config.seed)
    train = _subset(data.train, config.train_fraction, generator)
    x, y = train.x.to(device), train.y.to(device)
    model.to(device)
    batches = _batches_per_epoch(len(y), config.batch_size)
    optimizer = _optimizer(model, config)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * batches)
    limit = 20 * math.log(len(data.class_names))  # far worse than guessing: the weights blew up
    result = TrainResult(status="completed", reason=f"trained {config.epochs} epochs")
    best_state, since_best = None, 0
    clock = TimeLimit(time.perf_counter(), config.max_seconds, config.epochs * batches, config.give_up_early)
    reporter.start(config.epochs, batches)
    with torch.random.fork_rng(devices=[]):  # dropout draws from the global generator: seed it, then restore
        torch.manual_seed(config.seed)
        for epoch in range(1, config.epochs + 1):
            epoch_started = time.perf_counter()
            on_batch = functools.partial(reporter.batch, epoch)
            loss_sum, correct, seen = _train_epoch(
                model, x, y, normalization, config, optimizer, schedule, generator, on_batch, clock
            )
            seconds = time.perf_counter() - epoch_started
            if clock.projected is not None:  # gave up: validating a network that will not finish is wasted time
                result.status, result.reason = "time-limit", clock.reason(epoch)
                break
            train_loss = loss_sum / max(seen, 1)
            if not math.isfinite(train_loss) or train_loss > limit:
                result.status, result.reason = "diverged", f"training loss {train_loss:.3g} at epoch {epoch}"
                break
            val = evaluate(model, data.val, normalization, device=device) if len(data.val) else None
            val_loss, val_accuracy = (val.loss, val.accuracy) if val else (math.nan, math.nan)
            stats = EpochStats(epoch, train_loss, correct / max(seen, 1), val_loss, val_accuracy, seen / seconds)
            result.epochs.append(stats)
            reporter.epoch_end(stats)
            if val is not None and val.loss < result.best_val_loss:
                result.best_val_loss, result.best_val_accuracy = val.loss, val.accuracy
                best_state, since_best = copy.deepcopy(model.state_dict()), 0
            elif val is not None:
                since_best += 1
            if config.patience is not None and since_best >= config.patience and epoch < config.epochs:
                result.status = "early-stopped"
                result.reason = f"no better validation loss for {since_best} epochs, stopped at epoch {epoch}"
                break
            if clock.exceeded():
                result.status, result.reason = "time-limit", clock.reason(epoch)
                break
    reporter.stop()
    if best_state is not None:
        model.load_state_dict(best_state)
    result.seconds = time.perf_counter() - clock.started
    return result


def _train_epoch(model, x, y, normalization, config, optimizer, schedule, generator, on_batch, clock):
    """One pass over the shuffled data; returns the loss sum, correct count and images seen."""
    model.train()
    order = torch.randperm(len(y), generator=generator).to(x.device)
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    seen = 0
    for b, start in enumerate(range(0, len(y), config.batch_size)):
        index = order[start : start + config.batch_size]
        if len(index) < 2:  # batch norm cannot train on a single sample
            continue
        batch = x[index]
        if config.augment or config.flip:  # on stored values, so a shift brings in black (0), not the mean
            batch = augment(batch, generator, shift=config.augment, flip=config.flip)
        inputs = normalization(batch)
        targets = y[index]
        logits = model(inputs)
        loss = F.cross_entropy(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        loss_sum += loss.detach() * len(index)
        correct += (logits.detach().argmax(1) == targets).sum()
        seen += len(index)
        clock.batches += 1
        if b % 10 == 0:
            on_batch(b, loss.item())
        if clock.exceeded():  # a clock read (~0.1 µs) is nothing next to a batch (a millisecond at least)
            break
    return loss_sum.item(), correct.item(), seen


@dataclass
class TimeLimit:
    """When a training must stop: past max_seconds, or, giving up early, once its pace says it cannot finish.

    A search candidate that cannot finish in its time limit scores nothing, so the search asks it to give up
    as soon as it knows: the pace of the first PACE_BATCHES batches costs seconds, the limit itself many.
    """

    started: float
    max_seconds: float | None
    total_batches: int
    give_up_early: bool = False
    batches: int = 0  # trained so far
    projected: float | None = None  # the whole training's seconds, when it gave up on that account

    def exceeded(self) -> bool:
        if self.max_seconds is None:
            return False
        elapsed = time.perf_counter() - self.started
        if elapsed > self.max_seconds:
            return True
        if self.give_up_early and self.batches >= PACE_BATCHES:
            projected = elapsed / self.batches * self.total_batches
            if projected > PACE_MARGIN * self.max_seconds:
                self.projected = projected
                return True
        return False

    def reason(self, epoch: int) -> str:
        if self.projected is not None:
            return (
                f"would take about {self.projected:.0f}s at its pace over {self.batches} batches, "
                f"over the {self.max_seconds:g}s limit; gave up at epoch {epoch}"
            )
        return f"time limit {self.max_seconds:g}s at epoch {epoch}"


PACE_BATCHES = 5  # batches timed before a pace is trusted
PACE_MARGIN = 1.25  # the first batches run slower (allocation, caches): give up only well over the limit


def augment(x: torch.Tensor, generator: torch.Generator, shift: bool = True, flip: bool = False) -> torch.Tensor:
    """Light augmentation of a stored batch (uint8 or float): per-sample random shifts, optional flips.

    Shifts pad with zeros, the black of stored pictures (in normalised units the border would be grey).

    One gather for the whole batch (as airbench's batch crops), no per-sample Python; video clips are
    shifted as a whole, every frame alike.
    """
    n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    if shift:
        pad = max(1, min(h, w) // 8)
        planes = F.pad(x.reshape(n, -1, h, w), (pad, pad, pad, pad))
        dy, dx = torch.randint(0, 2 * pad + 1, (2, n, 1), generator=generator).to(x.device)
        rows = torch.arange(h, device=x.device) + dy  # (n, h): which padded row each output row reads
        cols = torch.arange(w, device=x.device) + dx
        batch = torch.arange(n, device=x.device)[:, None, None]
        x = planes[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).reshape(x.shape)
    if flip:
        flipped = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        x = torch.where(flipped.view(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)
    return x


@torch.inference_mode()
def evaluate(
    model: nn.Module, split: Split, normalization: Normalization, batch_size: int = 512, device=None
) -> Evaluation:
    """Accuracy, mean cross-entropy, per-class accuracy and confusion matrix on one split."""
    logits = predict_logits(model, split.x, normalization, batch_size, device)
    y = split.y.to(logits.device)
    classes = logits.shape[1]
    confusion = torch.bincount(y * classes + logits.argmax(1), minlength=classes * classes).view(classes, classes)
    per_class = confusion.diag() / confusion.sum(1).clamp(min=1)
    return Evaluation(
        accuracy=(confusion.diag().sum() / max(len(y), 1)).item(),
        loss=F.cross_entropy(logits, y).item() if len(y) else math.nan,
        per_class_accuracy=tuple(per_class.tolist()),
        confusion=tuple(tuple(row) for row in confusion.tolist()),
    )


@torch.inference_mode()
def predict_logits(
    model: nn.Module, x: torch.Tensor, normalization: Normalization, batch_size: int = 512, device=None
) -> torch.Tensor:
    """Class scores for stored inputs (uint8 or float), in batches, in evaluation mode."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    parts = [model(normalization(x[i : i + batch_size].to(device))) for i in range(0, len(x), batch_size)]
    return torch.cat(parts).float() if parts else torch.empty(0, model[-1].out_features)


def _subset(split: Split, fraction: float, generator: torch.Generator) -> Split:
    if fraction >= 1:
        return split
    keep = torch.randperm(len(split), generator=generator)[: max(2, round(fraction * len(split)))]
    return Split(split.x[keep], split.y[keep])


def _batches_per_epoch(n: int, batch_size: int) -> int:
    return max(1, math.ceil(n / batch_size))


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=config.learning_rate,
            momentum=config.momentum,
            weight_decay=config.weight_decay / 10,
            nesterov=True,
        )
    return torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
