"""`swarmcnn search` and `swarmcnn runs show`: the fixed names and JSON fields, and one-line errors with exit 2."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys

import pytest

from swarmcnn.cli import duration, main
from swarmcnn.search.evaluate import EvaluationConfig
from swarmcnn.search.executors import InProcess
from swarmcnn.search.journal import JOURNAL_FILE
from swarmcnn.search.loop import Search, SearchConfig
from swarmcnn.search.space import SearchSpace
from tests.search.fakes import Refusing


def _search_args(space, out, evaluations=3, *extra) -> list[str]:
    return [
        "search",
        "digits",
        "--strategy",
        "random",
        "--evaluations",
        str(evaluations),
        "--candidate-epochs",
        "1",
        "--train-fraction",
        "0.3",
        "--final-epochs",
        "1",
        "--space",
        str(space),
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture(scope="module")
def run_dir(space, tmp_path_factory):
    """A finished search of three tiny candidates, shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("runs") / "digits"
    assert main(_search_args(space, out, 3, "--quiet")) == 0
    return out


def _assert_one_line_error(capsys, *words) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("swarmcnn: error:"), captured.err
    assert "Traceback" not in captured.err + captured.out
    for word in words:
        assert word in lines[0]
    return lines[0]


def _assert_argparse_error(capsys, argv, *words) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for word in words:
        assert word in err


# -- what a finished run shows ------------------------------------------------------------------------------------


