"""One training loop: backpropagation on in-memory tensors, early stopping, and a status instead of a crash.

Batches are slices of the uint8 tensors the data source holds, normalised per batch on the fly
(as airbench does): no DataLoader, no per-sample Python on the hot path.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from swarmcnn.data import Dataset, Split
from swarmcnn.hardware import Hardware, resolve
from swarmcnn.inference import EVALUATION_BATCH, Normalization, predict_logits  # re-exported: older imports
from swarmcnn.recipe import OPTIMIZERS, TrainConfig  # noqa: F401  (re-exported)
from swarmcnn.schedule import WARMUP_START, Schedule, one_cycle  # noqa: F401  (re-exported)
from swarmcnn.steps import Steps, default_lr  # noqa: F401  (re-exported)
from swarmcnn.whitening import SAMPLES as WHITENING_SAMPLES
from swarmcnn.whitening import fit_whitening


def default_batch_size(images: int) -> int:
    """128 images per batch, fewer (down to 32, a power of two) where an epoch would have under 32 batches.

    A big batch trains more images per second on a CPU; a small data set needs the steps: at 3 epochs of
    1,257 digits a batch of 128 left a small net at 56% test accuracy, one of 32 at 84%.
    """
    batch = 128
    while batch > 32 and images < 32 * batch:
        batch //= 2
    return batch


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float  # NaN where this epoch was not validated
    val_accuracy: float
    images_per_second: float
    lr: float = math.nan  # the learning rate of the epoch's last step


@dataclass
class TrainResult:
    """What happened: status is 'completed', 'early-stopped' or 'diverged'.

    best_val_loss and best_val_accuracy are those of the weights the model ends with: its last ones, or with
    early stopping its best. A training cut by its time limit still completed its schedule (see `Schedule`);
    images against planned_images tells how much of it the time allowed.
    """

    status: str
    reason: str
    epochs: list[EpochStats] = field(default_factory=list)
    best_val_loss: float = math.inf
    best_val_accuracy: float = 0.0
    seconds: float = 0.0
    images: int = 0  # training images seen
    planned_images: int = 0  # what the schedule planned (epochs x training images)
    not_learning: int | None = None  # the epoch by which the loss had stayed at the chance level for two epochs
    chance_loss: float = math.nan  # the loss of predicting the class shares: what a network that learns nothing gets
    device: str = "cpu"  # where it trained, and in what precision (swarmcnn.hardware)
    precision: str = "fp32"
    peak_lr: float = 0.0  # the schedule's peak learning rate: the config's, or default_lr's for the network

    @property
    def ok(self) -> bool:
        return self.status != "diverged"

    @property
    def cut_by_time(self) -> bool:
        """Whether the time limit ended the schedule before its planned images."""
        return self.status == "completed" and self.images < self.planned_images


class TrainReporter:
    """Receives progress; the CLI's display subclasses it. Training itself never prints."""

    validates = False  # whether it shows a validation result every epoch (fit validates only when read)

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


def training_record(config: TrainConfig, result: TrainResult) -> dict:
    """What a saved model records of its training: the settings, and the device, precision and threads used."""
    used = {"device": result.device, "precision": result.precision, "threads": torch.get_num_threads()}
    return {**asdict(config), **used}


def build_seeded(spec, input_shape: tuple[int, ...], num_classes: int, seed: int) -> nn.Module:
    """Build with a fixed initialisation, leaving the global random state as it was."""
    from swarmcnn.model import create_model

    return create_model(spec, input_shape, num_classes, seed)


# A training loss within this share of the chance level for two epochs in a row once the warm-up is over: the
# network learns nothing. Real learning leaves it at once: on cifar10-dev the first epoch of a working net
# ends 10-20% below it; the stuck 3-D net of the README's example stayed within 0.1% of it.
NOT_LEARNING_SHARE = 0.98


