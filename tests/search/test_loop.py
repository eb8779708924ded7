"""The search loop on digits: budget, identical specs, failures, kill and resume, workers, the final model.

Candidates come from a tiny space and train one epoch on part of the data, so that a search takes a second;
only the end-to-end test trains enough to reach a useful accuracy.
"""

from __future__ import annotations

import dataclasses
import math
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import swarmcnn
from swarmcnn.errors import SwarmCNNError
from swarmcnn.search import loop as loop_module
from swarmcnn.search.config import DEFAULT_EVALUATIONS
from swarmcnn.search.evaluate import EvaluationConfig
from swarmcnn.search.journal import JOURNAL_FILE, EvaluationRecord, Journal
from swarmcnn.search.loop import BEST_DIR, Search, SearchConfig, SearchReporter
from swarmcnn.search.runs import describe_run, pareto_front
from swarmcnn.search.space import SearchSpace
from swarmcnn.search.strategies import Candidate, Strategy
from swarmcnn.spec import Spec
from swarmcnn.train import evaluate
from tests.search.fakes import Recording

TINY = SearchSpace(blocks=(1, 1), convs_per_block=(1, 1), features=(8, 16), fc_layers=(0, 1), neurons=(16, 32))
CHEAP = EvaluationConfig(epochs=1, train_fraction=0.3)


def _config(**changes) -> SearchConfig:
    # no rungs and no designs: these tests count the strategy's own trainings; test_ladder.py covers promotion
    values = dict(
        source="digits", strategy="random", evaluations=4, final_epochs=1, space=TINY, evaluation=CHEAP, rungs=0,
        designs=False,
    )
    return SearchConfig(**{**values, **changes})


def _rows(run_dir: Path) -> list[tuple]:
    """The journal's evaluations as stored: id, spec, status, score, created."""
    db = sqlite3.connect(f"file:{run_dir / JOURNAL_FILE}?mode=ro", uri=True)
    try:
        return db.execute("SELECT id, spec, status, score, created FROM evaluations ORDER BY id").fetchall()
    finally:
        db.close()


def _assert_model_dir_matches(summary, digits) -> None:
    model = swarmcnn.load(summary.model_dir)
    assert str(model.spec) == summary.best_spec
    accuracy = evaluate(model.module, digits.test, model.normalization).accuracy
    assert accuracy == pytest.approx(summary.test_accuracy, abs=1e-6)
    assert model.metrics["test_accuracy"] == pytest.approx(summary.test_accuracy)


# -- end to end ---------------------------------------------------------------------------------------------


def test_small_pso_search_on_digits_reaches_95_percent_test_accuracy_and_saves_the_best(tmp_path, digits):
    space = SearchSpace(features=(8, 32), blocks=(1, 2), fc_layers=(0, 1), neurons=(16, 64))
    config = SearchConfig(
        "digits",
        strategy="pso",
        evaluations=8,
        final_epochs=15,
        space=space,
        evaluation=EvaluationConfig(epochs=1, train_fraction=0.5),
    )
    search = Search.start(tmp_path / "run", config)
    summary = search.run()
    assert summary.test_accuracy >= 0.95
    assert summary.evaluations == 8
    assert Path(summary.model_dir) == tmp_path / "run" / BEST_DIR
    _assert_model_dir_matches(summary, digits)
    first = search.journal.evaluations()
    assert [r.origin for r in first[:2]] == [{"design": "lenet5"}, {"design": "vgg-3block"}]  # the designs first
    promoted = search.journal.evaluations("promotions")  # the default: two rungs above the first
    assert {r.rung for r in promoted} == {1, 2}
    top = max((r for r in promoted if r.ok and r.rung == 2), key=lambda r: r.score)
    assert (summary.best_spec, summary.best_val_accuracy) == (top.spec, top.val_accuracy)
    run = describe_run(tmp_path / "run")
    assert run["status"] == "finished" and run["test_accuracy"] == summary.test_accuracy
    again = Search.resume(tmp_path / "run").run()  # a finished run only reports: nothing trains again
    assert dataclasses.replace(again, seconds=summary.seconds) == summary


