"""One optimizer step of a training, and what goes with it: the optimizer, its peak rate, the rate's schedule
and an average of the weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from swarmcnn.hardware import Hardware
from swarmcnn.recipe import TrainConfig
from swarmcnn.schedule import SCHEDULES, Schedule


def default_lr(model: nn.Module, optimizer: str = "adamw") -> float:
    """The peak learning rate for a network: higher where batch norm keeps the activations in range.

    Without batch norm a stack of ReLUs trained by Adam at a high rate from the first step can leave every unit
    dead and the loss at the chance level for good (the README's 3-D example on MP4 clips at 5e-3 without
    warm-up); the warm-up of the one-cycle schedule prevents most of it, and half the rate the rest. With batch
    norm, 4e-3 beat PyTorch's one-cycle recipe on mnist-5k and cifar10-dev (benchmarks/train_recipe.py).
    """
    normalised = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if optimizer == "sgd":
        return 5e-2 if normalised else 2e-2
    return 4e-3 if normalised else 2e-3


class Steps:
    """Optimizer steps at the schedule's learning rate, with an average of the weights where config asks for one.

    Two averages: `ema`, PyTorch's `torch.optim.swa_utils.AveragedModel` with an exponential moving average whose
    decay warms up (`WarmingEMA`), batch norm statistics included, after which the trained network is the average;
    and `lookahead` (`Lookahead`), an average that is copied back into the network as it trains.
    """

    def __init__(self, model: nn.Module, config: TrainConfig, schedule: Schedule, hardware: Hardware) -> None:
        self.model, self.config, self.schedule, self.hardware = model, config, schedule, hardware
        self.peak = config.lr or default_lr(model, config.optimizer)
        self.optimizer = _optimizer(model, config, self.peak)
        self.rate = SCHEDULES[config.schedule]
        self.average = None
        if config.ema is not None:
            from torch.optim.swa_utils import AveragedModel

            self.ema = WarmingEMA(config.ema)
            self.average = AveragedModel(model, multi_avg_fn=self.ema, use_buffers=True)
        self.lookahead = Lookahead(model) if config.lookahead else None

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    @property
    def trained(self) -> nn.Module:
        """The network as trained so far: the model, or its average."""
        return self.model if self.average is None else self.average.module

    def step(self, inputs: torch.Tensor, targets: torch.Tensor, progress: float) -> tuple[torch.Tensor, torch.Tensor]:
        for group in self.optimizer.param_groups:
            group["lr"] = self.peak * self.rate(progress, self.config.warmup)
        with self.hardware.autocast():
            logits = self.model(self.hardware.inputs(inputs))
            loss = F.cross_entropy(logits, targets, label_smoothing=self.config.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.average is not None:
            self.ema.updates += 1
            self.average.update_parameters(self.model)
        if self.lookahead is not None:
            self.lookahead.step(progress)
        return logits, loss

    def finish(self) -> None:
        """The end of training: the lookahead's average becomes the network."""
        if self.lookahead is not None:
            self.lookahead.copy_back()


class WarmingEMA:
    """The exponential average's update (AveragedModel's multi_avg_fn), with a decay that warms up with the steps:
    min(decay, (1 + n) / (10 + n)) at update n, as TensorFlow's ExponentialMovingAverage with num_updates and
    timm's ModelEma warm-up.

    At a fixed decay the average remembers the random initial weights with decay**n: after the 560 steps of `fcn`
    trained 30 s on OSULeaf at 0.999, more than half of it, and the "averaged" network tested at 20% against 97%
    for the network itself (measured 2026-12-03). A training's steps follow its time, so no fixed decay fits all.
    """

    def __init__(self, decay: float) -> None:
        self.decay, self.updates = decay, 0  # `Steps` counts the updates: no read of the device's counter

    @property
    def rate(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def __call__(self, averaged: list[torch.Tensor], current: list[torch.Tensor], _count: torch.Tensor) -> None:
        weight = 1 - self.rate
        for mean, now in zip(averaged, current, strict=True):
            if mean.is_floating_point():
                mean.lerp_(now, weight)
            else:  # batch norm's count of batches: the network's own
                mean.copy_(now)


class Lookahead:
    """An exponential average of the weights, copied back into the network every EVERY steps once a START share
    of the schedule is done, with a decay that grows as the cube of the progress: the network moves fast early
    and is averaged strongly at the end (airbench's lookahead, after Zhang et al., "Lookahead optimizer",
    NeurIPS 2019). Batch norm statistics are averaged alike."""

    EVERY = 5
    START = 0.3
    DECAY = 0.95**EVERY  # per EVERY steps, at the end of the schedule

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.average: dict[str, torch.Tensor] | None = None
        self.steps = 0

    @torch.no_grad()
    def step(self, progress: float) -> None:
        self.steps += 1
        if progress < self.START or self.steps % self.EVERY:
            return
        state = self._floats()
        if self.average is None:
            self.average = {name: value.clone() for name, value in state.items()}
            return
        decay = self.DECAY * progress**3
        for name, value in state.items():
            self.average[name].lerp_(value, 1 - decay)
            value.copy_(self.average[name])

    @torch.no_grad()
    def copy_back(self) -> None:
        if self.average is not None:
            for name, value in self._floats().items():
                value.copy_(self.average[name])

    def _floats(self) -> dict[str, torch.Tensor]:
        return {name: value for name, value in self.model.state_dict().items() if value.is_floating_point()}


def _optimizer(model: nn.Module, config: TrainConfig, lr: float) -> torch.optim.Optimizer:
    """AdamW, or SGD with Nesterov momentum, in PyTorch's fused form: one kernel for the whole update
    instead of a few per parameter tensor (benchmarks/train_throughput.py: what lets fit beat a plain loop
    with the default optimizer, most on a GPU, where small networks wait on kernel launches)."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay / 10,
            nesterov=True,
            fused=True,
        )
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=config.weight_decay, fused=True)
