"""A journal edited by hand or damaged (issue 27): every value read back is checked where it is read, and a bad one
ends `runs show`, `report` and `search --resume` in one line that names the file, the table, the row and the field,
exit code 2, with nothing in the journal changed. A full disk is said to be one, never called damage.
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmcnn.cli import main
from swarmcnn.errors import SwarmCNNError
from swarmcnn.search import journal_checks
from swarmcnn.search.budget import Plan
from swarmcnn.search.journal import JOURNAL_FILE, Journal
from swarmcnn.search.journal_checks import RECORD_FIELDS

SEARCH = ["search", "digits", "--strategy", "random", "--evaluations", "4", "--candidate-epochs", "1",
          "--train-fraction", "0.3", "--final-epochs", "1", "--no-designs", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def finished(space, tmp_path_factory) -> Path:
    """A finished search with promotions, built once; each case damages a copy."""
    out = tmp_path_factory.mktemp("runs") / "finished"
    assert main([*SEARCH, "--space", str(space), "--out", str(out)]) == 0
    return out


def _copy(finished: Path, folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(finished, folder)
    return folder


def _write(run: Path, sql: str, *values) -> None:
    db = sqlite3.connect(run / JOURNAL_FILE)
    try:
        db.execute(sql, values)
        db.commit()
    finally:
        db.close()


def _journal_bytes(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.name.startswith(JOURNAL_FILE)}


COMMANDS = {
    "runs show": lambda run, tmp: ["runs", "show", str(run), "--json"],
    "report": lambda run, tmp: ["report", str(run), "--out", str(tmp / "report.html"), "--force"],
    "resume": lambda run, tmp: ["search", "--resume", str(run), "--quiet", "--threads", "1"],
}


def _outcome(argv: list[str], capsys) -> tuple[int, list[str]]:
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return code, [line for line in captured.err.splitlines() if line.strip()]


# -- the cases, and one per kind of value: table-driven ----------------------------------------------------

FIRST_PROMOTION = "id = (SELECT MIN(id) FROM promotions)"
RECORD_CASES = [
    # (id, SQL that damages the copy, words the one line holds)
    ("score-text", "UPDATE evaluations SET score = 'abc', val_accuracy = 'x' WHERE id = 4",
     ["table evaluations, row 4, field score", "'abc' is not a number"]),
    ("score-infinite", "UPDATE evaluations SET score = 1e999 WHERE id = 2", ["row 2, field score", "finite"]),
    ("accuracy-above-one", "UPDATE evaluations SET val_accuracy = 7.5 WHERE id = 1",
     ["row 1, field val_accuracy", "outside [0, 1]"]),
    ("spec-unparseable", "UPDATE evaluations SET spec = 'conv8x3 bogus7' WHERE id = 3",
     ["row 3, field spec", "not an architecture"]),
    ("status-unknown", "UPDATE evaluations SET status = 'great' WHERE id = 1", ["field status", "'great'"]),
    ("params-a-blob", "UPDATE evaluations SET params = x'00ff' WHERE id = 1", ["field params", "not a whole number"]),
    ("params-negative", "UPDATE evaluations SET params = -5 WHERE id = 1", ["field params", "-5"]),
    ("ok-without-accuracy", "UPDATE evaluations SET val_accuracy = NULL WHERE id = "
     "(SELECT MIN(id) FROM evaluations WHERE status = 'ok')", ["field val_accuracy", "status is 'ok'"]),
    ("origin-not-json", "UPDATE evaluations SET origin = '{oops' WHERE id = 1", ["field origin", "not JSON"]),
    ("promotion-at-rung-0", f"UPDATE promotions SET rung = 0 WHERE {FIRST_PROMOTION}", ["table promotions",
                                                                                        "field rung"]),
    ("seconds-negative", f"UPDATE promotions SET seconds = -1 WHERE {FIRST_PROMOTION}", ["table promotions",
                                                                                         "field seconds"]),
    ("state-not-json", "INSERT OR REPLACE INTO swarm_state VALUES (99, 'x', 0)", ["table swarm_state, row 99",
                                                                                   "field state"],
     ("report", "resume")),
    ("state-not-the-strategys", "INSERT OR REPLACE INTO swarm_state VALUES (99, '{}', 0)",
     ["table swarm_state, row 99", "does not fit strategy"], ("resume",)),
    ("final-a-string", "UPDATE run SET value = '\"oops\"' WHERE key = 'final'",
     ["table run, row 'final'", "not a JSON object"]),
    ("final-accuracy-text", "UPDATE run SET value = json_set(value, '$.best_val_accuracy', 'high') "
     "WHERE key = 'final'", ["row 'final', field best_val_accuracy"]),
    ("final-without-spec", "UPDATE run SET value = json_remove(value, '$.best_spec') WHERE key = 'final'",
     ["row 'final', field best_spec: is missing"]),
    # values `runs show` does not read: the report and a resume do
    ("search-seconds-text", "UPDATE run SET value = '\"long\"' WHERE key = 'search_seconds'",
     ["row 'search_seconds'", "not a number"], ("report", "resume")),
    ("started-far-future", "UPDATE run SET value = '1e300' WHERE key = 'started'", ["row 'started'"], ("report",)),
    ("fingerprint-a-number", "UPDATE run SET value = '5' WHERE key = 'data_fingerprint'",
     ["row 'data_fingerprint'", "not a text"], ("report", "resume")),
    ("value-a-blob", "UPDATE run SET value = x'ff00' WHERE key = 'search_seconds'", ["row 'search_seconds'", "JSON"],
     ("report", "resume")),
]


def _case(case_id, sql, words, readers=tuple(COMMANDS)):
    return pytest.param(sql, words, readers, id=case_id)


@pytest.mark.parametrize("sql, words, readers", [_case(*case) for case in RECORD_CASES])
def test_a_damaged_journal_value_ends_every_reader_in_one_line_naming_it_and_changes_nothing(
    sql, words, readers, finished, tmp_path, capsys
):
    run = _copy(finished, tmp_path / "run")
    _write(run, sql)
    before = _journal_bytes(run)
    for name in readers:
        code, lines = _outcome(COMMANDS[name](run, tmp_path), capsys)
        assert code == 2 and len(lines) == 1, (name, lines)
        assert f"journal '{run / JOURNAL_FILE}' is damaged" in lines[0], lines[0]
        for word in words:
            assert word in lines[0], (name, lines[0])
    assert _journal_bytes(run) == before  # readers change nothing in the file


@pytest.mark.parametrize(
    "plan, words",
    [
        ({"train_fraction": -5, "epochs": "x"}, ["row 'plan'", "missing"]),
        ({"train_fraction": -5, "epochs": "x", "max_seconds": None, "top_rung": 2}, ["field train_fraction", "-5"]),
        ({"train_fraction": 0.3, "epochs": "x", "max_seconds": None, "top_rung": 2}, ["field epochs", "'x'"]),
        ({"train_fraction": 0.3, "epochs": 1, "max_seconds": None, "top_rung": 500}, ["field top_rung", "500"]),
        ({"train_fraction": 0.3, "epochs": 1, "max_seconds": None, "top_rung": 2, "eta": 9}, ["field eta"]),
        ([1, 2], ["row 'plan'", "not a JSON object"]),
    ],
    ids=["fields-missing", "fraction-negative", "epochs-text", "rungs-huge", "unknown-field", "a-list"],
)
def test_a_plan_edited_by_hand_ends_resume_in_one_line(plan, words, finished, tmp_path, capsys):
    run = _copy(finished, tmp_path / "run")
    _write(run, "UPDATE run SET value = ? WHERE key = 'plan'", json.dumps(plan))
    _write(run, "DELETE FROM run WHERE key = 'final'")  # unfinished: the resume reads its plan to go on
    code, lines = _outcome(COMMANDS["resume"](run, tmp_path), capsys)
    assert code == 2 and len(lines) == 1 and "is damaged" in lines[0], lines
    assert all(word in lines[0] for word in words), lines[0]


def test_plan_from_dict_round_trips_and_names_the_bad_field():
    plan = Plan(0.3, 2, None, 2)
    assert Plan.from_dict(plan.to_dict()) == plan
    with pytest.raises(journal_checks.BadValue, match="field max_seconds"):
        Plan.from_dict({**plan.to_dict(), "max_seconds": math.inf})


# -- random values of every SQLite type in every column (Hypothesis) -----------------------------------------------

SQL_VALUES = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.sampled_from(["{}", "[]", "null", "1e999", "\"x\"", "{\"a\": 1}", "conv8x3 relu", "ok", "0.5", "-1",
                     '{"generation": "x", "rng": {}, "best_spec": null, "best_score": null}']),
)
TARGETS = [(table, column) for table in ("evaluations", "promotions") for column in RECORD_FIELDS] + [
    ("swarm_state", "state"),
    *(("run", key) for key in ("final", "plan", "settings", "search_seconds", "threads", "started",
                               "data_fingerprint", "time_bound")),
]


def _damage(run: Path, table: str, column: str, value) -> bool:
    """Write value where (table, column) says; False where SQLite refuses it (NOT NULL, UNIQUE)."""
    if table == "run":
        sql, values = "UPDATE run SET value = ? WHERE key = ?", (value, column)
    elif table == "swarm_state":  # a state after the last generation: the one a resume loads
        sql, values = "INSERT OR REPLACE INTO swarm_state VALUES (99, ?, 0)", (value,)
    else:
        sql, values = f"UPDATE {table} SET {column} = ? WHERE rowid = (SELECT MIN(rowid) FROM {table})", (value,)
    try:
        _write(run, sql, *values)
    except sqlite3.IntegrityError:
        return False
    return True


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(TARGETS), value=SQL_VALUES)
def test_any_value_in_any_journal_column_ends_normally_or_in_one_line(target, value, finished, tmp_path, capsys):
    run = _copy(finished, tmp_path / "run")
    if not _damage(run, *target, value):
        return
    before = _journal_bytes(run)
    for name, argv in COMMANDS.items():
        code, lines = _outcome(argv(run, tmp_path), capsys)
        assert code in (0, 2), (name, target, value, lines)
        if code == 2:
            assert len(lines) == 1 and lines[0].startswith("swarmcnn: error:"), (name, target, value, lines)
        if name != "resume":
            assert _journal_bytes(run) == before, (name, target, value)


# -- a full disk is a full disk, not damage -------------------------------------------------------------------------


def _small_disk(pages: int):
    """sqlite3.connect for a disk that holds `pages` pages: SQLite's own SQLITE_FULL, no tmpfs needed."""

    def connect(path, **options):
        db = sqlite3.connect(path, **options)
        db.execute(f"PRAGMA max_page_count = {pages}")
        return db

    return connect


