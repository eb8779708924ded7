"""The training pace of a network on this machine now: a few batches of it timed on the real data.

Every time rule of a budgeted search is a product of images and seconds per image. Seconds per image are
measured, never assumed: on the networks that matter (the designs, a typical candidate, the best so far),
just before the decision that uses them, so that a machine that other work has slowed down since the start
is seen as it is now.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from swarmcnn.data import Dataset
from swarmcnn.hardware import resolve
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization, Schedule, Steps, TrainConfig, augment, build_seeded, default_batch_size

MIN_SECONDS = 0.2  # timed at least this long (a tiny network's batch takes a millisecond: timer noise)
MIN_BATCHES = 2
MAX_BATCHES = 8


def seconds_per_image(
    spec: Spec,
    data: Dataset,
    normalization: Normalization,
    config: TrainConfig,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Seconds per training image of spec on data: one warm-up batch, then the median of a few timed ones.

    Each batch does what `fit`'s does (a gather, augmentation as config says, normalisation from the stored
    values, and fit's own step: device, precision, layout, loss with label smoothing); the median, so that a
    burst of other work during one batch does not decide the pace. The weights are thrown away and the global
    random state is left alone.
    """
    generator = torch.Generator().manual_seed(0)
    hardware = resolve(config.device, config.precision)
    with torch.random.fork_rng(devices=[]):
        model = build_seeded(spec, data.input_shape, len(data.class_names), seed=0)
        hardware.place(model, data.train.x.dim())
        # the batch of the final training (train+val) unless told: its pace is what a budget plans with
        count = min(config.batch_size or default_batch_size(len(data.train) + len(data.val)), len(data.train))
        steps = Steps(model, config, Schedule(count, None, clock), hardware)
        model.train()
        times: list[float] = []
        started = clock()
        while len(times) < MAX_BATCHES + 1 and (len(times) < MIN_BATCHES + 1 or clock() - started < MIN_SECONDS):
            before = clock()
            index = torch.randperm(len(data.train), generator=generator)[:count]
            batch = data.train.x[index].to(hardware.device)
            if config.augment or config.flip:
                batch = augment(batch, generator, shift=config.augment, flip=config.flip)
            steps.step(normalization(batch), data.train.y[index].to(hardware.device), progress=config.warmup)
            hardware.synchronize()
            times.append(clock() - before)
    timed = sorted(times[1:])  # the first batch allocates and warms the caches
    return max(timed[len(timed) // 2], 1e-9) / count
