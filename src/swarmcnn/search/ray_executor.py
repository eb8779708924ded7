"""Candidates on a Ray cluster: each one a Ray task with the resources asked for, the data set in Ray's object
store once.

The search itself stays on the driver: it decides, journals and resumes exactly as with the local executors
(the SQLite journal is the one record of the run), so a run started on Ray can be resumed locally and the
other way round. A task whose worker process dies (a node lost, the memory exhausted) is retried by Ray up to
`max_retries` times; one that still fails comes back as a failed candidate, so every candidate is journaled
exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator

from swarmcnn.data import Dataset
from swarmcnn.errors import SwarmCNNError
from swarmcnn.search.evaluate import EvaluationConfig, evaluate_candidate, failure
from swarmcnn.search.executors import ExecutorFactory, Job
from swarmcnn.search.journal import EvaluationRecord
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization

INSTALL_HINT = "pip install 'swarmcnn[ray]'"


def require_ray():
    try:
        import ray
    except ImportError as error:
        raise SwarmCNNError(f"--executor ray needs Ray: {INSTALL_HINT}") from error
    return ray


def ray_executors(address: str | None = None, cpus: float = 1, gpus: float = 0) -> ExecutorFactory:
    """Join the cluster now, before the search writes anything (a wrong --address leaves no run folder behind),
    and make executors on it; the connection lasts as long as this process."""
    ray = require_ray()
    if not ray.is_initialized():
        _join(ray, address)
    return lambda data, normalization: RayExecutor(data, normalization, address, cpus, gpus)


class RayExecutor:
    """Candidates as Ray tasks of `cpus` CPUs and `gpus` GPUs each (a fraction packs several on one GPU)."""

    def __init__(
        self,
        data: Dataset,
        normalization: Normalization,
        address: str | None = None,
        cpus: float = 1,
        gpus: float = 0,
        max_retries: int = 2,
    ) -> None:
        ray = require_ray()
        self.ray = ray
        self.started_ray = not ray.is_initialized()
        if self.started_ray:  # an existing cluster at `address`, or a local one of this machine's cores
            _join(ray, address)
        self.data = ray.put((data, normalization))  # once: every task reads the same object
        self.threads = max(1, int(cpus))
        self.task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=max_retries)(_evaluate_task)
        self.pending: dict = {}

    def map(self, jobs: list[Job]) -> Iterator[tuple[int, EvaluationRecord]]:
        ray = self.ray
        self.pending = {
            self.task.remote(self.data, str(spec), config, self.threads): i for i, (spec, config) in enumerate(jobs)
        }
        while self.pending:
            (ready,), _ = ray.wait(list(self.pending), num_returns=1)
            index = self.pending.pop(ready)
            try:
                record = ray.get(ready)
            except ray.exceptions.TaskCancelledError:
                continue
            except ray.exceptions.RayError as error:  # its retries spent: a failed candidate, journaled once
                reason = f"its Ray task failed: {_first_line(error)}"
                record = failure(jobs[index][0], "failed", reason, worker="ray")
            yield index, record

    def cancel_pending(self) -> None:
        """Start no further candidate: the tasks not finished are cancelled (Ray interrupts a running one)."""
        for ref in list(self.pending):
            self.ray.cancel(ref)

    def close(self) -> None:
        """Cancel what is still pending (a search interrupted mid-generation leaves no task training for nobody),
        and end the Ray instance if this executor started it."""
        self.cancel_pending()
        if self.started_ray:
            self.ray.shutdown()


def _join(ray, address: str | None) -> None:
    """Join the cluster at `address` (None: start one here); an address that leads nowhere is the user's to fix."""
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"the Ray cluster at --address {address}" if address else "a local Ray instance"
        raise SwarmCNNError(f"could not join {where}: {_first_line(error)}") from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def _evaluate_task(
    shared: tuple[Dataset, Normalization], spec_text: str, config: EvaluationConfig, threads: int
) -> EvaluationRecord:
    import os

    import torch

    torch.set_num_threads(threads)
    data, normalization = shared
    return evaluate_candidate(Spec.parse(spec_text), data, normalization, config, f"ray-pid{os.getpid()}")