def fit(
    model: nn.Module,
    data: Dataset,
    normalization: Normalization,
    config: TrainConfig | None = None,
    reporter: TrainReporter | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> TrainResult:
    """Train by backpropagation with a one-cycle schedule that ends with its images or its time limit.

    The model is validated when something reads the result: every epoch for early stopping or a reporter
    that shows it, else once at the end. With an empty validation split (a final training on train+val)
    nothing is validated.
    """
    config = config or TrainConfig()
    reporter = reporter or TrainReporter()
    hardware = resolve(config.device, config.precision)
    generator = torch.Generator().manual_seed(config.seed)
    train = _subset(data.train, config.train_fraction, generator)
    # the stored values (uint8 pictures are small) on the device, unless they would crowd out the training
    where = hardware.device if hardware.holds(train.x) else torch.device("cpu")
    x, y = train.x.to(where), train.y.to(where)
    hardware.place(model, x.dim())
    fit_whitening(model, normalization(x[:WHITENING_SAMPLES].to(hardware.device)))  # whiten<K> layers, once
    batch_size = config.batch_size or default_batch_size(len(y))
    schedule = Schedule(config.epochs * _trained_per_epoch(len(y), batch_size), config.max_seconds, clock)
    steps = Steps(model, config, schedule, hardware)
    result = TrainResult("completed", "", planned_images=schedule.images, peak_lr=steps.peak, **hardware.describe())
    result.chance_loss = chance_loss(y, len(data.class_names), config.label_smoothing)
    watch = _Watch(config, result)
    reporter.start(config.epochs, batches_per_epoch(len(y), batch_size))
    with torch.random.fork_rng(devices=[]):  # dropout draws from the global generator: seed it, then restore
        torch.manual_seed(config.seed)
        for epoch in range(1, config.epochs + 1):
            epoch_started = clock()
            # a batch's loss read for a display is a GPU sync: only for a reporter that shows them
            shows_batches = type(reporter).batch is not TrainReporter.batch
            on_batch = functools.partial(reporter.batch, epoch) if shows_batches else None
            loss_sum, correct, seen = _train_epoch(steps, x, y, normalization, config, batch_size, generator, on_batch)
            train_loss = loss_sum / max(seen, 1)
            if not math.isfinite(train_loss) or train_loss > 20 * math.log(len(data.class_names)):
                result.status, result.reason = "diverged", f"training loss {train_loss:.3g} at epoch {epoch}"
                break  # far worse than guessing: the weights blew up
            last = schedule.ended or epoch == config.epochs
            val = None
            if len(data.val) and (watch.validates_each or reporter.validates or last):
                val = evaluate(steps.trained, data.val, normalization, hardware=hardware)
                if not math.isfinite(val.loss):
                    result.status, result.reason = "diverged", f"validation loss {val.loss:.3g} at epoch {epoch}"
                    break
            stats = EpochStats(
                epoch, train_loss, correct / max(seen, 1), val.loss if val else math.nan,
                val.accuracy if val else math.nan, seen / max(clock() - epoch_started, 1e-9), steps.lr,
            )
            result.epochs.append(stats)
            reporter.epoch_end(stats)
            if watch.epoch_end(stats, schedule.progress() >= config.warmup, steps.trained, last) or schedule.ended:
                break
    reporter.stop()
    steps.finish()
    if watch.best_state is not None or steps.average is not None:  # the model ends with what was validated
        model.load_state_dict(watch.best_state or steps.trained.state_dict())
    if result.status != "diverged" and not finite_model(model, x[:batch_size], normalization, hardware):
        result.status, result.reason = "diverged", f"NaN or infinity in the network after epoch {epoch}"
    result.images, result.seconds = schedule.seen, clock() - schedule.started
    if result.status == "completed":
        result.reason = _completed_reason(result, config, len(result.epochs))
    return result


def finite_model(model: nn.Module, x: torch.Tensor, normalization: Normalization, hardware: Hardware) -> bool:
    """Whether the weights, and the scores of a batch of inputs, are numbers.

    A step at a huge rate can leave NaN or infinity behind a training loss that was still finite when measured
    (before the step); weights of 1e30 are finite, yet their products overflow.
    """
    if not all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point()):
        return False
    return bool(torch.isfinite(predict_logits(model, x, normalization, hardware=hardware)).all())


class _Watch:
    """What fit watches after each epoch: the chance level, early stopping and the best weights."""

    def __init__(self, config: TrainConfig, result: TrainResult) -> None:
        self.config, self.result = config, result
        self.validates_each = config.patience is not None
        self.best_state: dict | None = None
        self.since_best = self.at_chance = 0

    def epoch_end(self, stats: EpochStats, warmed_up: bool, trained: nn.Module, last: bool) -> bool:
        """Note an epoch; True when training must stop early."""
        result, patience = self.result, self.config.patience
        # a slow start during the warm-up is no failure
        at_chance = warmed_up and stats.train_loss >= NOT_LEARNING_SHARE * result.chance_loss
        self.at_chance = self.at_chance + 1 if at_chance else 0
        if self.at_chance == 2 and result.not_learning is None:
            result.not_learning = stats.epoch
        if math.isnan(stats.val_loss):
            return False
        if patience is None or stats.val_loss < result.best_val_loss:
            result.best_val_loss, result.best_val_accuracy = stats.val_loss, stats.val_accuracy
            if patience is not None:
                self.best_state = {k: v.detach().clone() for k, v in trained.state_dict().items()}
            self.since_best = 0
            return False
        self.since_best += 1
        if self.since_best >= patience and not last:
            result.status = "early-stopped"
            result.reason = f"no better validation loss for {self.since_best} epochs, stopped at epoch {stats.epoch}"
            return True
        return False


