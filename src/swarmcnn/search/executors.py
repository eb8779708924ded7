"""Where candidates train: in this process, or in N local worker processes that each hold the data.

A job is a spec and the training it gets (its rung's `EvaluationConfig`). In this process PyTorch gets the
cores other processes leave free, re-measured after every candidate (`ThreadGovernor`); workers split the
machine's cores between them (threads per worker = cores // workers), so that N trainings side by side do
not oversubscribe the CPU.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from swarmcnn.cores import ThreadGovernor, available_cores
from swarmcnn.data import Dataset
from swarmcnn.search.evaluate import EvaluationConfig, evaluate_candidate, failure
from swarmcnn.search.journal import EvaluationRecord
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization

Job = tuple[Spec, EvaluationConfig]


class Executor(Protocol):
    """Where candidates train. The search gives it jobs and journals what comes back; nothing else crosses.

    map: evaluate jobs, yielding (index into jobs, record) as each finishes, in any order, each index once
    (a candidate whose worker dies comes back as a failed record, never missing). cancel_pending: start no
    further job of the current map (those training may still finish and be yielded). close: free the workers.
    """

    def map(self, jobs: list[Job]) -> Iterator[tuple[int, EvaluationRecord]]: ...

    def cancel_pending(self) -> None: ...

    def close(self) -> None: ...


# An executor for a search: made from its data and normalisation once the search has them (the process pool
# and Ray send the data to their workers once, at the start)
ExecutorFactory = Callable[[Dataset, Normalization], Executor]
PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_CHECK_SECONDS = 0.5


class InProcess:
    """One candidate after another, here; the simplest and fully repeatable executor."""

    def __init__(self, data: Dataset, normalization: Normalization, governor: ThreadGovernor | None = None) -> None:
        self.data, self.normalization, self.governor = data, normalization, governor
        self.cancelled = False

    def map(self, jobs: list[Job]) -> Iterator[tuple[int, EvaluationRecord]]:
        """Evaluate each job; yields (index into jobs, record) as they finish."""
        self.cancelled = False
        for i, (spec, config) in enumerate(jobs):
            if self.cancelled:
                return
            record = evaluate_candidate(spec, self.data, self.normalization, config)
            if self.governor is not None:
                self.governor.update()  # the load over this training decides the threads of the next
            yield i, record

    def cancel_pending(self) -> None:
        """Start no further candidate of the current map (the budget is spent)."""
        self.cancelled = True

    def close(self) -> None:
        pass


class WorkerProcesses:
    """N processes that receive the data set itself once, as they start; results come back as they finish.

    The tensors travel through PyTorch's shared-memory pickling (torch.multiprocessing), not as a path to load
    again: a worker trains on exactly the data the search fingerprinted, even if the files change meanwhile.
    """

    def __init__(self, workers: int, data: Dataset, normalization: Normalization) -> None:
        self.workers = workers
        self.initargs = (data, normalization, max(1, available_cores() // workers), os.getpid())
        self.pool = self._start_pool()
        self.futures: dict = {}  # of the current map, to cancel those not started yet

    def _start_pool(self) -> ProcessPoolExecutor:
        import multiprocessing

        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),  # fork after torch has started threads can hang
            initializer=_start_worker,
            initargs=self.initargs,
        )

    def map(self, jobs: list[Job]) -> Iterator[tuple[int, EvaluationRecord]]:
        """As they finish; a candidate whose process dies (killed for memory, say) is recorded as failed.

        A dead process breaks the whole pool, so the candidates it took down are retried one at a time in a
        fresh pool: only the one that kills its process again is given up on.
        """
        self.cancelled = False
        broken = yield from self._run(list(range(len(jobs))), jobs)
        for i in broken:
            if self.cancelled:
                return
            if (yield from self._run([i], jobs)):  # alone, and it broke its process again
                yield i, failure(jobs[i][0], "failed", "its worker process died (out of memory?)", worker="pool")

    def _run(self, indices: list[int], jobs: list[Job]):
        """Yield (index, record) as they finish; return the indices lost to a broken pool (after restarting it)."""
        self.futures = futures = {
            self.pool.submit(_evaluate_in_worker, str(jobs[i][0]), jobs[i][1]): i for i in indices
        }
        pending, broken = set(futures), []
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                if future.cancelled():
                    continue
                try:
                    yield futures[future], future.result()
                except BrokenProcessPool:
                    broken.append(futures[future])
        if broken:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._start_pool()
        return sorted(broken)

    def cancel_pending(self) -> None:
        """Start no further candidate of the current map; those already training still finish and are yielded,
        since their time is spent either way."""
        self.cancelled = True
        for future in self.futures:
            future.cancel()  # only a future that has not started can be cancelled

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


_worker: dict = {}  # per worker process: the data and its normalisation


def _start_worker(data: Dataset, normalization: Normalization, threads: int, parent: int) -> None:
    import torch

    _die_with(parent)
    torch.set_num_threads(threads)
    _worker.update(data=data, normalization=normalization, name=f"pid{os.getpid()}")


def _die_with(parent: int) -> None:
    """End this worker when the search process ends, however it ends: killed with -9, the pool cannot stop its
    workers, which would train on for nobody (and keep the resource tracker alive)."""
    if sys.platform == "linux":  # the kernel sends SIGKILL the moment the parent dies
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="parent-watch").start()


def _watch_parent(parent: int) -> None:
    """Elsewhere (and should the signal be missed) a worker finds out within a second: its parent changes."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)


def _evaluate_in_worker(spec_text: str, config: EvaluationConfig) -> EvaluationRecord:
    worker = _worker
    return evaluate_candidate(Spec.parse(spec_text), worker["data"], worker["normalization"], config, worker["name"])


def local_executor(config, data: Dataset, normalization: Normalization, threads: int | None, journal) -> Executor:
    """Candidates here, or in `config.workers` worker processes. Here, a budgeted search gives PyTorch the cores
    other processes leave free, re-measured after each candidate; a search by count keeps its threads fixed
    (PyTorch's, or `threads`, journaled so that a resume keeps them), so that a seed repeats it to the last digit:
    results differ in the last bits between thread counts."""
    if config.workers > 1:
        return WorkerProcesses(config.workers, data, normalization)
    if threads is None and config.budget_seconds is not None:
        return InProcess(data, normalization, ThreadGovernor())
    import torch

    journaled = journal.get("threads")
    journaled = journaled if isinstance(journaled, int) and journaled >= 1 else None
    threads = threads or journaled or max(1, min(torch.get_num_threads(), available_cores()))
    journal.put("threads", threads)
    torch.set_num_threads(threads)
    return InProcess(data, normalization)
