"""Candidates on a Ray cluster: each one a Ray task with the resources asked for, the data set in Ray's object
store once.

The search itself stays on the driver: it decides, journals and resumes exactly as with the local executors
(the SQLite journal is the one record of the run), so a run started on Ray can be resumed locally and the
other way round. A task whose worker process dies (a node lost, the memory exhausted) is retried by Ray up to
`max_retries` times; one that still fails comes back as a failed candidate, so every candidate is journaled
exactly once.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

from swarmcnn.data import Dataset
from swarmcnn.errors import SwarmCNNError
from swarmcnn.search.evaluate import EvaluationConfig, evaluate_candidate, failure
from swarmcnn.search.executors import ExecutorFactory, Job
from swarmcnn.search.journal import EvaluationRecord
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization

INSTALL_HINT = "pip install 'swarmcnn[ray]'"
# How long an --address may take to answer at all: Ray itself retries a cluster that is not there for minutes
# (20 tries of 35 s each), so an address where nothing listens is found out here first
JOIN_TIMEOUT = 10.0
DEFAULT_PORTS = {"": 6379, "ray": 10001}  # a cluster's GCS port, and Ray Client's (ray://)


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
    joined = not ray.is_initialized()
    if joined:
        check_reachable(address)
        _join(ray, address)
    try:
        check_trial_resources(cpus, gpus, ray.cluster_resources(), address)
    except SwarmCNNError:
        if joined:
            ray.shutdown()  # a local instance started here ends with the refusal
        raise
    return lambda data, normalization: RayExecutor(data, normalization, address, cpus, gpus)


def check_reachable(address: str | None, timeout: float = JOIN_TIMEOUT, connect: Callable = socket.create_connection):
    """Refuse, within timeout, an --address where nothing answers (an unknown host, a closed port, no reply);
    None, 'auto' and 'local' name no address to try. connect: socket.create_connection (a seam for tests)."""
    found = _host_and_port(address)
    if found is None:
        return
    host, port = found
    where = f"the Ray cluster at --address {address}"
    try:
        connect((host, port), timeout=timeout).close()
    except socket.gaierror:
        raise SwarmCNNError(f"could not join {where}: no host '{host}' is known") from None
    except TimeoutError:  # socket.timeout
        raise SwarmCNNError(f"could not join {where}: nothing answered at {host}:{port} in {timeout:g} s") from None
    except OSError as error:
        raise SwarmCNNError(f"could not join {where}: {host}:{port}: {error.strerror or error}") from None


def _host_and_port(address: str | None) -> tuple[str, int] | None:
    """(host, port) of 'host:port', 'ray://host:port' or '[::1]:port' (a default port where none is given)."""
    if address is None or address.strip().lower() in ("auto", "local", ""):
        return None
    scheme, _, rest = address.strip().rpartition("://")
    host, colon, port = rest.rpartition(":")
    if not colon or "]" in port:  # no port given ('head', '[::1]'), or an IPv6 address without one
        host, port = rest, str(DEFAULT_PORTS.get(scheme, 6379))
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SwarmCNNError(f"--address '{address}' is not host:port (e.g. head:6379 or ray://head:10001) or auto")
    return host, int(port)


def check_trial_resources(cpus: float, gpus: float, cluster: dict, address: str | None = None) -> None:
    """Refuse CPUs or GPUs per candidate beyond what the whole cluster has: no candidate could ever be scheduled,
    and Ray would wait for them without a word."""
    where = f"the Ray cluster at {address}" if address else "the local Ray instance"
    for option, asked, kind in (("--cpus-per-trial", cpus, "CPU"), ("--gpus-per-trial", gpus, "GPU")):
        held = float(cluster.get(kind, 0))
        if asked > held:
            raise SwarmCNNError(
                f"{option} {asked:g} is more than the {held:g} {kind}s of {where}: no candidate could be scheduled"
            )


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
    except Exception as error:  # Ray's own kinds, and what its start raises under a memory limit (any kind)
        what = f"join the Ray cluster at --address {address}" if address else "start a local Ray instance"
        raise SwarmCNNError(f"could not {what}: {_first_line(error)}") from None


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
