"""Promotion: the best candidates trained again, longer, and the final spec chosen among them."""

from __future__ import annotations

import json

import pytest

from swarmcnn.cli import main
from swarmcnn.errors import SwarmCNNError
from swarmcnn.search import executors as executors_module
from swarmcnn.search import loop as loop_module
from swarmcnn.search.evaluate import EvaluationConfig, failure
from swarmcnn.search.journal import EvaluationRecord, Journal
from swarmcnn.search.loop import Search, SearchConfig
from swarmcnn.search.promotion import PROMOTION_FACTOR, finalists, promotion_config, promotion_seconds
from swarmcnn.search.space import SearchSpace

TINY = SearchSpace(blocks=(1, 1), convs_per_block=(1, 1), features=(8, 16), fc_layers=(0, 1), neurons=(16, 32))
CHEAP = EvaluationConfig(epochs=1, train_fraction=0.3)


def _record(spec: str, score: float, seconds: float = 1.0) -> EvaluationRecord:
    return EvaluationRecord(spec, "ok", "trained", score, score, 0.3, 100, 1000, 1, seconds)


def test_promotion_trains_longer_with_a_longer_time_limit():
    config = promotion_config(EvaluationConfig(epochs=2, max_seconds=10.0))
    assert config.epochs == 2 * PROMOTION_FACTOR and config.max_seconds == 10.0 * PROMOTION_FACTOR
    assert promotion_config(EvaluationConfig(epochs=2)).max_seconds is None


def test_finalists_are_the_best_trained_candidates_and_their_cost_counts_once():
    records = [_record("a", 0.90), _record("b", 0.95, 2.0), failure("c", "failed", "x"), _record("d", 0.93, 3.0)]
    assert [r.spec for r in finalists(records, 2)] == ["b", "d"]
    assert promotion_seconds(records, 2, []) == pytest.approx((2.0 + 3.0) * PROMOTION_FACTOR)
    assert promotion_seconds(records, 2, ["b"]) == pytest.approx(3.0 * PROMOTION_FACTOR)
    assert promotion_seconds(records, 0, []) == 0


def test_search_promotes_its_finalists_and_chooses_the_final_spec_among_them(tmp_path):
    config = SearchConfig(
        source="digits", strategy="random", evaluations=6, final_epochs=1, space=TINY, evaluation=CHEAP, promote=3
    )
    summary = Search.start(tmp_path / "run", config).run()
    journal = Journal.open(tmp_path / "run")
    searched, promoted = journal.evaluations(), journal.evaluations("promotions")
    assert len(searched) == 6
    assert {r.spec for r in promoted} == {r.spec for r in finalists(searched, 3)}
    assert all(r.epochs == CHEAP.epochs * PROMOTION_FACTOR for r in promoted if r.ok)
    best = max((r for r in promoted if r.ok), key=lambda r: r.score)
    assert summary.best_spec == best.spec and summary.best_val_accuracy == pytest.approx(best.val_accuracy)


def test_resume_after_promotion_retrains_nothing(tmp_path, monkeypatch):
    config = SearchConfig(
        source="digits", strategy="random", evaluations=4, final_epochs=1, space=TINY, evaluation=CHEAP, promote=2
    )
    search = Search.start(tmp_path / "run", config)
    real_final = loop_module.Search._final_training
    monkeypatch.setattr(loop_module.Search, "_final_training", lambda self: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):  # killed after the promotions, before the final training
        search.run()
    search.journal.close()
    monkeypatch.setattr(loop_module.Search, "_final_training", real_final)
    monkeypatch.setattr(executors_module, "evaluate_candidate", lambda *a, **k: pytest.fail("trained again"))
    summary = Search.resume(tmp_path / "run").run()
    assert summary.evaluations == 4 and len(Journal.open(tmp_path / "run").evaluations("promotions")) == 2


def test_runs_show_lists_the_promoted_finalists(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["search", "digits", "--strategy", "random", "--evaluations", "3", "--candidate-epochs", "1"]
    args += ["--train-fraction", "0.3", "--final-epochs", "1", "--promote", "2", "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert main(["runs", "show", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert len(summary["promotions"]) == 2
    assert main(["runs", "show", str(out)]) == 0
    assert "finalists trained again" in capsys.readouterr().out


def test_a_budgeted_search_keeps_time_for_its_finalists(tmp_path):
    base = dict(source="digits", strategy="random", budget_seconds=100, space=TINY, evaluation=CHEAP)
    plain = Search.start(tmp_path / "plain", SearchConfig(**base, promote=0))
    promoting = Search.start(tmp_path / "promoting", SearchConfig(**base, promote=2))
    for search in (plain, promoting):
        search.known = {r.spec: r for r in (_record("conv8x3 relu", 0.9, 2.0), _record("conv12x3 relu", 0.8, 3.0))}
    assert plain._seconds_left() - promoting._seconds_left() == pytest.approx(5.0 * PROMOTION_FACTOR, abs=0.5)


def test_negative_promote_is_refused():
    with pytest.raises(SwarmCNNError, match="--promote"):
        SearchConfig(source="digits", promote=-1)
