"""The search journal: every evaluation and the swarm's state after each generation, in SQLite.

Each write is its own transaction (WAL mode), so a search killed at any moment (kill -9 included) loses at
most the evaluations that were still training; `swarmcnn search --resume` picks up from here. A search holds
its run folder's lock (journal.lock) while it runs, so that a second one of the same run is refused. Every value
read back is checked (journal_checks.py): a journal edited by hand ends in one line naming its table, row and
field, and a reader changes nothing in the file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from swarmcnn.errors import SwarmCNNError
from swarmcnn.search.journal_checks import (
    RECORD_FIELDS,
    RUN_VALUES,
    BadValue,
    checked_record,
    is_damage,
    json_object,
    json_value,
    unwritable,
)
from swarmcnn.search.runlock import LOCK_FILE, RunLock

JOURNAL_FILE = "journal.sqlite"
NEW_JOURNAL_PREFIX = ".journal.sqlite.new."  # + pid: a journal being created, renamed to JOURNAL_FILE once whole
SCHEMA_VERSION = 2  # 2: the fidelity of every record (rung, images seen and planned)

_RECORD_COLUMNS = """
    id INTEGER PRIMARY KEY,           -- order of completion
    generation INTEGER NOT NULL,
    spec TEXT NOT NULL,
    rung INTEGER NOT NULL,            -- fidelity: 0 for every candidate, k for the k-th promotion
    status TEXT NOT NULL,             -- ok, diverged, too-large, too-slow, out-of-memory, failed
    reason TEXT NOT NULL,
    score REAL,                       -- NULL: the worst score (a failed candidate)
    val_accuracy REAL,
    val_loss REAL,
    params INTEGER,
    flops INTEGER,
    epochs INTEGER,
    seconds REAL NOT NULL,
    worker TEXT NOT NULL,
    origin TEXT NOT NULL,             -- JSON: where the strategy got it (e.g. particle number)
    images INTEGER NOT NULL,          -- training images seen
    planned_images INTEGER NOT NULL,  -- what its schedule planned; fewer seen: its time limit compressed it
    created REAL NOT NULL,
    UNIQUE (spec, rung)               -- identical specs are scored once at each fidelity
"""
# evaluations: every candidate of the search (rung 0); promotions: the best trained again, longer (rungs 1, 2 ...)
RECORD_TABLES = ("evaluations", "promotions")
_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS run (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL               -- JSON
);
CREATE TABLE IF NOT EXISTS swarm_state (
    generation INTEGER PRIMARY KEY,   -- the state after telling this many generations
    state TEXT NOT NULL,              -- JSON: positions, velocities, bests, random generator state
    created REAL NOT NULL
);
"""
    + "".join(f"CREATE TABLE IF NOT EXISTS {table} ({_RECORD_COLUMNS});\n" for table in RECORD_TABLES)
)


@dataclass(frozen=True)
class EvaluationRecord:
    """One scored candidate, as stored."""

    spec: str
    status: str
    reason: str
    score: float  # -inf for a failed candidate
    val_accuracy: float | None
    val_loss: float | None
    params: int | None
    flops: int | None
    epochs: int
    seconds: float
    worker: str = "main"
    generation: int = 0
    origin: dict | None = None
    rung: int = 0
    images: int = 0  # training images seen
    planned_images: int = 0  # what the schedule planned

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def trained(self) -> bool:
        """Whether it was trained at all (too large and too slow candidates are refused before)."""
        return self.status not in UNTRAINED

    @property
    def compressed(self) -> bool:
        """Whether its time limit ended its schedule before the planned images."""
        return self.ok and self.images < self.planned_images


UNTRAINED = ("too-large", "too-slow")  # statuses given without training


def ranked(records: Iterable[EvaluationRecord]) -> list[EvaluationRecord]:
    """The candidates that trained, best score first; of equal scores the lower validation loss first (a small
    validation split ties often: eight cases of GunPoint score 1.0 for many networks), then in the order given."""
    return sorted((r for r in records if r.ok), key=lambda r: (r.score, -_loss(r)), reverse=True)


def _loss(record: EvaluationRecord) -> float:
    return math.inf if record.val_loss is None else record.val_loss


