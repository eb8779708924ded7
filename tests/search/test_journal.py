"""The SQLite journal: its schema, what it records and gives back, and how it refuses the wrong folder."""

from __future__ import annotations

import dataclasses
import math
import sqlite3

import pytest

from swarmcnn.errors import SwarmCNNError
from swarmcnn.search.evaluate import failure
from swarmcnn.search.journal import JOURNAL_FILE, SCHEMA_VERSION, EvaluationRecord, Journal


def _record(spec: str, score: float = 0.9, status: str = "ok", **changes) -> EvaluationRecord:
    values = dict(
        spec=spec,
        status=status,
        reason="trained 1 epochs" if status == "ok" else "training loss nan at epoch 1",
        score=score,
        val_accuracy=score if status == "ok" else None,
        val_loss=0.3 if status == "ok" else None,
        params=4538,
        flops=18048,
        epochs=1,
        seconds=0.25,
        worker="pid123",
        generation=2,
        origin={"particle": 3},
    )
    return EvaluationRecord(**{**values, **changes})


@pytest.fixture
def journal(tmp_path):
    journal = Journal.create(tmp_path / "run", {"source": "digits"})
    yield journal
    journal.close()


def test_schema_has_run_evaluations_promotions_and_swarm_state_tables_with_documented_columns(journal):
    def columns(table: str) -> list[str]:
        return [row[1] for row in journal.db.execute(f"PRAGMA table_info({table})")]

    assert columns("run") == ["key", "value"]
    assert columns("evaluations") == [
        "id",
        "generation",
        "spec",
        "rung",
        "status",
        "reason",
        "score",
        "val_accuracy",
        "val_loss",
        "params",
        "flops",
        "epochs",
        "seconds",
        "worker",
        "origin",
        "images",
        "planned_images",
        "created",
    ]
    assert columns("promotions") == columns("evaluations")  # the best trained again, longer, stored alike
    assert columns("swarm_state") == ["generation", "state", "created"]


def test_promotions_are_kept_apart_from_the_search_evaluations(journal):
    journal.record(failure("conv8x3 relu", "failed", "x"))
    journal.record(dataclasses.replace(failure("conv8x3 relu", "diverged", "y"), rung=1), "promotions")
    assert [r.status for r in journal.evaluations()] == ["failed"]
    assert [(r.status, r.rung) for r in journal.evaluations("promotions")] == [("diverged", 1)]
    with pytest.raises(ValueError):
        journal.evaluations("run; DROP TABLE run")


def test_create_stores_settings_and_schema_version_readable_after_reopening(tmp_path):
    Journal.create(tmp_path / "run", {"source": "digits", "seed": 3}).close()
    journal = Journal.open(tmp_path / "run")
    assert journal.get("settings") == {"source": "digits", "seed": 3}
    assert journal.get("schema_version") == SCHEMA_VERSION
    assert journal.get("missing", "default") == "default"
    journal.close()


def test_record_and_evaluations_round_trip_every_field_in_order_of_completion(journal):
    records = [_record("conv8x3 relu", 0.91), _record("conv16x3 relu", 0.87, generation=3, origin={"particle": 0})]
    for record in records:
        journal.record(record)
    assert journal.evaluations() == records
    assert journal.count() == 2


def test_worst_score_is_stored_as_null_and_read_back_as_minus_infinity(journal):
    journal.record(_record("conv8x3 relu fc16 relu", -math.inf, status="diverged"))
    assert journal.db.execute("SELECT score FROM evaluations").fetchone() == (None,)
    (record,) = journal.evaluations()
    assert record.score == -math.inf
    assert record.status == "diverged" and not record.ok
    assert record.val_accuracy is None and "loss" in record.reason


def test_identical_spec_recorded_twice_keeps_one_row_the_first(journal):
    journal.record(_record("conv8x3 relu", 0.91))
    journal.record(_record("conv8x3 relu", 0.50, worker="pid999"))
    (record,) = journal.evaluations()
    assert journal.count() == 1
    assert record.score == 0.91 and record.worker == "pid123"


def test_missing_origin_is_stored_as_an_empty_dict(journal):
    journal.record(_record("conv8x3 relu", origin=None))
    assert journal.evaluations()[0].origin == {}


def test_last_state_is_the_state_of_the_latest_generation(journal):
    assert journal.last_state() is None
    for generation in (1, 3, 2):  # the latest is the highest generation, not the last written
        journal.save_state(generation, {"generation": generation, "best": [0.5, None]})
    assert journal.last_state() == {"generation": 3, "best": [0.5, None]}
    journal.save_state(3, {"generation": 3, "best": "again"})  # one state per generation: replaced
    assert journal.last_state() == {"generation": 3, "best": "again"}
    assert journal.db.execute("SELECT COUNT(*) FROM swarm_state").fetchone() == (3,)


def test_create_refuses_a_folder_that_already_holds_a_journal_and_suggests_resume(tmp_path):
    Journal.create(tmp_path / "run", {"source": "digits"}).close()
    with pytest.raises(SwarmCNNError, match="--resume"):
        Journal.create(tmp_path / "run", {"source": "shapes"})
    assert Journal.open(tmp_path / "run").get("settings") == {"source": "digits"}


def test_open_refuses_a_folder_without_journal(tmp_path):
    with pytest.raises(SwarmCNNError, match="not a search run directory"):
        Journal.open(tmp_path)
    with pytest.raises(SwarmCNNError, match="not a search run directory"):
        Journal.open(tmp_path / "missing")


def test_open_refuses_a_garbage_file_named_journal_with_a_project_error(tmp_path):
    (tmp_path / JOURNAL_FILE).write_bytes(b"this is not SQLite at all\n" * 200)
    with pytest.raises(SwarmCNNError, match="not a readable journal"):
        Journal.open(tmp_path)


def test_open_refuses_a_sqlite_file_of_another_program(tmp_path):
    db = sqlite3.connect(tmp_path / JOURNAL_FILE)
    db.execute("CREATE TABLE run (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO run VALUES ('schema_version', '99')")
    db.commit()
    db.close()
    with pytest.raises(SwarmCNNError, match="version 99"):
        Journal.open(tmp_path)