def test_runs_show_json_has_best_spec_accuracies_and_evaluations(run_dir, capsys):
    capsys.readouterr()
    assert main(["runs", "show", str(run_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["evaluations"] == 3
    assert summary["best_spec"] in [row["spec"] for row in summary["leaderboard"]]
    assert 0 < summary["best_val_accuracy"] <= 1 and 0 < summary["test_accuracy"] <= 1
    # the final spec is chosen among the finalists trained again (all three here), by that longer training
    assert summary["best_val_accuracy"] == max(row["val_accuracy"] for row in summary["promotions"])
    assert summary["status"] == "finished" and summary["strategy"] == "random" and summary["data"] == "digits"
    assert [row["params"] for row in summary["pareto_front"]] == sorted(
        row["params"] for row in summary["pareto_front"]
    )
    assert (run_dir / "best" / "model.json").is_file()


def test_runs_show_top_limits_the_leaderboard(run_dir, capsys):
    capsys.readouterr()
    assert main(["runs", "show", str(run_dir), "--json", "--top", "1"]) == 0
    assert len(json.loads(capsys.readouterr().out)["leaderboard"]) == 1


def test_runs_show_without_json_prints_tables_and_the_test_accuracy(run_dir, capsys):
    capsys.readouterr()
    assert main(["runs", "show", str(run_dir)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps lines at the terminal width
    assert re.search(r"random on digits: 3 evaluations \(\d+ trained, \d+ compressed, \d+ refused, \d+ failed\), "
                     "finished", out)
    assert "test accuracy 0." in out and "final training" in out


def test_resume_of_a_finished_run_trains_nothing_and_succeeds(run_dir):
    Search.resume(run_dir, executor=Refusing(pytest.fail)).run()
    assert main(["search", "--resume", str(run_dir), "--quiet"]) == 0


def test_search_with_live_display_ends_with_the_best_spec_and_test_accuracy(space, tmp_path, capsys):
    assert main(_search_args(space, tmp_path / "run", 2)) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps lines at the terminal width
    assert "best spec" in out and "test accuracy" in out and "after 2 evaluations" in out


def test_augment_and_flip_are_used_by_the_final_training(space, tmp_path):
    out = tmp_path / "run"
    assert main(_search_args(space, out, 2, "--augment", "--flip", "--quiet")) == 0
    training = json.loads((out / "best" / "model.json").read_text())["training"]
    assert training["augment"] is True and training["flip"] is True
    assert main(["search", "--resume", str(out), "--augment"]) == 2  # the run keeps its own settings


class _Interrupting(InProcess):
    """Training here, interrupted (as by Ctrl-C) when the third candidate is done, before it is journaled."""

    done = 0

    def map(self, jobs):
        for index, record in super().map(jobs):
            self.done += 1
            if self.done == 3:
                raise KeyboardInterrupt
            yield index, record


def test_interrupted_search_resumes_to_the_whole_count(space, tmp_path, capsys):
    config = SearchConfig(
        source="digits", strategy="random", evaluations=4, final_epochs=1, space=SearchSpace.from_toml(space),
        evaluation=EvaluationConfig(epochs=1, train_fraction=0.3),
    )
    search = Search.start(tmp_path / "run", config, executor=_Interrupting)
    with pytest.raises(KeyboardInterrupt):
        search.run()
    assert main(["search", "--resume", str(tmp_path / "run"), "--quiet"]) == 0
    assert main(["runs", "show", str(tmp_path / "run"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["evaluations"] == 4 and summary["status"] == "finished"


# -- errors ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", [["--evaluations", "5"], ["--strategy", "pso"], ["--seed", "3"], ["--workers", "2"]])
def test_resume_with_other_options_is_refused_naming_them(run_dir, capsys, option):
    assert main(["search", "--resume", str(run_dir), *option]) == 2
    _assert_one_line_error(capsys, "--resume", option[0])


def test_resume_with_a_data_source_is_refused(run_dir, capsys):
    assert main(["search", "digits", "--resume", str(run_dir)]) == 2
    _assert_one_line_error(capsys, "--resume")


def test_resume_with_a_data_source_names_the_positional_argument(run_dir, capsys):
    assert main(["search", "digits", "--resume", str(run_dir)]) == 2
    line = _assert_one_line_error(capsys)
    assert "--data" not in line and ("DATA" in line or "digits" in line)


def test_resume_with_an_option_set_to_zero_is_refused_too(run_dir, capsys):
    assert main(["search", "--resume", str(run_dir), "--seed", "0", "--quiet"]) == 2


def test_resume_on_a_folder_that_is_not_a_run_is_one_line_without_traceback(tmp_path):
    (tmp_path / "notes.txt").write_text("not a run")
    result = subprocess.run(
        [sys.executable, "-m", "swarmcnn", "search", "--resume", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("swarmcnn: error:") and "not a search run" in lines[0]


def test_resume_on_a_garbage_journal_is_one_line(tmp_path, capsys):
    (tmp_path / JOURNAL_FILE).write_bytes(b"\x00garbage" * 100)
    assert main(["search", "--resume", str(tmp_path)]) == 2
    _assert_one_line_error(capsys, "not a readable journal")


def test_runs_show_on_a_folder_that_is_not_a_run_is_one_line(tmp_path, capsys):
    assert main(["runs", "show", str(tmp_path), "--json"]) == 2
    _assert_one_line_error(capsys, "not a search run")


@pytest.mark.parametrize(
    "text, seconds", [("90s", 90), ("10m", 600), ("1h30m", 5400), ("90", 90), ("1.5h", 5400), (" 2M ", 120)]
)
def test_budget_accepts_seconds_minutes_and_hours(text, seconds):
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["abc", "", "10 minutes", "-5s", "h", "30m1h"])
def test_budget_that_is_not_a_duration_is_an_argument_error(text):
    with pytest.raises(argparse.ArgumentTypeError, match="90s, 10m or 1h30m"):
        duration(text)


def test_bad_budget_on_the_command_line_exits_2(tmp_path, capsys):
    _assert_argparse_error(capsys, ["search", "digits", "--budget", "abc", "--out", str(tmp_path / "r")], "abc")


def test_zero_budget_exits_2_with_one_line(tmp_path, capsys):
    assert main(["search", "digits", "--budget", "0s", "--out", str(tmp_path / "r")]) == 2
    _assert_one_line_error(capsys, "--budget")
    assert not (tmp_path / "r").exists()


def test_budget_and_evaluations_together_exit_2(tmp_path, capsys):
    argv = ["search", "digits", "--budget", "10m", "--evaluations", "5", "--out", str(tmp_path / "r")]
    _assert_argparse_error(capsys, argv, "not allowed with")


def test_out_folder_with_other_files_is_refused_and_left_alone(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["search", "digits", "--evaluations", "2", "--out", str(tmp_path)]) == 2
    _assert_one_line_error(capsys, "other files")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    assert main(["search", "digits", "--evaluations", "2", "--out", str(tmp_path / "file")]) == 2
    _assert_one_line_error(capsys, "not a folder")


def test_out_that_already_holds_a_run_points_to_resume(run_dir, capsys):
    assert main(["search", "digits", "--evaluations", "2", "--out", str(run_dir)]) == 2
    _assert_one_line_error(capsys, "--resume")


def test_unknown_strategy_exits_2_with_did_you_mean(tmp_path, capsys):
    assert main(["search", "digits", "--strategy", "rando", "--out", str(tmp_path / "r")]) == 2
    _assert_one_line_error(capsys, "unknown strategy 'rando'", "did you mean 'random'?")


def test_search_without_data_or_out_exits_2(tmp_path, capsys):
    assert main(["search", "digits"]) == 2
    _assert_one_line_error(capsys, "--out")
    assert main(["search", "--out", str(tmp_path / "r")]) == 2
    _assert_one_line_error(capsys, "DATA")


def test_impossible_train_fraction_exits_2_naming_it_before_writing_a_journal(tmp_path, capsys):
    assert main(["search", "digits", "--train-fraction", "0", "--evaluations", "2", "--out", str(tmp_path / "r")]) == 2
    _assert_one_line_error(capsys, "fraction")
    assert not (tmp_path / "r" / JOURNAL_FILE).exists()


def test_search_with_unknown_data_source_exits_2_before_writing_a_journal(tmp_path, capsys):
    assert main(["search", "no-such-data", "--evaluations", "2", "--out", str(tmp_path / "r")]) == 2
    _assert_one_line_error(capsys, "no-such-data")
    assert not (tmp_path / "r" / JOURNAL_FILE).exists()


@pytest.mark.parametrize("command", [["search"], ["runs", "show"]])
def test_help_shows_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out and f"swarmcnn {' '.join(command)} " in out
