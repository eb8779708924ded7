"""Faults around a search run: a damaged journal, two searches of one run at once, data changed under a run, a
start that fails or is killed, settings that cannot score, and the best_ fields of `runs show` agreeing.

Each fault ends with one line naming the culprit and exit code 2, never a traceback, and leaves the run (or
the folder) as usable as before.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from swarmcnn.cli import main
from swarmcnn.data import Split
from swarmcnn.errors import SwarmCNNError
from swarmcnn.search.evaluate import EvaluationConfig
from swarmcnn.search.journal import JOURNAL_FILE, LOCK_FILE, NEW_JOURNAL_PREFIX, Journal
from swarmcnn.search.loop import Search, SearchConfig
from swarmcnn.search.runs import describe_run
from swarmcnn.search.space import SearchSpace
from swarmcnn.spec import Spec
from tests.search.fakes import StopBeforeFinal

TINY = SearchSpace(blocks=(1, 1), convs_per_block=(1, 1), features=(8, 16), fc_layers=(0, 1), neurons=(16, 32))
CHEAP = EvaluationConfig(epochs=1, train_fraction=0.3)


def _config(**changes) -> SearchConfig:
    values = dict(
        source="digits", strategy="random", evaluations=4, final_epochs=1, space=TINY, evaluation=CHEAP, designs=False
    )
    return SearchConfig(**{**values, **changes})


def _search_args(space: Path, out: Path, *extra: str) -> list[str]:
    return [
        "search", "digits", "--strategy", "random", "--evaluations", "4", "--candidate-epochs", "1",
        "--train-fraction", "0.3", "--final-epochs", "1", "--space", str(space), "--out", str(out), "--quiet", *extra,
    ]


def _one_line_error(capsys, *words: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("swarmcnn: error:"), captured.err
    assert "Traceback" not in captured.err + captured.out
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def finished(space, tmp_path_factory) -> Path:
    """A finished search with promotions (two rungs), copied by the tests that damage it."""
    out = tmp_path_factory.mktemp("runs") / "finished"
    assert main(_search_args(space, out, "--threads", "1")) == 0
    return out


@pytest.fixture
def run_copy(finished, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    return copy


# -- a damaged journal -------------------------------------------------------------------------------------------


def _overwrite(path: Path, offset: int, size: int) -> None:
    with path.open("r+b") as file:
        file.seek(offset)
        file.write(b"\xa5" * size)


def _assert_damaged(capsys, run_dir: Path, *words: str) -> None:
    """runs show and search --resume both name the damaged journal in one line, exit 2."""
    for argv in (["runs", "show", str(run_dir), "--json"], ["search", "--resume", str(run_dir), "--quiet"]):
        assert main(argv) == 2, argv
        _one_line_error(capsys, f"journal '{run_dir / JOURNAL_FILE}' is damaged", *words)


def test_journal_with_a_corrupt_page_in_the_middle_is_named_damaged(run_copy, capsys):
    journal = run_copy / JOURNAL_FILE
    pages = journal.stat().st_size // 4096
    _overwrite(journal, pages // 2 * 4096, 4096)
    _assert_damaged(capsys, run_copy)


def test_journal_with_its_header_overwritten_is_named_damaged(run_copy, capsys):
    _overwrite(run_copy / JOURNAL_FILE, 0, 4096)
    _assert_damaged(capsys, run_copy)


def test_a_corrupt_page_anywhere_gives_one_line_or_an_intact_answer_never_a_traceback(finished, tmp_path, capsys):
    pages = (finished / JOURNAL_FILE).stat().st_size // 4096
    damaged = 0
    for page in range(pages):
        for offset, size in ((0, 4096), (4000, 96)):  # a whole page; a few bytes at its end, where rows lie
            run_dir = tmp_path / f"page{page}-{offset}"
            shutil.copytree(finished, run_dir)
            _overwrite(run_dir / JOURNAL_FILE, page * 4096 + offset, size)
            code = main(["runs", "show", str(run_dir), "--json"])
            captured = capsys.readouterr()
            assert "Traceback" not in captured.err
            if code == 2:
                assert len(captured.err.strip().splitlines()) == 1 and "is damaged" in captured.err, captured.err
                damaged += 1
            else:
                assert code == 0 and json.loads(captured.out)["evaluations"] == 4
    assert damaged >= pages  # every page holds something: most overwrites are found


def _edit_run_value(run_dir: Path, key: str, text: str | None) -> None:
    db = sqlite3.connect(run_dir / JOURNAL_FILE)
    if text is None:
        db.execute("DELETE FROM run WHERE key = ?", (key,))
    else:
        db.execute("UPDATE run SET value = ? WHERE key = ?", (text, key))
    db.commit()
    db.close()


def _settings(run_dir: Path) -> dict:
    journal = Journal.open(run_dir)
    try:
        return journal.get("settings")
    finally:
        journal.close()


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: "{not json",
        lambda s: "[1, 2]",
        lambda s: "null",
        lambda s: json.dumps({**s, "seed": "five"}),
        lambda s: json.dumps({**s, "seed": -1}),
        lambda s: json.dumps({**s, "evaluations": -3}),
        lambda s: json.dumps({**s, "workers": 1.5}),
        lambda s: json.dumps({**s, "designs": "yes"}),
        lambda s: json.dumps({**s, "strategy": 7}),
        lambda s: json.dumps({**s, "colour": "blue"}),
        lambda s: json.dumps({k: v for k, v in s.items() if k != "data"}),
        lambda s: json.dumps({k: v for k, v in s.items() if k != "source"}),
        lambda s: json.dumps({**s, "data": {**s["data"], "val_fraction": "much"}}),
        lambda s: json.dumps({**s, "data": {**s["data"], "image_size": ["8", 8]}}),
        lambda s: json.dumps({**s, "data": 3}),
        lambda s: json.dumps({**s, "evaluation": {**s["evaluation"], "epochs": None}}),
        lambda s: json.dumps({**s, "space": {**s["space"], "blocks": "many"}}),
    ],
    ids=[
        "invalid-json", "a-list", "null", "seed-a-string", "seed-negative", "evaluations-negative",
        "workers-a-float", "designs-a-string", "strategy-a-number", "unknown-key", "no-data", "no-source",
        "val-fraction-a-string", "image-size-strings", "data-a-number", "epochs-null", "space-blocks-a-string",
    ],
)
def test_settings_edited_by_hand_name_the_journal_damaged(run_copy, capsys, edit):
    _edit_run_value(run_copy, "settings", edit(_settings(run_copy)))
    _assert_damaged(capsys, run_copy)


def test_settings_row_deleted_names_the_journal_damaged(run_copy, capsys):
    _edit_run_value(run_copy, "settings", None)
    _assert_damaged(capsys, run_copy)


def test_a_journal_without_its_version_is_damaged_not_version_none(run_copy, capsys):
    _edit_run_value(run_copy, "schema_version", None)
    _assert_damaged(capsys, run_copy, "no schema version")


def test_final_result_edited_by_hand_is_named_damaged_by_runs_show(run_copy, capsys):
    _edit_run_value(run_copy, "final", json.dumps({"best_spec": 3}))
    assert main(["runs", "show", str(run_copy)]) == 2
    _one_line_error(capsys, "is damaged", "final")


# -- one search per run at a time ------------------------------------------------------------------------------


def _unfinished(run_dir: Path, **changes) -> None:
    """A run started and stopped before any evaluation, as a kill right after its start leaves it."""
    Search.start(run_dir, _config(**changes)).journal.close()


def test_second_resume_of_a_run_in_progress_is_refused_naming_the_first(tmp_path, capsys):
    run_dir = tmp_path / "run"
    _unfinished(run_dir)
    first = subprocess.Popen(
        [sys.executable, "-m", "swarmcnn", "search", "--resume", str(run_dir), "--quiet", "--threads", "1"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while (run_dir / LOCK_FILE).read_text().strip() != str(first.pid):  # the first holds the run
            assert first.poll() is None, first.stderr.read()
        assert main(["search", "--resume", str(run_dir), "--quiet"]) == 2
        _one_line_error(capsys, f"run folder '{run_dir}' is in use by process {first.pid}")
    finally:
        _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err  # the first is not disturbed, and ends the run alone
    assert describe_run(run_dir)["status"] == "finished"


def test_a_run_locked_by_this_process_is_refused_and_free_again_once_closed(finished, capsys):
    journal = Journal.open(finished, lock=True)
    try:
        assert main(["search", "--resume", str(finished), "--quiet"]) == 2
        _one_line_error(capsys, f"in use by process {os.getpid()}")
        assert main(["runs", "show", str(finished), "--json"]) == 0  # reading a run in progress is fine
    finally:
        journal.close()
    assert main(["search", "--resume", str(finished), "--quiet"]) == 0


def test_the_lock_of_a_killed_search_is_released_by_its_death(finished, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from swarmcnn.search.journal import Journal; "
         "Journal.open(sys.argv[1], lock=True); print('locked', flush=True); time.sleep(120)", str(finished)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["search", "--resume", str(finished), "--quiet"]) == 2
        _one_line_error(capsys, f"in use by process {holder.pid}")
    finally:
        holder.kill()
        holder.communicate()
    assert main(["search", "--resume", str(finished), "--quiet"]) == 0


# -- the data under a run ----------------------------------------------------------------------------------------


def test_resume_with_changed_data_is_refused_and_with_the_same_data_continues(digits, tmp_path, capsys):
    source = tmp_path / "digits.npz"
    x = np.concatenate([digits.train.x.numpy(), digits.val.x.numpy(), digits.test.x.numpy()])
    y = np.concatenate([digits.train.y.numpy(), digits.val.y.numpy(), digits.test.y.numpy()])
    np.savez(source, x=x, y=y)
    run_dir = tmp_path / "run"
    _unfinished(run_dir, source=str(source))

    changed = y.copy()
    changed[[0, 1]] = changed[[1, 0]] if changed[0] != changed[1] else (changed[0] + 1) % 10
    np.savez(source, x=x, y=changed)
    assert main(["search", "--resume", str(run_dir), "--quiet"]) == 2
    _one_line_error(capsys, f"the data '{source}' changed since the run")
    assert describe_run(run_dir)["evaluations"] == 0  # nothing was trained on the other data

    np.savez(source, x=x, y=y)  # put back: the run goes on
    assert main(["search", "--resume", str(run_dir), "--quiet", "--threads", "1"]) == 0
    assert describe_run(run_dir)["status"] == "finished"


def test_fingerprint_follows_the_arrays_and_the_class_names(digits):
    assert digits.fingerprint == dataclasses.replace(digits).fingerprint
    renamed = dataclasses.replace(digits, class_names=tuple(reversed(digits.class_names)))
    moved = dataclasses.replace(digits, val=Split(digits.val.x[1:], digits.val.y[1:]))
    assert len({digits.fingerprint, renamed.fingerprint, moved.fingerprint}) == 3


# -- starting a run ----------------------------------------------------------------------------------------------


def test_negative_seed_is_one_line_and_leaves_the_folder_usable(space, tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*_search_args(space, out), "--seed", "-1"]) == 2
    _one_line_error(capsys, "seed", "-1")
    assert not out.exists() or not [p for p in out.iterdir() if p.name != LOCK_FILE]
    assert main([*_search_args(space, out), "--threads", "1"]) == 0


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5, True, "3"])
def test_search_config_refuses_a_seed_numpy_and_torch_cannot_take(seed):
    with pytest.raises(SwarmCNNError, match="--seed"):
        _config(seed=seed)


@pytest.mark.parametrize("folder_existed", [False, True])
def test_start_failing_after_its_journal_was_made_leaves_the_folder_as_it_was(tmp_path, monkeypatch, folder_existed):
    out = tmp_path / "run"
    if folder_existed:
        out.mkdir()

    def failing(self, strategy):
        raise RuntimeError("a fault in the middle of the start")

    with monkeypatch.context() as patch:
        patch.setattr(Journal, "restore_state", failing)
        with pytest.raises(RuntimeError):
            Search.start(out, _config())
    assert out.exists() == folder_existed and (not folder_existed or not any(out.iterdir()))
    Search.start(out, _config()).journal.close()  # neither 'already holds a search' nor locked
    assert Journal.open(out).get("settings")["seed"] == 0


def test_folder_of_a_start_killed_before_its_journal_was_whole_is_reused_and_cleaned(space, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_FILE).write_text("4242\n")  # the lock file of a dead process: no flock is held on it
    unfinished = out / f"{NEW_JOURNAL_PREFIX}4242"
    unfinished.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    assert main(["search", "--resume", str(out)]) == 2
    _one_line_error(capsys, "not a search run directory", "start it again with that --out")
    assert main([*_search_args(space, out), "--threads", "1"]) == 0
    assert not unfinished.exists()
    assert describe_run(out)["status"] == "finished"


def test_validation_fraction_zero_is_refused_before_anything_is_written(space, tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*_search_args(space, out), "--val-fraction", "0"]) == 2
    _one_line_error(capsys, "--val-fraction 0", "validation")
    assert not out.exists()


def test_data_with_an_empty_validation_split_is_refused_before_a_journal(digits, tmp_path):
    empty = dataclasses.replace(digits, val=Split(digits.val.x[:0], digits.val.y[:0]))
    with pytest.raises(SwarmCNNError, match="validation split of 'digits' is empty"):
        Search.start(tmp_path / "run", _config(), data=empty)
    assert not (tmp_path / "run").exists()


# -- runs show: the best is one record ----------------------------------------------------------------------------


def _assert_best_fields_agree(summary: dict, rung_rows: list[dict]) -> None:
    best = [row for row in rung_rows if row["spec"] == summary["best_spec"]]
    top = max(best, key=lambda row: row["rung"])
    assert summary["best_params"] == top["params"] == Spec.parse(summary["best_spec"]).num_params((1, 8, 8), 10)
    assert summary["best_val_accuracy"] == top["val_accuracy"]


def test_best_params_and_accuracy_are_those_of_the_best_spec_after_promotion(finished, capsys):
    assert main(["runs", "show", str(finished), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["promotions"] and summary["final"]["best_rung"] >= 1
    _assert_best_fields_agree(summary, summary["promotions"])


def test_best_fields_of_an_unfinished_run_agree_too(tmp_path):
    search = Search.start(tmp_path / "run", _config(rungs=2), StopBeforeFinal())
    with pytest.raises(KeyboardInterrupt):  # stopped after the promotions, before the final training
        search.run()
    search.journal.close()
    summary = describe_run(tmp_path / "run")
    assert summary["final"] is None and summary["promotions"]
    _assert_best_fields_agree(summary, summary["promotions"] + summary["leaderboard"])
