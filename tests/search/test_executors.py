"""Executors: candidates in this process or in worker processes, and stopping when the budget is spent."""

from __future__ import annotations

from swarmcnn.search.evaluate import EvaluationConfig
from swarmcnn.search.executors import InProcess, WorkerProcesses
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization

CHEAP = EvaluationConfig(epochs=1, train_fraction=0.2)
JOBS = [(Spec.parse(f"conv{n}x3 relu fc8"), CHEAP) for n in (4, 5, 6, 7, 8, 9)]


def test_in_process_starts_no_candidate_after_cancel(digits):
    executor = InProcess(digits, Normalization.of(digits.train.x))
    seen = []
    for index, _ in executor.map(JOBS):
        seen.append(index)
        executor.cancel_pending()
    assert seen == [0]
    assert [i for i, _ in executor.map(JOBS[:2])] == [0, 1]  # a new map starts afresh


def test_worker_processes_cancel_what_has_not_started_and_yield_what_has(digits):
    executor = WorkerProcesses(1, digits, Normalization.of(digits.train.x))
    try:
        results = []
        for index, record in executor.map(JOBS):
            results.append((index, record))
            executor.cancel_pending()
    finally:
        executor.close()
    # one worker runs one candidate and holds one more queued; the rest never start
    assert 1 <= len(results) < len(JOBS)
    assert all(record.ok for _, record in results)
    assert [i for i, _ in results] == list(range(len(results)))
