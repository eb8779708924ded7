"""Executors: candidates in this process or in worker processes, stopping when the budget is spent, and the
search training everything through the executor it is given."""

from __future__ import annotations

import dataclasses

import pytest

from swarmcnn.cli import main
from swarmcnn.search.evaluate import EvaluationConfig
from swarmcnn.search.executors import InProcess, WorkerProcesses
from swarmcnn.search.loop import Search, SearchConfig
from swarmcnn.search.space import SearchSpace
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization
from tests.search.fakes import Recording

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


def test_worker_processes_train_on_the_data_they_are_given_not_on_a_reload_of_its_source(digits, tmp_path):
    gone = dataclasses.replace(digits, source=str(tmp_path / "moved-away"))  # its path leads nowhere now
    executor = WorkerProcesses(1, gone, Normalization.of(digits.train.x))
    try:
        [(index, record)] = list(executor.map(JOBS[:1]))
    finally:
        executor.close()
    assert index == 0 and record.ok and record.worker.startswith("pid")


def test_candidates_and_promotions_all_train_through_the_executor_given_a_generation_s_promotions_together(
    tmp_path,
):
    config = SearchConfig(
        source="digits", strategy="random", evaluations=8, final_epochs=1, rungs=1, designs=False,
        space=SearchSpace(blocks=(1, 1), convs_per_block=(1, 1), features=(8, 32), fc_layers=(0, 1)), evaluation=CHEAP,
    )
    recording = Recording()
    search = Search.start(tmp_path / "run", config, executor=recording)
    search.run()
    candidates, promotions = search.journal.evaluations(), search.journal.evaluations("promotions")
    assert len(promotions) >= 2, "the premise: a generation whose best third goes up a rung"
    assert sorted(recording.trained) == sorted(r.spec for r in [*candidates, *promotions])
    first_generation = {r.spec for r in candidates if r.generation == 0}
    promoted_after_it = {r.spec for r in promotions if r.generation == 0 and r.spec in first_generation}
    # the promotions decided after a generation go to the executor in one map: side by side where it has workers
    assert sorted(promoted_after_it) in [sorted(batch) for batch in recording.batches]


@pytest.mark.parametrize(
    "options, message",
    [
        (["--cpus-per-trial", "2"], "--cpus-per-trial is for --executor ray"),
        (["--address", "auto", "--gpus-per-trial", "1"], "--address, --gpus-per-trial are for --executor ray"),
        (["--executor", "ray", "--workers", "2"], "--workers is for the local executor"),
        (["--executor", "ray", "--cpus-per-trial", "0"], "--cpus-per-trial must be positive"),
    ],
)
def test_executor_options_that_do_not_fit_together_are_refused_before_any_work(tmp_path, capsys, options, message):
    out = tmp_path / "run"
    assert main(["search", "digits", "--evaluations", "1", "--out", str(out), *options]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