class Journal:
    """One run directory's SQLite file.

    A journal is created whole or not at all (see `create`); `open` checks it before anything reads it, and a
    damaged file (corrupt pages, settings edited by hand) is named in one line, never a traceback.
    """

    def __init__(
        self, path: Path, lock: RunLock | None = None, write: bool = True, connect: Callable = sqlite3.connect
    ) -> None:
        """write: set the journal up for writing (WAL mode); a reader changes nothing in the file.
        connect: sqlite3.connect or a stand-in (a seam for tests of a full disk)."""
        self.path, self.lock = path, lock
        self.db = connect(path, isolation_level=None)  # explicit transactions below
        try:
            with self._guard("not a readable journal"):
                if write:
                    self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")
        except SwarmCNNError:
            self.db.close()
            raise

    @classmethod
    def create(cls, run_dir: Path, settings: dict, connect: Callable = sqlite3.connect, **values) -> Journal:
        """A new journal holding the run's settings (and values such as the data's fingerprint), locked by this
        process; refuses to overwrite another run.

        It is written complete under a temporary name and renamed into place: a search killed while creating
        it leaves either a whole journal or none, and a folder without one can be used again. A disk that is
        full ends in one line that says so, and leaves no half-written journal behind."""
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / JOURNAL_FILE
        if path.exists():
            raise _already_a_run(run_dir)
        lock = RunLock(run_dir)
        new = run_dir / f"{NEW_JOURNAL_PREFIX}{os.getpid()}"
        try:
            if path.exists():  # created by another process since the check above
                raise _already_a_run(run_dir)
            remove_unfinished(run_dir)
            first = {"schema_version": SCHEMA_VERSION, "settings": settings, "started": time.time(), **values}
            try:
                _write_new(new, first, connect)
                os.replace(new, path)
            except (sqlite3.Error, OSError) as error:
                raise unwritable(path, error) from None
            return cls(path, lock, connect=connect)
        except BaseException:
            new.unlink(missing_ok=True)
            lock.release()
            raise

    @classmethod
    def open(cls, run_dir: Path, lock: bool = False) -> Journal:
        """A run's journal, checked whole (pages and version); with lock, this process's alone until `close`, and
        set up for writing (without, nothing in the file is changed)."""
        path = Path(run_dir) / JOURNAL_FILE
        if not path.is_file():
            started = Path(run_dir).is_dir() and any(is_bookkeeping(p.name) for p in Path(run_dir).iterdir())
            hint = "; a search stopped before its journal was whole: start it again with that --out" if started else ""
            raise SwarmCNNError(f"'{run_dir}' is not a search run directory: it has no {JOURNAL_FILE}{hint}")
        run_lock = RunLock(Path(run_dir)) if lock else None
        journal = None
        try:
            journal = cls(path, run_lock, write=lock)
            journal._check()
        except BaseException:
            if journal is not None:
                journal.close()
            elif run_lock is not None:
                run_lock.release()
            raise
        if run_lock is not None:
            remove_unfinished(Path(run_dir))  # what a start killed before its journal was complete left
        return journal

    def _check(self) -> None:
        """SQLite's quick check of every page, then the version: a damaged file fails here, not mid-search."""
        with self._guard("not a readable journal"):
            problems = [row[0] for row in self.db.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise self.damaged(" ".join(" ".join(problems).split())[:300])  # SQLite's report, on one line
        version = self.get("schema_version")
        if version is None:
            raise self.damaged("it holds no schema version")
        if version != SCHEMA_VERSION:
            raise SwarmCNNError(
                f"'{self.path}' has journal version {version!r}; this swarmcnn reads {SCHEMA_VERSION}"
            )

    def damaged(self, why: str) -> SwarmCNNError:
        """The one-line error for a journal whose content cannot be what swarmcnn wrote."""
        return SwarmCNNError(f"journal '{self.path}' is damaged: {why}")

    def bad_value(self, table: str, row, error: BadValue) -> SwarmCNNError:
        """The one-line error for a value of the journal that swarmcnn cannot have written, naming where it is."""
        return self.damaged(f"table {table}, row {row!r}, {error}")

    @contextlib.contextmanager
    def _guard(self, what: str = ""):
        """SQLite's errors (corrupt pages), and JSON's and UTF-8's (edited text), as one line naming the file; a
        full disk or a busy file is said to be that, not damage."""
        try:
            yield
        except (sqlite3.DatabaseError, ValueError) as error:  # ValueError: bad JSON or UTF-8
            if not isinstance(error, sqlite3.DatabaseError) or is_damage(error):
                raise self.damaged(f"{what} ({error})" if what else str(error)) from None
            raise unwritable(self.path, error) from None

    @contextlib.contextmanager
    def _transaction(self):
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error: all of a write or none of it."""
        with self._guard():
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                if self.db.in_transaction:  # SQLite itself rolls back on some errors (a full disk)
                    self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def _put(self, key: str, value) -> None:
        self.db.execute("INSERT OR REPLACE INTO run (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def put(self, key: str, value) -> None:
        with self._transaction():
            self._put(key, value)

    def get(self, key: str, default=None, parse: Callable | None = None):
        """The run value of key, default where there is none; checked as journal_checks.RUN_VALUES says, then made
        into what the caller needs by parse (such as Plan.from_dict), whose BadValue names the field."""
        with self._guard("its table run cannot be read"):
            row = self.db.execute("SELECT value FROM run WHERE key = ?", (key,)).fetchone()
        if row is None:
            return default
        try:
            value = json_value(row[0])
            value = RUN_VALUES[key](value) if key in RUN_VALUES else value
            return value if parse is None else parse(value)
        except BadValue as error:
            raise self.bad_value("run", key, error) from None

    def record(self, record: EvaluationRecord, table: str = "evaluations") -> None:
        """Store one scored candidate, in `evaluations` or, trained again longer, in `promotions`."""
        _check_table(table)
        values = asdict(record)
        values["score"] = None if record.score == -math.inf else record.score
        values["origin"] = json.dumps(record.origin or {})
        values["created"] = time.time()
        columns = ", ".join(values)
        with self._transaction():
            self.db.execute(
                f"INSERT OR IGNORE INTO {table} ({columns}) VALUES ({', '.join('?' * len(values))})",
                tuple(values.values()),
            )

    def evaluations(self, table: str = "evaluations") -> list[EvaluationRecord]:
        """All evaluations (or promotions) in the order they finished, every value checked (journal_checks)."""
        _check_table(table)
        with self._guard(f"its table {table} cannot be read"):
            rows = self.db.execute(f"SELECT id, {', '.join(RECORD_FIELDS)} FROM {table} ORDER BY id").fetchall()
        records = []
        for row_id, *values in rows:
            try:
                records.append(EvaluationRecord(**checked_record(dict(zip(RECORD_FIELDS, values)), table)))
            except BadValue as error:
                raise self.bad_value(table, row_id, error) from None
        return records

    def count(self) -> int:
        with self._guard():
            return self.db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]

    def save_state(self, generation: int, state: dict, **values) -> None:
        """The strategy's state after `generation`, with run values that must change with it (in one write)."""
        with self._transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO swarm_state (generation, state, created) VALUES (?, ?, ?)",
                (generation, json.dumps(state), time.time()),
            )
            for key, value in values.items():
                self._put(key, value)

    def last_state(self) -> dict | None:
        states = self.states(last=True)
        return states[0][1] if states else None

    def restore_state(self, strategy) -> None:
        """Load the last generation's state into strategy (none before the first): a state it cannot take (a
        field missing or of the wrong type) names the journal damaged, as any other value read back does."""
        states = self.states(last=True)
        if not states:
            return
        generation, state = states[0]
        try:
            strategy.load_state_dict(state)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError, SwarmCNNError) as error:
            problem = f"does not fit strategy {type(strategy).__name__} ({type(error).__name__}: {str(error)[:80]})"
            raise self.bad_value("swarm_state", generation, BadValue("state", problem)) from None

    def states(self, last: bool = False) -> list[tuple[int, dict]]:
        """(generation, state) of every generation told, in order (or only the latest): each state a JSON object."""
        with self._guard("its swarm state cannot be read"):
            rows = self.db.execute(
                "SELECT generation, state FROM swarm_state ORDER BY generation" + (" DESC LIMIT 1" if last else "")
            ).fetchall()
        states = []
        for generation, state in rows:
            try:
                states.append((generation, json_object(state, "state")))
            except BadValue as error:
                raise self.bad_value("swarm_state", generation, error) from None
        return states

    def discard(self, remove_folder: bool = False) -> None:
        """Remove this journal, just created by a start that then failed, with its lock (and its folder, if the
        start made it): the folder is as it was before, and can be used again."""
        self.db.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self.unlock()
        (self.path.parent / LOCK_FILE).unlink(missing_ok=True)
        if remove_folder:
            with contextlib.suppress(OSError):
                self.path.parent.rmdir()

    def unlock(self) -> None:
        """Let another process continue this run (the journal stays readable here)."""
        if self.lock is not None:
            self.lock.release()

    def close(self) -> None:
        self.db.close()
        self.unlock()


