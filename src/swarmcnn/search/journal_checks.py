"""What every value read back from a search journal must be, checked where it is read.

A journal is SQLite: anyone can edit it (`sqlite3 journal.sqlite "update ..."`), and SQLite keeps whatever
type it is given in any column ('abc' in a REAL column, a blob in an INTEGER one, 1e999 as infinity). A value
that swarmcnn cannot have written would otherwise surface far from where it was read (a string compared with a
float while ranking, a plan of missing fields while resuming), so each one is checked here, as `model.json`'s
fields are in checkpoint.py: type, range and finiteness. A check raises `BadValue(field, problem)`; the journal
turns it into one line naming the file, the table, the row and the field (`Journal.damaged`).
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from swarmcnn.ensemble import MAX_MEMBERS
from swarmcnn.errors import SpecError, SwarmCNNError, is_disk_full

STATUSES = ("ok", "diverged", "too-large", "too-slow", "out-of-memory", "failed")
# scores are validation accuracies, less 0.01 per decade of parameters with objective accuracy-params
SCORE_RANGE = (-1.0, 1.0)
LATEST_TIME = 2.0**37  # seconds since 1970 (year 6325): a later 'started' is no time the clock gave
MAX_THREADS = 4096  # a journaled thread count beyond any machine's cores is no count a search recorded
MAX_RUNGS = 20  # a plan of more promotion rungs is none a search made (the top rung's images grow 3**rungs)


class BadValue(ValueError):
    """A value read from the journal that swarmcnn cannot have written: the field and what is wrong with it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"field {field}: {problem}")
        self.field, self.problem = field, problem


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def whole(value, field: str, low: int = 0, high: int | None = None) -> int:
    """A whole number in [low, high] (SQLite gives integers as int; a bool is no count)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadValue(field, f"{_shown(value)} is not a whole number")
    if value < low or (high is not None and value > high):
        allowed = f"at least {low}" if high is None else f"from {low} to {high}"
        raise BadValue(field, f"{value} is not {allowed}")
    return value


def number(value, field: str, low: float = -math.inf, high: float = math.inf) -> float:
    """A finite number in [low, high] (1e999 reads back from SQLite as infinity, and NaN as NULL)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise BadValue(field, f"{_shown(value)} is not a number")
    if not math.isfinite(value):
        raise BadValue(field, f"{value} is not a finite number")
    if not low <= value <= high:
        raise BadValue(field, f"{value:g} is outside [{low:g}, {high:g}]")
    return float(value)


def optional(check: Callable, value, field: str, *bounds):
    """None (SQL NULL, JSON null), or a value that passes check."""
    return None if value is None else check(value, field, *bounds)


def text(value, field: str) -> str:
    if not isinstance(value, str):
        raise BadValue(field, f"{_shown(value)} is not a text")
    return value


def flag(value, field: str) -> bool:
    if not isinstance(value, bool):
        raise BadValue(field, f"{_shown(value)} is not true or false")
    return value


def spec_text(value, field: str) -> str:
    """The text of an architecture that parses: a candidate of another grammar cannot be ranked or trained."""
    from swarmcnn.spec import Spec

    text(value, field)
    try:
        Spec.parse(value)
    except (SpecError, ValueError, OverflowError) as error:
        raise BadValue(field, f"{_shown(value)} is not an architecture ({error})") from None
    return value


def json_value(value, field: str = "value"):
    """What JSON text (a blob, where someone wrote one) holds."""
    if not isinstance(value, (str, bytes)):
        raise BadValue(field, f"{_shown(value)} is not JSON text")
    try:
        return json.loads(value)
    except (ValueError, RecursionError) as error:  # ValueError: bad JSON or UTF-8
        raise BadValue(field, f"{_shown(value)} is not JSON ({str(error)[:80]})") from None


def json_object(value, field: str) -> dict:
    """Text holding a JSON object (as the journal writes origins and states)."""
    parsed = json_value(value, field)
    if not isinstance(parsed, dict):
        raise BadValue(field, f"{_shown(parsed)} is not a JSON object")
    return parsed


# -- the records of evaluations and promotions --------------------------------------------------------------

RECORD_FIELDS = ("spec", "status", "reason", "score", "val_accuracy", "val_loss", "params", "flops", "epochs",
                 "seconds", "worker", "generation", "origin", "rung", "images", "planned_images")


def checked_record(row: dict, table: str) -> dict:
    """The fields of EvaluationRecord from one row of `table` (evaluations, or promotions: rungs 1 and up),
    each checked; the score None of a failed candidate becomes -inf. Raises BadValue."""
    promotion = table == "promotions"
    values = {
        "spec": spec_text(row["spec"], "spec"),
        "status": _status(row["status"]),
        "reason": text(row["reason"], "reason"),
        "score": optional(number, row["score"], "score", *SCORE_RANGE),
        "val_accuracy": optional(number, row["val_accuracy"], "val_accuracy", 0.0, 1.0),
        "val_loss": optional(number, row["val_loss"], "val_loss", 0.0),
        "params": optional(whole, row["params"], "params"),
        "flops": optional(whole, row["flops"], "flops"),
        "epochs": whole(row["epochs"], "epochs"),
        "seconds": number(row["seconds"], "seconds", 0.0),
        "worker": text(row["worker"], "worker"),
        "generation": whole(row["generation"], "generation"),
        "origin": json_object(row["origin"], "origin"),
        "rung": whole(row["rung"], "rung", 1 if promotion else 0, None if promotion else 0),
        "images": whole(row["images"], "images"),
        "planned_images": whole(row["planned_images"], "planned_images"),
    }
    if values["status"] == "ok":  # a trained candidate is ranked by these, and placed by size
        for name in ("score", "val_accuracy", "params", "flops"):
            if values[name] is None:
                raise BadValue(name, f"is null but status is 'ok' (a trained candidate has a {name})")
    if values["score"] is None:
        values["score"] = -math.inf
    return values


