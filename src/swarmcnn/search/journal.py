"""The search journal: every evaluation and the swarm's state after each generation, in SQLite.

Each write is its own transaction (WAL mode), so a search killed at any moment (kill -9 included) loses at
most the evaluations that were still training; `swarmcnn search --resume` picks up from here.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from swarmcnn.errors import SwarmCNNError

JOURNAL_FILE = "journal.sqlite"
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
    """The candidates that trained, best score first (equal scores in the order given)."""
    return sorted((r for r in records if r.ok), key=lambda r: r.score, reverse=True)


class Journal:
    """One run directory's SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)  # explicit transactions below
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)  # CREATE ... IF NOT EXISTS: safe on an existing journal

    @classmethod
    def create(cls, run_dir: Path, settings: dict) -> Journal:
        """A new journal holding the run's settings; refuses to overwrite another run."""
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / JOURNAL_FILE
        if path.exists():
            raise SwarmCNNError(f"'{run_dir}' already holds a search; continue it with --resume {run_dir}")
        journal = cls(path)
        with journal._transaction():
            journal._put("schema_version", SCHEMA_VERSION)
            journal._put("settings", settings)
            journal._put("started", time.time())
        return journal

    @classmethod
    def open(cls, run_dir: Path) -> Journal:
        path = Path(run_dir) / JOURNAL_FILE
        if not path.is_file():
            raise SwarmCNNError(f"'{run_dir}' is not a search run directory: it has no {JOURNAL_FILE}")
        try:
            journal = cls(path)
            version = journal.get("schema_version")
        except sqlite3.DatabaseError as error:
            raise SwarmCNNError(f"'{path}' is not a readable journal: {error}") from None
        if version != SCHEMA_VERSION:
            raise SwarmCNNError(f"'{path}' has journal version {version!r}; this swarmcnn reads {SCHEMA_VERSION}")
        return journal

    def _transaction(self):
        return _Transaction(self.db)

    def _put(self, key: str, value) -> None:
        self.db.execute("INSERT OR REPLACE INTO run (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def put(self, key: str, value) -> None:
        with self._transaction():
            self._put(key, value)

    def get(self, key: str, default=None):
        row = self.db.execute("SELECT value FROM run WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

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
        """All evaluations (or promotions) in the order they finished."""
        _check_table(table)
        rows = self.db.execute(
            "SELECT spec, status, reason, score, val_accuracy, val_loss, params, flops, epochs, seconds, worker, "
            f"generation, origin, rung, images, planned_images FROM {table} ORDER BY id"
        ).fetchall()
        return [
            EvaluationRecord(
                *row[:3], -math.inf if row[3] is None else row[3], *row[4:12], json.loads(row[12]), *row[13:]
            )
            for row in rows
        ]

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]

    def save_state(self, generation: int, state: dict) -> None:
        with self._transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO swarm_state (generation, state, created) VALUES (?, ?, ?)",
                (generation, json.dumps(state), time.time()),
            )

    def last_state(self) -> dict | None:
        row = self.db.execute("SELECT state FROM swarm_state ORDER BY generation DESC LIMIT 1").fetchone()
        return json.loads(row[0]) if row else None

    def close(self) -> None:
        self.db.close()


def _check_table(table: str) -> None:
    if table not in RECORD_TABLES:  # table names cannot be SQL parameters: only these
        raise ValueError(f"no journal table of evaluations named {table!r}")


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error: all of a write or none of it."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, error, trace) -> None:
        self.db.execute("ROLLBACK" if kind else "COMMIT")
