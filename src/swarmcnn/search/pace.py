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
import torch.nn.functional as F

from swarmcnn.data import Dataset
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization, TrainConfig, augment, build_seeded, default_batch_size, default_lr

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
    values, the loss with label smoothing, a step); the median, so that a burst of other work during one batch
    does not decide the pace. The weights are thrown away and the global random state is left alone.
    """
    generator = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        model = build_seeded(spec, data.input_shape, len(data.class_names), seed=0)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr or default_lr(model, config.optimizer))
        # the batch of the final training (train+val) unless told: its pace is what a budget plans with
        count = min(config.batch_size or default_batch_size(len(data.train) + len(data.val)), len(data.train))
        model.train()
        times: list[float] = []
        started = clock()
        while len(times) < MAX_BATCHES + 1 and (len(times) < MIN_BATCHES + 1 or clock() - started < MIN_SECONDS):
            before = clock()
            index = torch.randperm(len(data.train), generator=generator)[:count]
            batch = data.train.x[index]
            if config.augment or config.flip:
                batch = augment(batch, generator, shift=config.augment, flip=config.flip)
            loss = F.cross_entropy(
                model(normalization(batch)), data.train.y[index], label_smoothing=config.label_smoothing
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            times.append(clock() - before)
    timed = sorted(times[1:])  # the first batch allocates and warms the caches
    return max(timed[len(timed) // 2], 1e-9) / count