def test_a_journal_created_on_a_full_disk_says_so_and_leaves_no_half_written_journal(tmp_path):
    with pytest.raises(SwarmCNNError, match="no space left on device") as refused:
        Journal.create(tmp_path / "run", {"source": "digits"}, connect=_small_disk(1))
    assert "damaged" not in str(refused.value) and JOURNAL_FILE in str(refused.value)
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["journal.lock"]  # bookkeeping only: reusable
    Journal.create(tmp_path / "run", {"source": "digits"}).close()


def test_a_journal_that_fills_the_disk_while_writing_keeps_what_it_holds(tmp_path):
    journal = Journal.create(tmp_path / "run", {"source": "digits"}, connect=_small_disk(8))
    try:
        with pytest.raises(SwarmCNNError, match="no space left on device") as refused:
            for i in range(1000):
                journal.put(f"key{i}", "x" * 2000)
        assert "damaged" not in str(refused.value)
    finally:
        journal.close()
    reopened = Journal.open(tmp_path / "run")
    assert reopened.get("settings") == {"source": "digits"} and reopened.get("key0") == "x" * 2000
    reopened.close()


@pytest.mark.parametrize(
    "error, damage",
    [
        (sqlite3.OperationalError("database or disk is full"), False),
        (sqlite3.OperationalError("disk I/O error"), False),
        (sqlite3.DatabaseError("database disk image is malformed"), True),
        (sqlite3.DatabaseError("file is not a database"), True),
    ],
)
def test_sqlite_errors_made_by_hand_are_told_apart_by_their_words(error, damage):
    assert journal_checks.is_damage(error) is damage


# -- a finished run whose final model is gone ---------------------------------------------------------------------


@pytest.mark.parametrize("harm", ["removed", "corrupt"])
def test_resume_of_a_finished_run_without_its_final_model_says_so(harm, finished, tmp_path, capsys):
    run = _copy(finished, tmp_path / "run")
    if harm == "removed":
        shutil.rmtree(run / "best")
    else:
        (run / "best" / "model.json").write_text("{")
    code, lines = _outcome(COMMANDS["resume"](run, tmp_path), capsys)
    assert code == 2 and len(lines) == 1, lines
    assert "has finished, but its final model cannot be read" in lines[0] and "swarmcnn train" in lines[0]