def _completed_reason(result: TrainResult, config: TrainConfig, epochs: int) -> str:
    if not result.cut_by_time:
        return f"trained {epochs} epochs"
    return (
        f"schedule completed in its time limit of {config.max_seconds:g}s after {result.images:,} of "
        f"{result.planned_images:,} images (epoch {epochs} of {config.epochs})"
    )


def chance_loss(y: torch.Tensor, classes: int, label_smoothing: float = 0.0) -> float:
    """The training loss of a network that learned nothing but the class shares (ln C for balanced classes)."""
    if len(y) == 0:
        return math.log(classes)
    shares = torch.bincount(y.cpu(), minlength=classes).double() / len(y)
    logits = shares.clamp(min=1e-12).log().expand(len(y), classes)
    return F.cross_entropy(logits, y.cpu(), label_smoothing=label_smoothing).item()


def _train_epoch(steps, x, y, normalization, config, batch_size, generator, on_batch):
    """One pass over the shuffled data, or until the schedule ends; returns the loss sum, correct count and
    images seen.

    The epoch's losses and guesses are kept as the tensors they are and summed once at its end: no extra kernel
    launch per batch (on a GPU small networks are launch-bound) and no sync.
    """
    steps.model.train()
    order = torch.randperm(len(y), generator=generator).to(x.device)
    losses, guesses, truths, sizes = [], [], [], []
    seen = 0
    for b, start in enumerate(range(0, len(y), batch_size)):
        index = order[start : start + batch_size]
        if len(index) < 2:  # batch norm cannot train on a single sample
            continue
        progress = steps.schedule.progress()  # a clock read (~0.1 µs) is nothing next to a batch (a millisecond)
        if progress >= 1:
            break
        batch = x[index]
        if config.augment or config.flip:  # on stored values, so a shift brings in black (0), not the mean
            batch = augment(batch, generator, shift=config.augment, flip=config.flip)
        targets = y[index].to(steps.hardware.device, non_blocking=True)
        logits, loss = steps.step(normalization(batch), targets, progress)
        losses.append(loss.detach())
        guesses.append(logits.detach().argmax(1))
        truths.append(targets)
        sizes.append(len(index))
        seen += len(index)
        steps.schedule.seen += len(index)
        if on_batch is not None and b % 10 == 0:
            on_batch(b, loss.item())
    if not losses:
        return 0.0, 0, 0
    loss_sum = (torch.stack(losses).float() * torch.tensor(sizes, device=losses[0].device)).sum().item()
    return loss_sum, (torch.cat(guesses) == torch.cat(truths)).sum().item(), seen


def augment(x: torch.Tensor, generator: torch.Generator, shift: bool = True, flip: bool = False) -> torch.Tensor:
    """Light augmentation of a stored batch (uint8 or float): per-sample random shifts, optional flips.

    Shifts pad with zeros, the black of stored pictures (in normalised units the border would be grey).

    One gather for the whole batch (as airbench's batch crops), no per-sample Python; video clips are
    shifted as a whole, every frame alike; signals (N, C, L) along time only, every channel alike.
    """
    if x.dim() == 3:
        return _shifted_in_time(x, generator) if shift else x
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


def _shifted_in_time(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each signal of a batch (N, C, L) shifted by up to L/8 instants, early or late. The instants that come in
    repeat the edge: a signal's 0 is no black, and zeros would add a step that no recording has."""
    n, length = x.shape[0], x.shape[-1]
    pad = max(1, length // 8)
    padded = F.pad(x.float(), (pad, pad), mode="replicate").to(x.dtype)
    offset = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator).to(x.device)
    index = (torch.arange(length, device=x.device) + offset)[:, None, :].expand(n, x.shape[1], length)
    return torch.gather(padded, 2, index)


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    split: Split,
    normalization: Normalization,
    batch_size: int = EVALUATION_BATCH,
    hardware: Hardware | None = None,
    flip: bool = False,
) -> Evaluation:
    """Accuracy, mean cross-entropy, per-class accuracy and confusion matrix on one split (flip: see
    `predict_logits`)."""
    logits = predict_logits(model, split.x, normalization, batch_size, hardware, flip)
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


def _subset(split: Split, fraction: float, generator: torch.Generator) -> Split:
    if fraction >= 1:
        return split
    keep = torch.randperm(len(split), generator=generator)[: max(2, round(fraction * len(split)))]
    return Split(split.x[keep], split.y[keep])


def batches_per_epoch(n: int, batch_size: int | None = None) -> int:
    """The optimiser steps an epoch of n training images takes (batch_size None: default_batch_size's)."""
    return max(1, math.ceil(n / (batch_size or default_batch_size(n))))


def _trained_per_epoch(n: int, batch_size: int) -> int:
    """Images an epoch trains on: a last batch of one sample is skipped (batch norm needs two)."""
    return n - (n % batch_size == 1)