# -- budget -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("evaluations", [1, 5, 11])
def test_evaluation_budget_is_exact(tmp_path, evaluations):
    summary = Search.start(tmp_path / "run", _config(evaluations=evaluations)).run()
    assert summary.evaluations == evaluations
    assert len(_rows(tmp_path / "run")) == evaluations


def test_reporter_hears_every_evaluation_with_a_running_best(tmp_path):
    class Recording(SearchReporter):
        def __init__(self):
            self.calls = []

        def evaluated(self, record, best, done, generation, seconds_left):
            self.calls.append((record, best, done, seconds_left))

    reporter = Recording()
    Search.start(tmp_path / "run", _config(evaluations=5), reporter).run()
    assert [done for _, _, done, _ in reporter.calls] == [1, 2, 3, 4, 5]
    best_scores = [best.score for _, best, _, _ in reporter.calls]
    assert best_scores == sorted(best_scores)
    assert all(seconds_left is None for *_, seconds_left in reporter.calls)  # no wall-clock budget


def test_time_budget_ends_the_search_and_still_saves_the_best(tmp_path, digits):
    started = time.perf_counter()
    search = Search.start(tmp_path / "run", _config(evaluations=None, budget_seconds=3, final_epochs=3))
    summary = search.run()
    wall = time.perf_counter() - started
    assert summary.evaluations >= 1
    assert wall < 3 + 5  # the budget holds the final training too, give or take one candidate and one epoch
    assert 1 <= search.journal.get("final")["final_epochs"] <= 3
    _assert_model_dir_matches(summary, digits)


# -- identical specs and failures -----------------------------------------------------------------------------

A, B, C, D = "conv8x3 relu", "conv12x3 relu maxpool2", "conv16x3 relu fc16 relu", "conv8x5 bn relu"


class Repeating(Strategy):
    """Asks specs it has asked before, within and across generations; remembers what it was told."""

    name = "random"
    plan = [[A, B, A], [B, C], [C, A, D]]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.told: list[list[tuple[str, float]]] = []

    def _propose(self) -> list[Candidate]:
        texts = self.plan[min(self.generation, len(self.plan) - 1)]
        return [Candidate(Spec.parse(t), {"slot": i}) for i, t in enumerate(texts)]

    def _learn(self, candidates, scores) -> None:
        self.told.append([(str(c.spec), score) for c, score in zip(candidates, scores)])


def test_identical_specs_are_trained_once_and_told_from_the_journal(tmp_path, monkeypatch):
    monkeypatch.setattr(loop_module, "get_strategy", lambda name: Repeating)
    recording = Recording()
    search = Search.start(tmp_path / "run", _config(evaluations=4), executor=recording)
    search.run()
    assert recording.trained == [A, B, C, D]
    scores = {r.spec: r.score for r in search.journal.evaluations()}
    assert sorted(scores) == sorted([A, B, C, D])
    told = [[(t, scores[t]) for t in generation] for generation in Repeating.plan]
    assert search.strategy.told == told
    assert [r.origin for r in search.journal.evaluations()] == [{"slot": 0}, {"slot": 1}, {"slot": 1}, {"slot": 2}]


def test_failing_candidates_are_recorded_with_their_reason_and_the_search_finishes(tmp_path, digits):
    breaking_fc = Recording(fail=lambda spec: "fc" in spec, reason="boom in a fully connected layer")
    search = Search.start(tmp_path / "run", _config(evaluations=6), executor=breaking_fc)
    summary = search.run()
    records = search.journal.evaluations()
    failed = [r for r in records if "fc" in r.spec]
    assert failed and len(failed) < len(records)  # the seed gives both kinds: the premise of this test
    for record in failed:
        assert record.status == "failed" and "boom" in record.reason and record.score == -math.inf
    assert all(r.ok for r in records if "fc" not in r.spec)
    assert summary.evaluations == 6 and "fc" not in summary.best_spec
    assert describe_run(tmp_path / "run")["failures"] == {"failed": len(failed)}
    _assert_model_dir_matches(summary, digits)


