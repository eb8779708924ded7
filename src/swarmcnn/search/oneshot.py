"""Training the supernet, and scoring its children without training them: the one-shot fitness.

The supernet (supernet.py) is trained by single-path steps: each batch trains one child drawn by `draw` (the
search draws from its space and its designs, uniformly: Guo et al.'s uniform sampling), with the same schedule,
augmentation and loss as `fit`, so that the shared weights learn what every child's own training would teach it.
A child is then scored in a fraction of a second: its batch norm statistics recalibrated on a few training
batches, its accuracy measured on the validation split.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from swarmcnn.data import Dataset, Split
from swarmcnn.errors import SwarmCNNError
from swarmcnn.hardware import resolve
from swarmcnn.inference import Normalization
from swarmcnn.schedule import SCHEDULES, Schedule
from swarmcnn.search.budget import TIMED_EPOCHS
from swarmcnn.search.evaluate import EvaluationConfig, failure
from swarmcnn.search.journal import EvaluationRecord
from swarmcnn.search.space import SearchSpace
from swarmcnn.search.supernet import Bounds, Supernet
from swarmcnn.spec import Spec
from swarmcnn.train import TrainConfig, augment, default_batch_size
from swarmcnn.whitening import SAMPLES as WHITENING_SAMPLES

RECALIBRATION_BATCHES = 4  # BigNAS recalibrates on a few thousand images; four batches settle the statistics
SCORED = 2000  # validation images a child is scored on at most (a fixed subset: the same for every child)


@dataclass
class SupernetTraining:
    steps: int
    images: int
    seconds: float
    children: int  # distinct children trained


def train_supernet(
    supernet: Supernet,
    data: Dataset,
    normalization: Normalization,
    draw: Callable[[torch.Generator], Spec],
    config: TrainConfig,
    clock: Callable[[], float] = time.perf_counter,
) -> SupernetTraining:
    """Train the shared weights for config's images or time (`max_seconds`), one child drawn per batch."""
    hardware = resolve(config.device, config.precision)
    generator = torch.Generator().manual_seed(config.seed)
    x, y = data.train.x, data.train.y
    batch_size = config.batch_size or default_batch_size(len(y))
    schedule = Schedule(config.epochs * len(y), config.max_seconds, clock)
    peak = config.lr or (5e-2 if config.optimizer == "sgd" else 4e-3)
    optimizer = _optimizer(config, peak)
    rate = SCHEDULES[config.schedule]
    supernet.train()
    seen: set[str] = set()
    steps = 0
    stem_inputs = normalization(x[:WHITENING_SAMPLES])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        while not schedule.ended:
            index = torch.randint(0, len(y), (batch_size,), generator=generator)
            batch = x[index]
            if config.augment or config.flip:
                batch = augment(batch, generator, shift=config.augment, flip=config.flip)
            inputs = normalization(batch)
            spec = draw(generator)
            seen.add(str(spec))
            supernet.fit_whitening(stem_inputs, spec)
            supernet(inputs[:2], spec)  # makes the banks this child needs before the optimizer steps
            _add_new(optimizer, supernet)
            for group in optimizer.param_groups:
                group["lr"] = peak * rate(schedule.progress(), config.warmup)
            with hardware.autocast():
                loss = F.cross_entropy(supernet(inputs, spec), y[index], label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
            schedule.seen += batch_size
            if not math.isfinite(loss.item()):
                break
    return SupernetTraining(steps, schedule.seen, clock() - schedule.started, len(seen))


@torch.no_grad()
def score_child(
    supernet: Supernet, spec: Spec, data: Dataset, normalization: Normalization, seed: int = 0
) -> float:
    """The validation accuracy of spec with the inherited weights, after recalibrating its batch norm."""
    generator = torch.Generator().manual_seed(seed)
    batch = default_batch_size(len(data.train))
    batches = [
        normalization(data.train.x[torch.randint(0, len(data.train), (batch,), generator=generator)])
        for _ in range(RECALIBRATION_BATCHES)
    ]
    supernet.fit_whitening(normalization(data.train.x[:WHITENING_SAMPLES]), spec)
    supernet.recalibrate(spec, batches)
    supernet.eval()
    val = _scored(data.val)
    correct = 0
    for start in range(0, len(val), 500):
        logits = supernet(normalization(val.x[start : start + 500]), spec)
        correct += (logits.argmax(1) == val.y[start : start + 500]).sum().item()
    return correct / max(len(val), 1)


def _scored(split: Split) -> Split:
    return Split(split.x[:SCORED], split.y[:SCORED])


def _optimizer(config: TrainConfig, peak: float) -> torch.optim.Optimizer:
    """An optimizer that starts empty: the banks join it as the children that need them appear."""
    placeholder = [torch.nn.Parameter(torch.zeros(1))]
    if config.optimizer == "sgd":
        return torch.optim.SGD(placeholder, lr=peak, momentum=config.momentum, nesterov=True,
                               weight_decay=config.weight_decay / 10)
    return torch.optim.AdamW(placeholder, lr=peak, weight_decay=config.weight_decay)


def _add_new(optimizer: torch.optim.Optimizer, supernet: Supernet) -> None:
    new = supernet.take_new_banks()
    if new:
        optimizer.add_param_group({"params": new})


SUPERNET_FILE = "supernet.safetensors"


class OneShotFitness:
    """The supernet of one search: trained once (and saved in the run folder, so that a resume scores with the same
    weights), then a score for each proposal, as a journal record of rung 0.

    Children are drawn for its training uniformly from the search's space (within `admissible`: the candidates the
    search would not refuse), so that every region the swarm may visit shares in the training."""

    def __init__(self, run_dir: Path, data: Dataset, normalization: Normalization, space: SearchSpace,
                 config: EvaluationConfig, admissible: Callable[[Spec], bool], seed: int) -> None:
        self.path, self.data, self.normalization = Path(run_dir) / SUPERNET_FILE, data, normalization
        self.space, self.config, self.admissible, self.seed = space, config, admissible, seed
        bounds = Bounds(space.features[1], max(space.feature_sizes), space.neurons[1])
        self.supernet = Supernet(data.input_shape, len(data.class_names), bounds, seed=seed)

    def ready(self, seconds: float, train: TrainConfig, clock: Callable[[], float]) -> dict | None:
        """Load the saved supernet, or train it for `seconds` and save it; returns what its training did (None
        when loaded)."""
        if self.path.is_file():
            self.supernet.load(self.path)
            return None
        rng = np.random.default_rng(self.seed)

        def draw(generator: torch.Generator) -> Spec:
            for _ in range(100):
                spec = self.space.sample(rng, self.data.input_shape)
                if self.admissible(spec):
                    return spec
            return spec  # a space whose draws are all refused: train on them regardless

        config = replace(train, epochs=TIMED_EPOCHS, max_seconds=max(seconds, 0.0))
        done = train_supernet(self.supernet, self.data, self.normalization, draw, config, clock)
        self.supernet.save(self.path)
        return {"steps": done.steps, "images": done.images, "seconds": done.seconds, "children": done.children}

    def score(self, spec: Spec) -> EvaluationRecord:
        """The record of spec scored by the supernet (a failure record where it cannot be a child)."""
        started = time.perf_counter()
        classes = len(self.data.class_names)
        params, flops = spec.num_params(self.data.input_shape, classes), spec.flops(self.data.input_shape, classes)
        try:
            accuracy = score_child(self.supernet, spec, self.data, self.normalization, self.seed)
        except SwarmCNNError as error:
            return failure(spec, "failed", str(error), time.perf_counter() - started, params=params, flops=flops)
        return EvaluationRecord(
            str(spec), "ok", "scored by the supernet after batch norm recalibration",
            self.config.score(accuracy, params), accuracy, None, params, flops, 0, time.perf_counter() - started,
        )