def _check_table(table: str) -> None:
    if table not in RECORD_TABLES:  # table names cannot be SQL parameters: only these
        raise ValueError(f"no journal table of evaluations named {table!r}")


def _already_a_run(run_dir: Path) -> SwarmCNNError:
    return SwarmCNNError(f"'{run_dir}' already holds a search; continue it with --resume {run_dir}")


def _write_new(path: Path, values: dict, connect: Callable = sqlite3.connect) -> None:
    """A complete journal at path: the schema and the run's values, committed, in SQLite's default rollback mode
    (WAL's side files would carry the temporary name)."""
    path.unlink(missing_ok=True)
    db = connect(path)
    try:
        db.executescript(_SCHEMA)
        db.executemany("INSERT INTO run (key, value) VALUES (?, ?)", [(k, json.dumps(v)) for k, v in values.items()])
        db.commit()
    finally:
        db.close()


def remove_unfinished(run_dir: Path) -> None:
    """Remove journals a killed start left half-written (call it holding the run's lock: no start is under way)."""
    for path in run_dir.glob(f"{NEW_JOURNAL_PREFIX}*"):
        path.unlink(missing_ok=True)


def is_bookkeeping(name: str) -> bool:
    """Whether a file of a run folder is the lock or an unfinished journal, which a new search may use the folder
    despite."""
    return name == LOCK_FILE or name.startswith(NEW_JOURNAL_PREFIX)


def check_run_folder(run_dir: Path) -> None:
    """Refuse an --out that a new search cannot use: a file, or a folder of other files than a run's."""
    if run_dir.exists() and not run_dir.is_dir():
        raise SwarmCNNError(f"--out '{run_dir}' exists and is not a folder")
    files = [p.name for p in run_dir.iterdir()] if run_dir.is_dir() else []
    if JOURNAL_FILE not in files and not all(is_bookkeeping(name) for name in files):
        raise SwarmCNNError(f"--out '{run_dir}' is a folder with other files in it; choose a new or empty folder")
