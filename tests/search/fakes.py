"""Fake executors and reporters that tests pass to `Search`, instead of patching the search's internals."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

from swarmcnn.data import Dataset
from swarmcnn.search.budget import TIMED_EPOCHS
from swarmcnn.search.evaluate import failure
from swarmcnn.search.executors import InProcess, Job
from swarmcnn.search.journal import EvaluationRecord
from swarmcnn.search.loop import SearchReporter
from swarmcnn.train import Normalization


class Recording:
    """An executor factory: candidates train here as with `InProcess`; every spec trained is noted in order, and
    the specs of each `map` call (what a parallel executor would train side by side) in `batches`.

    interrupt_after: the k+1-th training raises KeyboardInterrupt, as Ctrl-C would during it.
    fail: specs for which it returns a failed record (with `reason`) instead of training them.
    """

    def __init__(
        self,
        interrupt_after: int | None = None,
        fail: Callable[[str], bool] = lambda spec: False,
        reason: str = "boom",
    ) -> None:
        self.trained: list[str] = []
        self.batches: list[list[str]] = []
        self.interrupt_after, self.fail, self.reason = interrupt_after, fail, reason

    def __call__(self, data: Dataset, normalization: Normalization) -> _RecordingExecutor:
        return _RecordingExecutor(self, InProcess(data, normalization))


class _RecordingExecutor:
    def __init__(self, owner: Recording, inner: InProcess) -> None:
        self.owner, self.inner = owner, inner
        self.cancelled = False

    def map(self, jobs: list[Job]) -> Iterator[tuple[int, EvaluationRecord]]:
        owner, self.cancelled = self.owner, False
        owner.batches.append([str(spec) for spec, _ in jobs])
        for i, (spec, config) in enumerate(jobs):
            if self.cancelled:
                return
            if owner.interrupt_after is not None and len(owner.trained) >= owner.interrupt_after:
                raise KeyboardInterrupt
            owner.trained.append(str(spec))
            if owner.fail(str(spec)):
                yield i, failure(spec, "failed", owner.reason)
            else:
                yield i, next(self.inner.map([(spec, config)]))[1]

    def cancel_pending(self) -> None:
        self.cancelled = True

    def close(self) -> None:
        self.inner.close()


class Refusing:
    """An executor factory whose executor fails the test at any training: for searches that must train nothing."""

    def __init__(self, fail: Callable[[str], None]) -> None:
        self.fail_test = fail

    def __call__(self, data: Dataset, normalization: Normalization) -> Refusing:
        return self

    def map(self, jobs: list[Job]) -> Iterator[tuple[int, EvaluationRecord]]:
        if jobs:
            self.fail_test(f"trained again: {[str(spec) for spec, _ in jobs]}")
        return iter(())

    def cancel_pending(self) -> None:
        pass

    def close(self) -> None:
        pass


class StopBeforeFinal(SearchReporter):
    """Raises KeyboardInterrupt as the final training starts: a run stopped after its search and promotions."""

    def final_training(self, spec: str, epochs: int, seconds: float | None, members: int = 1):
        raise KeyboardInterrupt


class Scripted:
    """An executor factory whose executor trains nothing: each job's validation accuracy is `accuracy(spec, rung)`
    (the rung read from the job's time limit, for a rung driven by its time, or its images, as a multiple of the
    first job's, counted from `first_rung`), as if it had trained for `seconds`. Everything else in the search
    (its rules, its journal, the supernet, the final training) runs for real."""

    def __init__(self, accuracy: Callable[[str, int], float], seconds: float = 0.05, first_rung: int = 0) -> None:
        self.accuracy, self.seconds, self.first_rung = accuracy, seconds, first_rung
        self.trained: list[tuple[str, int]] = []
        self.rung0_images: int | None = None
        self.rung0_seconds: float | None = None
        self.data: Dataset | None = None

    def __call__(self, data: Dataset, normalization: Normalization) -> Scripted:
        self.data = data
        return self

    def map(self, jobs: list[Job]) -> Iterator[tuple[int, EvaluationRecord]]:
        for i, (spec, config) in enumerate(jobs):
            images = round(config.epochs * config.train_fraction * len(self.data.train))
            if config.epochs >= TIMED_EPOCHS:  # driven by its time
                self.rung0_seconds = self.rung0_seconds or config.max_seconds
                rung = self.first_rung + round(math.log(config.max_seconds / self.rung0_seconds, 3))
                images = round(config.max_seconds * 1000)  # as if at a thousand images a second
            else:
                self.rung0_images = self.rung0_images or images
                rung = self.first_rung + round(math.log(images / self.rung0_images, 3))
            self.trained.append((str(spec), rung))
            accuracy = self.accuracy(str(spec), rung)
            flops = spec.flops(self.data.input_shape, len(self.data.class_names))  # its rate per FLOP predicts others
            record = EvaluationRecord(
                str(spec), "ok", "", accuracy, accuracy, 1 - accuracy, 1000, flops, config.epochs, self.seconds,
                images=images, planned_images=images,
            )
            yield i, record

    def cancel_pending(self) -> None:
        pass

    def close(self) -> None:
        pass
