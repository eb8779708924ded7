"""Multi-fidelity: rung fidelities, ASHA's promotions, the finishing climb and the choice at the top rung."""

from __future__ import annotations

import json

import pytest

from swarmcnn.cli import main
from swarmcnn.errors import SwarmCNNError
from swarmcnn.search.budget import Plan
from swarmcnn.search.evaluate import EvaluationConfig
from swarmcnn.search.journal import EvaluationRecord, Journal
from swarmcnn.search.ladder import ETA, best_of_top, by_rung, due, finishing, finishing_seconds, rung_config
from swarmcnn.search.loop import Search, SearchConfig
from swarmcnn.search.space import SearchSpace
from tests.search.fakes import Refusing, StopBeforeFinal

TINY = SearchSpace(blocks=(1, 1), convs_per_block=(1, 1), features=(8, 16), fc_layers=(0, 1), neurons=(16, 32))
CHEAP = EvaluationConfig(epochs=1, train_fraction=0.3)


def _record(spec: str, score: float, rung: int = 0, seconds: float = 1.0) -> EvaluationRecord:
    return EvaluationRecord(spec, "ok", "trained", score, score, 0.3, 1000, 10_000, 2, seconds, rung=rung)


def test_each_rung_trains_on_eta_times_the_images_of_the_one_below_more_data_first():
    plan, base = Plan(0.1, 2, 4.0, 3), EvaluationConfig()
    images = []
    for rung in range(4):
        config = rung_config(plan, base, rung)
        images.append(config.epochs * config.train_fraction)
        assert config.max_seconds == pytest.approx(4.0 * ETA**rung)
    assert rung_config(plan, base, 0) == plan.rung0(base)
    assert rung_config(plan, base, 1).train_fraction == pytest.approx(0.3) and rung_config(plan, base, 1).epochs == 2
    assert rung_config(plan, base, 3).train_fraction == 1.0  # the whole split before more epochs
    for low, high in zip(images, images[1:]):
        assert high / low == pytest.approx(ETA, rel=0.1)


def test_the_best_third_of_each_rung_is_due_for_the_rung_above_once():
    rungs = by_rung([_record(f"conv{8 + i}x3 relu", 0.5 + i / 100) for i in range(9)])
    promotions = due(rungs, top=2)
    assert [(r.spec, rung) for r, rung in promotions] == [(f"conv{8 + i}x3 relu", 1) for i in (8, 7, 6)]
    rungs[1] = {r.spec: _record(r.spec, r.score + 0.1, rung=1) for r, _ in promotions}
    assert [(r.spec, rung) for r, rung in due(rungs, top=2)] == [("conv16x3 relu", 2)]  # 3 at rung 1: the best
    assert due(rungs, top=1) == []  # no rung above the top


def test_finishing_climbs_the_best_of_each_rung_to_the_top_lowest_rung_first():
    rungs = by_rung([_record("a", 0.9), _record("b", 0.8), _record("b", 0.85, rung=1)])
    assert finishing(rungs, top=2) == (rungs[0]["a"], 1)  # a is the best of rung 0 but not on rung 1
    rungs[1]["a"] = _record("a", 0.95, rung=1)
    assert finishing(rungs, top=2) == (rungs[1]["a"], 2)
    rungs[2] = {"a": _record("a", 0.96, rung=2)}
    assert finishing(rungs, top=2) is None
    assert best_of_top(rungs) is rungs[2]["a"]


def test_finishing_seconds_count_each_missing_climb_at_eta_times_per_rung():
    rungs = by_rung([_record("a", 0.9, seconds=2.0), _record("b", 0.8, rung=1, seconds=5.0)])
    # a climbs rungs 1 and 2 (2 x 3 + 2 x 9); b, the best of rung 1, climbs to rung 2 (5 x 3)
    assert finishing_seconds(rungs, 2, lambda r: r.seconds) == pytest.approx(2 * 3 + 2 * 9 + 5 * 3)
    assert finishing_seconds(rungs, 0, lambda r: r.seconds) == 0


def test_search_promotes_the_best_and_chooses_the_best_of_the_top_rung(tmp_path):
    config = SearchConfig(
        source="digits", strategy="random", evaluations=8, final_epochs=1, space=TINY, evaluation=CHEAP,
        designs=False,
    )
    summary = Search.start(tmp_path / "run", config).run()
    journal = Journal.open(tmp_path / "run")
    searched, promoted = journal.evaluations(), journal.evaluations("promotions")
    assert len(searched) == 8
    at = by_rung(promoted)
    assert set(at) == {1, 2} and len(at[1]) >= 8 // ETA  # a third of the generation, then the finishing climb
    assert {r.spec for r in at[1].values()} >= {r.spec for r in sorted(searched, key=lambda r: -r.score)[:2]}
    top = max((r for r in at[2].values() if r.ok), key=lambda r: r.score)
    assert summary.best_spec == top.spec and summary.best_val_accuracy == pytest.approx(top.val_accuracy)
    assert all(r.images > 2 * max(s.images for s in searched) for r in at[2].values() if r.ok)


def test_resume_after_promotion_retrains_nothing(tmp_path):
    config = SearchConfig(
        source="digits", strategy="random", evaluations=4, final_epochs=1, space=TINY, evaluation=CHEAP, designs=False
    )
    search = Search.start(tmp_path / "run", config, StopBeforeFinal())
    with pytest.raises(KeyboardInterrupt):  # killed after the promotions, before the final training
        search.run()
    promoted = len(search.journal.evaluations("promotions"))
    search.journal.close()
    summary = Search.resume(tmp_path / "run", executor=Refusing(pytest.fail)).run()
    assert summary.evaluations == 4 and len(Journal.open(tmp_path / "run").evaluations("promotions")) == promoted


def test_runs_show_lists_the_promoted_with_their_rung(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["search", "digits", "--strategy", "random", "--evaluations", "3", "--candidate-epochs", "1"]
    args += ["--train-fraction", "0.3", "--final-epochs", "1", "--rungs", "1", "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert main(["runs", "show", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["promotions"] and {row["rung"] for row in summary["promotions"]} == {1}
    assert main(["runs", "show", str(out)]) == 0
    assert "3x the images" in capsys.readouterr().out


def test_negative_rungs_are_refused():
    with pytest.raises(SwarmCNNError, match="--rungs"):
        SearchConfig(source="digits", rungs=-1)
