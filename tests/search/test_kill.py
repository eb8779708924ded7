"""kill -9 of a search at any moment, then --resume (or the same command again, where no journal was made yet),
ends exactly as the uninterrupted search: the same rows in the same order, the same promotions, the same final
spec and test accuracy. And a killed search's worker processes do not outlive it.

Each search is a subprocess of a few seconds: 14 candidates of a tiny space on digits (two designs and the
first generation of 8 are told, so promotions are decided mid-search, then the finishing climb), a final
training long enough to be killed in.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from swarmcnn.search.journal import JOURNAL_FILE, NEW_JOURNAL_PREFIX

EVALUATIONS = 14
TIMEOUT = 120  # seconds for any one search on a busy machine


def _command(space: Path, out: Path, *extra: str) -> list[str]:
    options = ["--evaluations", EVALUATIONS, "--candidate-epochs", 1, "--train-fraction", 0.3, "--final-epochs", 8]
    options += ["--seed", 3, "--threads", 1, "--space", space, "--out", out, "--quiet", *extra]
    return [sys.executable, "-m", "swarmcnn", "search", "digits", *map(str, options)]


def _resume_command(out: Path) -> list[str]:
    return [sys.executable, "-m", "swarmcnn", "search", "--resume", str(out), "--quiet"]


def _journal_rows(run_dir: Path) -> dict:
    """What must not depend on a kill: every record in journal order, the swarm states and the final choice."""
    db = sqlite3.connect(f"file:{run_dir / JOURNAL_FILE}?mode=ro", uri=True)
    try:
        columns = "spec, status, score, val_accuracy, params, generation, origin, rung, images"
        rows = {
            table: db.execute(f"SELECT {columns} FROM {table} ORDER BY id").fetchall()
            for table in ("evaluations", "promotions")
        }
        rows["swarm_state"] = db.execute("SELECT generation, state FROM swarm_state ORDER BY generation").fetchall()
        final = json.loads(db.execute("SELECT value FROM run WHERE key = 'final'").fetchone()[0])
    finally:
        db.close()
    rows["final"] = {key: final[key] for key in ("best_spec", "best_rung", "best_val_accuracy", "test_accuracy")}
    return rows


def _counts(run_dir: Path) -> tuple[int, int]:
    """Evaluations and promotions journaled so far; (-1, -1) before the journal exists."""
    if not (run_dir / JOURNAL_FILE).exists():
        return -1, -1
    try:
        db = sqlite3.connect(f"file:{run_dir / JOURNAL_FILE}?mode=ro", uri=True)
        try:
            return tuple(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("evaluations", "promotions"))
        finally:
            db.close()
    except sqlite3.OperationalError:  # a write under way
        return -1, -1


def _kill_when(command: list[str], run_dir: Path, ready) -> subprocess.Popen:
    """Start command, SIGKILL it as soon as ready(run_dir) holds; returns the ended process."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + TIMEOUT
    while not ready(run_dir) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.kill()  # a no-op if it already ended
    proc.communicate(timeout=TIMEOUT)
    return proc


def _continue(space: Path, run_dir: Path) -> subprocess.CompletedProcess:
    """What a user does after a kill: --resume where a journal was made, else the same command again."""
    command = _resume_command(run_dir) if (run_dir / JOURNAL_FILE).exists() else _command(space, run_dir)
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def reference(space, tmp_path_factory) -> dict:
    """The uninterrupted search, and how many evaluations and promotions it journals."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    done = subprocess.run(_command(space, run_dir), capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    rows = _journal_rows(run_dir)
    assert len(rows["evaluations"]) == EVALUATIONS
    assert rows["swarm_state"] and len(rows["promotions"]) >= 3  # promotions decided mid-search, and the climb
    return rows


def _journal_begun(run_dir: Path) -> bool:
    """The journal is being written under its temporary name, or is in place."""
    return (run_dir / JOURNAL_FILE).exists() or any(run_dir.glob(f"{NEW_JOURNAL_PREFIX}*"))


def _moments(reference: dict) -> dict:
    evaluations, promotions = len(reference["evaluations"]), len(reference["promotions"])
    return {
        "at-once": lambda run_dir: True,
        "journal-appears": _journal_begun,
        "mid-designs": lambda run_dir: _counts(run_dir)[0] >= 1,
        "mid-candidates": lambda run_dir: _counts(run_dir)[0] >= 6,
        "mid-promotions": lambda run_dir: _counts(run_dir)[1] >= 1,
        "final-training": lambda run_dir: _counts(run_dir) == (evaluations, promotions),
    }


@pytest.mark.parametrize(
    "moment", ["at-once", "journal-appears", "mid-designs", "mid-candidates", "mid-promotions", "final-training"]
)
def test_search_killed_at_any_moment_resumes_to_the_uninterrupted_result(space, reference, tmp_path, moment):
    run_dir = tmp_path / "run"
    killed = _kill_when(_command(space, run_dir), run_dir, _moments(reference)[moment])
    assert killed.returncode == -signal.SIGKILL, f"it ended before the kill: {killed.stderr}"
    done = _continue(space, run_dir)
    assert done.returncode == 0, done.stderr
    assert _journal_rows(run_dir) == reference


def test_search_killed_again_and_again_at_random_moments_ends_as_the_uninterrupted_one(space, reference, tmp_path):
    run_dir, chance = tmp_path / "run", random.Random(13)
    kills = 0
    for _ in range(6):
        kill_at = time.monotonic() + chance.uniform(0.0, 2.5)
        command = _resume_command(run_dir) if (run_dir / JOURNAL_FILE).exists() else _command(space, run_dir)
        proc = _kill_when(command, run_dir, lambda _, kill_at=kill_at: time.monotonic() >= kill_at)
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        kills += 1
    else:
        assert _continue(space, run_dir).returncode == 0
    assert kills >= 1
    assert _journal_rows(run_dir) == reference


# -- workers ---------------------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """The live processes whose parent is pid, from /proc (a zombie, dead but not reaped yet, is not live)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # the command name is in parentheses and may hold spaces: the fields after it are fixed
                state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            except (OSError, IndexError, ValueError):  # ended meanwhile
                continue
            if int(parent) == pid and state != "Z":
                children.append(int(entry.name))
    return children


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc (Linux)")
def test_killed_search_leaves_no_worker_process_behind(space, tmp_path):
    run_dir = tmp_path / "run"
    command = _command(space, run_dir, "--workers", "2")
    command[command.index("--evaluations") + 1] = "200"  # still searching when it is killed
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while (_counts(run_dir)[0] < 1 or len(_children(proc.pid)) < 3) and proc.poll() is None:
            assert time.monotonic() < deadline, "no worker processes appeared"
            time.sleep(0.05)
        children = _children(proc.pid)  # two workers and multiprocessing's resource tracker
        assert len(children) >= 3, f"expected two workers and a resource tracker, found {children}"
    finally:
        proc.kill()
        proc.communicate(timeout=TIMEOUT)
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in children if _alive(pid)], "processes of the killed search are still running"
