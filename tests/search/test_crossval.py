"""Cross-validation of the finalists on a small validation split: the folds, the record, the loop's rung."""

from __future__ import annotations

import dataclasses

import torch

from swarmcnn.data import DataConfig, load_data
from swarmcnn.search import crossval
from swarmcnn.search.evaluate import EvaluationConfig
from swarmcnn.search.journal import Journal
from swarmcnn.search.loop import Search, SearchConfig
from swarmcnn.search.space import SearchSpace
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization

TINY = SearchSpace(blocks=(1, 1), convs_per_block=(1, 1), features=(8, 16), fc_layers=(0, 1), neurons=(16, 32))
CHEAP = EvaluationConfig(epochs=1, train_fraction=0.3)
SMALL_VAL = DataConfig(val_fraction=0.03)  # digits: 54 validation images, fewer than SMALL_VALIDATION


def test_only_a_small_validation_split_asks_for_it(digits):
    assert not crossval.needs_cross_validation(digits)  # 270 validation images
    assert crossval.needs_cross_validation(load_data("digits", SMALL_VAL))


def test_every_case_of_train_and_val_is_held_out_once_in_folds_holding_every_class(digits):
    folds = crossval.folded(digits, 5, seed=0)
    held = torch.cat([fold.val.x for fold in folds])
    assert len(held) == len(digits.train) + len(digits.val)
    everything = torch.cat([digits.train.x, digits.val.x]).flatten(1)
    assert sorted(map(tuple, held.flatten(1).tolist())) == sorted(map(tuple, everything.tolist()))
    for fold in folds:
        assert len(fold.train) + len(fold.val) == len(held)
        assert set(fold.val.y.tolist()) == set(range(10))


def test_fewer_folds_where_a_class_is_small(digits):
    keep = torch.cat([torch.nonzero(digits.train.y != 3).flatten(), torch.nonzero(digits.train.y == 3).flatten()[:2]])
    few = dataclasses.replace(digits, train=type(digits.train)(digits.train.x[keep], digits.train.y[keep]),
                              val=type(digits.val)(digits.val.x[digits.val.y != 3], digits.val.y[digits.val.y != 3]))
    assert crossval.folds_for(few) == 2


def test_the_record_is_the_accuracy_over_every_held_out_case(digits):
    spec = Spec.parse("conv8x3 relu maxpool2 fc16 relu")
    config = EvaluationConfig(epochs=3)
    record = crossval.cross_validate(spec, digits, Normalization.of(digits.train.x), config, 3)
    assert record.ok and "3-fold" in record.reason and str(len(digits.train) + len(digits.val)) in record.reason
    assert 0.5 < record.val_accuracy <= 1 and record.score == record.val_accuracy  # chance: 0.1
    assert record.epochs == 9  # three epochs per fold


def test_a_fold_gets_less_time_where_all_would_take_more_than_the_share_of_the_final():
    config = dataclasses.replace(CHEAP, max_seconds=10.0)
    assert crossval.fold_config(config, 600.0, 15, 1.0).max_seconds == 10.0  # 150 s fit in half of 600 s
    assert crossval.fold_config(config, 60.0, 15, 1.0).max_seconds == 2.0  # 30 s for 15
    assert crossval.fold_config(config, 20.0, 15, 1.0) is None  # 0.67 s each: less than the shortest rung
    assert crossval.fold_config(CHEAP, None, 15, None) is CHEAP  # a search by a count: the rung's images


def test_a_search_on_a_small_validation_split_picks_its_final_network_by_cross_validation(tmp_path):
    config = SearchConfig(source="digits", data=SMALL_VAL, strategy="random", evaluations=4, final_epochs=1,
                          space=TINY, evaluation=CHEAP, rungs=1, designs=False)
    search = Search.start(tmp_path / "run", config)
    summary = search.run()
    above = crossval.rung_of(search.plan.top_rung)
    scored = search.rungs[above]
    assert 1 <= len(scored) <= crossval.FINALISTS
    assert all("cross-validation" in r.reason and r.origin["folds"] == crossval.FOLDS for r in scored.values())
    best = max(scored.values(), key=lambda r: (r.score, -r.val_loss))
    assert summary.best_spec == best.spec
    journal = Journal.open(tmp_path / "run")
    try:
        assert journal.get("final")["best_rung"] == above
        assert {r.spec for r in journal.evaluations("promotions") if r.rung == above} == set(scored)
    finally:
        journal.close()