def test_no_successful_candidate_ends_with_a_project_error_naming_the_run(tmp_path):
    search = Search.start(tmp_path / "run", _config(evaluation=EvaluationConfig(max_params=1)))
    with pytest.raises(SwarmCNNError, match="no candidate of 4 trained successfully"):
        search.run()
    assert {r.status for r in search.journal.evaluations()} == {"too-large"}
    assert not (tmp_path / "run" / BEST_DIR).exists()


def test_search_of_an_exhausted_space_ends_with_what_it_found(tmp_path):
    two_specs = SearchSpace(
        blocks=(1, 1),
        convs_per_block=(1, 1),
        features=(8, 8),
        feature_sizes=(3,),
        pool_kinds=("max",),
        pool_windows=(2,),
        fc_layers=(0, 0),
        batchnorm=False,
        dropout=False,
        pool_places=("last",),
        heads=("flatten",),
        stems=("none",),
        activations=("relu",),
    )
    summary = Search.start(tmp_path / "run", _config(evaluations=10, space=two_specs)).run()
    assert sorted(row[1] for row in _rows(tmp_path / "run")) == ["conv8x3 relu", "conv8x3 relu maxpool2"]
    assert summary.evaluations == 2 and (tmp_path / "run" / BEST_DIR / "model.json").is_file()


# -- kill and resume ---------------------------------------------------------------------------------------------


def _wait_for_evaluations(proc: subprocess.Popen, journal: Path, at_least: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists():  # connecting before the search creates it would create it
            try:
                if len(_rows(journal.parent)) >= at_least:
                    return
            except sqlite3.OperationalError:  # tables not created yet
                pass
        time.sleep(0.02)
    raise AssertionError(f"search ended or stalled before {at_least} evaluations: rc {proc.poll()}")


def test_resume_after_kill_loses_no_evaluation_and_retrains_none(tmp_path, digits):
    run_dir, budget = tmp_path / "run", 8
    (tmp_path / "space.toml").write_text(
        "[space]\nblocks = [1, 2]\nconvs_per_block = [1, 1]\nfeatures = [8, 32]\nfc_layers = [0, 1]\n"
    )
    command = [sys.executable, "-m", "swarmcnn", "search", "digits", "--strategy", "random", "--quiet"]
    options = ["--evaluations", budget, "--candidate-epochs", 4, "--final-epochs", 1, "--threads", 1, "--rungs", 0]
    options += ["--space", tmp_path / "space.toml", "--out", run_dir]
    proc = subprocess.Popen([*command, *map(str, options)], stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_evaluations(proc, run_dir / JOURNAL_FILE, 2)
    finally:
        proc.kill()  # SIGKILL, as kill -9 would; a no-op if it already ended
        _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"the search ended before it was killed: {err}"
    before = _rows(run_dir)
    assert 2 <= len(before) < budget
    assert describe_run(run_dir)["status"].startswith("unfinished")

    recording = Recording()
    summary = Search.resume(run_dir, executor=recording).run()
    trained = recording.trained
    after = _rows(run_dir)
    assert summary.evaluations == len(after) == budget
    assert after[: len(before)] == before  # same ids, specs, statuses, scores and times: nothing redone
    specs = [row[1] for row in after]
    assert len(set(specs)) == budget
    assert not set(trained) & {row[1] for row in before}
    assert len(trained) == budget - len(before)
    _assert_model_dir_matches(summary, digits)


def _history(run_dir: Path) -> list[tuple]:
    journal = Journal.open(run_dir)
    try:
        return [(r.spec, r.status, r.score, r.generation, r.origin) for r in journal.evaluations()]
    finally:
        journal.close()


@pytest.mark.parametrize("interrupt_after", [3, 10])  # inside the first generation of 8; inside the second
def test_interrupted_and_resumed_search_ends_as_an_uninterrupted_one(tmp_path, interrupt_after):
    config = _config(strategy="pso", evaluations=12, seed=5)
    whole = Search.start(tmp_path / "whole", config, executor=Recording()).run()

    # the k+1-th training raises KeyboardInterrupt, as Ctrl-C would during it
    interrupted = Search.start(tmp_path / "parts", config, executor=Recording(interrupt_after=interrupt_after))
    with pytest.raises(KeyboardInterrupt):
        interrupted.run()
    interrupted.journal.close()
    assert len(_rows(tmp_path / "parts")) == interrupt_after
    recording = Recording()
    resumed = Search.resume(tmp_path / "parts", executor=recording).run()

    assert len(recording.trained) == 12 - interrupt_after
    assert _history(tmp_path / "parts") == _history(tmp_path / "whole")
    assert (resumed.best_spec, resumed.best_val_accuracy) == (whole.best_spec, whole.best_val_accuracy)
    assert resumed.test_accuracy == whole.test_accuracy


# -- workers ---------------------------------------------------------------------------------------------------


def test_two_worker_processes_evaluate_the_budget_and_are_named_in_the_journal(tmp_path, digits):
    search = Search.start(tmp_path / "run", _config(evaluations=4, workers=2))
    summary = search.run()
    records = search.journal.evaluations()
    assert len(records) == summary.evaluations == 4
    assert all(re.fullmatch(r"pid\d+", r.worker) for r in records), [r.worker for r in records]
    assert all(r.ok for r in records)
    _assert_model_dir_matches(summary, digits)


# -- configuration ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"strategy": "psoo"}, "did you mean 'pso'"),
        ({"evaluations": 0}, "--evaluations"),
        ({"budget_seconds": 0}, "--budget"),
        ({"workers": 0}, "--workers"),
        ({"final_epochs": 0}, "--final-epochs"),
    ],
)
def test_impossible_settings_are_refused_before_anything_runs(changes, words):
    with pytest.raises(SwarmCNNError, match=re.escape(words)):
        _config(**changes)