def _status(value) -> str:
    text(value, "status")
    if value not in STATUSES:
        raise BadValue("status", f"{_shown(value)} is not one of {', '.join(STATUSES)}")
    return value


# -- the values of the run table (JSON) ----------------------------------------------------------------------

# what `runs show`, the report and a resume read of the final training's summary (Search._final_training)
FINAL_FIELDS: dict[str, Callable] = {
    "best_spec": spec_text,
    "best_rung": lambda v, f: whole(v, f),
    "best_val_accuracy": lambda v, f: number(v, f, 0.0, 1.0),
    "test_accuracy": lambda v, f: optional(number, v, f, 0.0, 1.0),
    "final_epochs": lambda v, f: whole(v, f, 1),
    "final_epochs_trained": lambda v, f: number(v, f, 0.0),
}
FINAL_OPTIONAL: dict[str, Callable] = {
    "final_status": text,
    "final_cut_by_time": flag,
    "final_seconds": lambda v, f: optional(number, v, f, 0.0),
    "final_allotted_seconds": lambda v, f: optional(number, v, f),
    "final_not_learning": lambda v, f: optional(whole, v, f),
    "final_retries": lambda v, f: whole(v, f),
    "final_members": lambda v, f: whole(v, f, 1, MAX_MEMBERS),
    "curve_exponent": lambda v, f: optional(number, v, f),
    "time_bound": flag,
    "provenance": lambda v, f: checked_provenance(v, f),
}


def checked_provenance(value, field: str = "provenance") -> dict:
    """Where the final network came from (search/provenance.py): found_by 'design' or 'swarm', and the rest."""
    _object(value, field)
    if value.get("found_by") not in ("design", "swarm"):
        raise BadValue(f"{field}.found_by", f"{_shown(value.get('found_by'))} is not 'design' or 'swarm'")
    for name in ("design", "strategy", "nearest_design"):
        if name in value:
            text(value[name], f"{field}.{name}")
    for name in ("generation", "design_distance"):
        if name in value:
            whole(value[name], f"{field}.{name}")
    if "origin" in value:
        _object(value["origin"], f"{field}.origin")
    return value


def checked_final(value) -> dict:
    """The final training's summary: a JSON object of FINAL_FIELDS (and, where present, FINAL_OPTIONAL)."""
    if not isinstance(value, dict):
        raise BadValue("value", f"{_shown(value)} is not a JSON object")
    missing = [name for name in FINAL_FIELDS if name not in value]
    if missing:
        raise BadValue(missing[0], "is missing")
    for name, check in {**FINAL_FIELDS, **FINAL_OPTIONAL}.items():
        if name in value:
            check(value[name], name)
    return value


def _object(value, field: str = "value") -> dict:
    if not isinstance(value, dict):
        raise BadValue(field, f"{_shown(value)} is not a JSON object")
    return value


# key of the run table -> the check of its (JSON-decoded) value; keys not named here are not read by swarmcnn
RUN_VALUES: dict[str, Callable] = {
    "schema_version": lambda v: v,  # Journal._check compares it with SCHEMA_VERSION and says which it found
    "settings": _object,  # SearchConfig.from_journal checks every setting
    "plan": _object,  # Plan.from_dict checks its fields
    "final": checked_final,
    "started": lambda v: number(v, "value", 0.0, LATEST_TIME),
    "search_seconds": lambda v: number(v, "value", 0.0),
    "data_fingerprint": lambda v: text(v, "value"),
    "threads": lambda v: whole(v, "value", 1, MAX_THREADS),
    "time_bound": lambda v: flag(v, "value"),
}


# -- SQLite's own errors -------------------------------------------------------------------------------------

# SQLite's primary result codes that say the file cannot be used now (busy, read-only, a full disk, an I/O error),
# not that it is damaged; extended codes (SQLITE_IOERR_SHMSIZE of a full disk) carry them in their low byte
_NOT_DAMAGE = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN,
               sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_PERM, sqlite3.SQLITE_NOMEM)


def is_damage(error: sqlite3.DatabaseError) -> bool:
    """Whether SQLite's error says the file is not a sound journal (rather than busy, read-only or out of space):
    a journal on a full disk must never be called damaged, since a damaged one is not resumed."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:  # an error made by hand, or by an older sqlite3 module: its words say which
        words = str(error).lower()
        return not (is_disk_full(error) or "locked" in words or "readonly" in words or "disk i/o" in words)
    return code & 0xFF not in _NOT_DAMAGE


LOW_SPACE = 2**20  # an I/O error with less free on the journal's disk (SQLITE_IOERR_SHMSIZE, say) is a full disk


def unwritable(path: Path, error: BaseException) -> SwarmCNNError:
    """A journal that cannot be used now: the disk is full, the file is busy or read-only; nothing is lost.

    SQLite reports a full disk as SQLITE_FULL, but also as an I/O error where it maps its shared-memory file
    (SQLITE_IOERR_SHMSIZE): that one is taken for a full disk where the disk has almost nothing free."""
    code = getattr(error, "sqlite_errorcode", None)
    if is_disk_full(error) or (code is not None and code & 0xFF == sqlite3.SQLITE_IOERR and _low_space(path)):
        return SwarmCNNError(
            f"journal '{path}' cannot be written: no space left on device (the disk is full); what is journaled is "
            "kept: free some space and try again"
        )
    return SwarmCNNError(f"journal '{path}' cannot be used: {error}")


def _low_space(path: Path) -> bool:
    try:
        return shutil.disk_usage(Path(path).parent).free < LOW_SPACE
    except OSError:
        return False
