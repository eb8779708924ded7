"""Candidates as Ray tasks: the same search as the local executor, through a real local Ray instance."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'swarmcnn[ray]')")

from swarmcnn.cli import main  # noqa: E402
from swarmcnn.search.evaluate import EvaluationConfig  # noqa: E402
from swarmcnn.search.journal import Journal  # noqa: E402
from swarmcnn.search.loop import Search, SearchConfig  # noqa: E402
from swarmcnn.search.ray_executor import RayExecutor  # noqa: E402
from swarmcnn.search.space import SearchSpace  # noqa: E402
from swarmcnn.spec import Spec  # noqa: E402
from swarmcnn.train import Normalization  # noqa: E402

pytestmark = pytest.mark.ray
# candidates small enough that every one trains on digits (the default space also proposes ones the search refuses)
SMALL_SPACE = SearchSpace(blocks=(1, 2), convs_per_block=(1, 1), features=(8, 32), fc_layers=(0, 1), neurons=(16, 64))
SEARCH = ["search", "digits", "--strategy", "random", "--evaluations", "6", "--candidate-epochs", "1",
          "--train-fraction", "0.3", "--final-epochs", "1", "--seed", "3", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def local_ray():
    """A Ray instance of two CPUs on the loopback address, started by the test and shut down after it."""
    ray.init(num_cpus=2, num_gpus=0, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _journaled(run) -> list[tuple]:
    """Every journaled training, candidates and promotions, as (table, spec, rung, generation, status, score)."""
    journal = Journal.open(run)
    try:
        return sorted(
            (table, r.spec, r.rung, r.generation, r.status, round(r.score, 4))
            for table in ("evaluations", "promotions")
            for r in journal.evaluations(table)
        )
    finally:
        journal.close()


def test_a_search_on_ray_journals_what_the_local_executor_does(local_ray, tmp_path, capsys):
    assert main([*SEARCH, "--out", str(tmp_path / "local")]) == 0
    assert main([*SEARCH, "--executor", "ray", "--cpus-per-trial", "1", "--out", str(tmp_path / "ray")]) == 0
    local, remote = _journaled(tmp_path / "local"), _journaled(tmp_path / "ray")
    assert local == remote  # the same candidates and promotions, statuses and scores, each journaled once
    assert sum(row[0] == "evaluations" for row in remote) == 6 and any(row[0] == "promotions" for row in remote)
    summaries = []
    for run in ("local", "ray"):
        assert main(["runs", "show", str(tmp_path / run), "--json"]) == 0
        summaries.append(json.loads(capsys.readouterr().out))
    assert summaries[0]["best_spec"] == summaries[1]["best_spec"]
    assert summaries[0]["test_accuracy"] == pytest.approx(summaries[1]["test_accuracy"], abs=1e-4)


class Interrupting:
    """Wraps an executor: KeyboardInterrupt, as Ctrl-C would, once `after` records have come back."""

    def __init__(self, inner, after: int) -> None:
        self.inner, self.after = inner, after

    def map(self, jobs):
        for item in self.inner.map(jobs):
            if self.after == 0:
                raise KeyboardInterrupt
            self.after -= 1
            yield item

    def cancel_pending(self) -> None:
        self.inner.cancel_pending()

    def close(self) -> None:
        self.inner.close()


def test_a_run_interrupted_on_ray_resumes_locally_and_ends_as_an_uninterrupted_local_run(local_ray, tmp_path):
    config = SearchConfig(
        "digits", strategy="random", evaluations=6, final_epochs=1, seed=3,
        evaluation=EvaluationConfig(epochs=1, train_fraction=0.3),
    )
    whole = Search.start(tmp_path / "whole", config, threads=1).run()
    parts = Search.start(tmp_path / "parts", config, executor=lambda d, n: Interrupting(RayExecutor(d, n), 3))
    with pytest.raises(KeyboardInterrupt):
        parts.run()
    parts.journal.close()
    assert len(_journaled(tmp_path / "parts")) == 3
    resumed = Search.resume(tmp_path / "parts", threads=1).run()  # the same journal, the local executor
    assert _journaled(tmp_path / "parts") == _journaled(tmp_path / "whole")
    assert (resumed.best_spec, resumed.test_accuracy) == (whole.best_spec, whole.test_accuracy)


def _task_pids() -> list[int]:
    """Processes running a candidate now: Ray titles its workers by the task they run."""
    import subprocess

    listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in listing.splitlines() if "ray::_evaluate_task" in line]


class Killer:
    """Kills, by pid, the Ray workers it sees running a candidate: the first `times` of them (None: every one)."""

    def __init__(self, times: int | None = 1) -> None:
        self.times, self.killed, self.done = times, [], threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Killer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()

    def _watch(self) -> None:
        while not self.done.is_set() and (self.times is None or len(self.killed) < self.times):
            for pid in _task_pids():
                if pid not in self.killed:
                    os.kill(pid, signal.SIGKILL)
                    self.killed.append(pid)
            time.sleep(0.02)


def test_a_worker_killed_during_its_candidate_is_retried_and_the_candidate_comes_back_once(local_ray, digits):
    executor = RayExecutor(digits, Normalization.of(digits.train.x), max_retries=2)
    jobs = [(Spec.parse(f"conv{n}x3 relu fc32 relu"), EvaluationConfig(epochs=20)) for n in (8, 12)]
    with Killer() as killer:
        results = list(executor.map(jobs))
    executor.close()
    assert killer.killed, "no Ray worker was seen running a candidate"
    assert sorted(i for i, _ in results) == [0, 1]  # every candidate once
    assert all(record.ok for _, record in results)  # the killed one was run again


def test_a_search_whose_ray_worker_is_killed_completes_with_every_candidate_journaled_once(local_ray, tmp_path):
    config = SearchConfig(
        "digits", strategy="random", evaluations=4, final_epochs=1, rungs=1, designs=False,
        evaluation=EvaluationConfig(epochs=4), space=SMALL_SPACE,
    )
    with Killer() as killer:
        search = Search.start(tmp_path / "run", config, executor=lambda d, n: RayExecutor(d, n, max_retries=2))
        summary = search.run()
    assert killer.killed, "no Ray worker was seen running a candidate"
    records = search.journal.evaluations()
    assert summary.evaluations == len(records) == 4
    assert len({r.spec for r in records}) == 4 and all(r.ok for r in records)  # the killed one ran again, once
    promoted = search.journal.evaluations("promotions")
    assert len({r.spec for r in promoted}) == len(promoted) >= 1


def test_a_candidate_whose_every_try_is_killed_fails_after_its_retries_and_the_others_finish(local_ray, digits):
    executor = RayExecutor(digits, Normalization.of(digits.train.x), max_retries=1)
    doomed = [(Spec.parse("conv8x3 relu fc32 relu"), EvaluationConfig(epochs=20))]
    with Killer(times=None) as killer:
        results = list(executor.map(doomed))
    # the first try and its one retry were killed, and then it was given up on: the retries are bounded (a worker
    # still titled by an earlier test's task may be among those killed)
    assert len(killer.killed) >= 2
    [(index, record)] = results
    assert index == 0 and record.status == "failed" and "Ray task failed" in record.reason
    quick = [(Spec.parse("conv4x3 relu fc8"), EvaluationConfig(epochs=1, train_fraction=0.2))]
    assert [record.ok for _, record in executor.map(quick)] == [True]  # the executor still works
    executor.close()
