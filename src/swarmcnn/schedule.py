"""Where a training stands and the learning rate that goes with it: progress by images or by time, and the
shape of the rate over that progress."""

from __future__ import annotations

import math
from collections.abc import Callable


class Schedule:
    """Where a training stands: the larger of its share of the planned images seen and of its time used.

    The learning rate follows this progress, so a training whose time runs out ends with its rate annealed,
    exactly as one that saw all its images, whatever the machine's speed or load; a time limit never leaves a
    network mid-schedule with a high rate.
    """

    def __init__(self, images: int, max_seconds: float | None, clock: Callable[[], float]) -> None:
        self.images, self.max_seconds, self.clock = max(images, 1), max_seconds, clock
        self.started = clock()
        self.seen = 0

    def progress(self) -> float:
        done = self.seen / self.images
        if self.max_seconds is not None:
            used = (self.clock() - self.started) / self.max_seconds if self.max_seconds > 0 else 1.0
            done = max(done, used)
        return min(done, 1.0)

    @property
    def ended(self) -> bool:
        return self.progress() >= 1


WARMUP_START = 0.04  # the warm-up starts at 1/25 of the peak, as PyTorch's OneCycleLR


def one_cycle(progress: float, warmup: float) -> float:
    """The learning rate's share of its peak at a progress in [0, 1]: a linear warm-up, then a cosine to zero.

    Smith & Topin's one-cycle policy ("Super-convergence", 2018), with a cosine annealing as in OneCycleLR.
    """
    if progress >= 1:
        return 0.0
    if progress < warmup:
        return WARMUP_START + (1 - WARMUP_START) * progress / warmup
    return 0.5 * (1 + math.cos(math.pi * (progress - warmup) / (1 - warmup)))


def linear(progress: float, warmup: float) -> float:
    """A triangle: the same warm-up, then a straight line to zero. Under a fixed budget a linear decay to zero
    beats the step and cosine schedules (Li, Yumer & Ramanan, "Budgeted training", ICLR 2020); airbench's
    schedule is a triangle too."""
    if progress >= 1:
        return 0.0
    if progress < warmup:
        return WARMUP_START + (1 - WARMUP_START) * progress / warmup
    return (1 - progress) / (1 - warmup)


SCHEDULES: dict[str, Callable[[float, float], float]] = {"one-cycle": one_cycle, "linear": linear}