def test_settings_round_trip_through_the_journal_format():
    config = _config(budget_seconds=30.0, evaluations=None, seed=7)
    assert SearchConfig.from_dict(config.to_dict()) == config
    assert _config(evaluations=None).evaluations == DEFAULT_EVALUATIONS


def test_start_refuses_a_folder_with_other_files_and_a_folder_holding_a_run(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(SwarmCNNError, match="other files"):
        Search.start(tmp_path / "busy", _config())
    Search.start(tmp_path / "run", _config()).journal.close()
    with pytest.raises(SwarmCNNError, match="--resume"):
        Search.start(tmp_path / "run", _config())


# -- Pareto front ------------------------------------------------------------------------------------------------


def _scored(params: int, accuracy: float) -> EvaluationRecord:
    return EvaluationRecord(f"fc{params}", "ok", "", accuracy, accuracy, 0.1, params, 10 * params, 1, 0.1)


def test_pareto_front_keeps_the_undominated_candidates_smallest_first():
    points = [(100, 0.8), (200, 0.7), (300, 0.9), (300, 0.85), (50, 0.6), (400, 0.9), (500, 0.95), (50, 0.5)]
    records = [_scored(*p) for p in points]
    front = pareto_front(records)
    assert [(r.params, r.val_accuracy) for r in front] == [(50, 0.6), (100, 0.8), (300, 0.9), (500, 0.95)]

    def dominates(a, b):
        at_least_as_good = a.params <= b.params and a.val_accuracy >= b.val_accuracy
        return at_least_as_good and (a.params, a.val_accuracy) != (b.params, b.val_accuracy)

    assert not any(dominates(other, member) for member in front for other in records)
    assert all(any(dominates(m, r) or m == r for m in front) for r in records)
    assert pareto_front([]) == []
