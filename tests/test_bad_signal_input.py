"""Hostile signal input through the command line, as `tests/test_bad_input.py` has it for pictures: each bad .ts,
UCR or .npy file, option or model field ends in one line naming the culprit (the file and its line) and exit code
2, and leaves the model that was there as it was; a header's claims allocate nothing before they are checked.

A case is (id, argv, setup, words): argv may name "{model}" (a copy of a good signal model) and "{tmp}" (the case's
folder, where setup writes the files it damages); the error line must contain each of words.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from swarmcnn.cli import main
from tests.test_bad_input import _exit_code, _fill, _set, _snapshot

HEADER = "@problemName Bad\n@univariate false\n@dimensions 2\n@equalLength true\n@seriesLength 8\n" \
         "@classLabel true up down\n@data\n"
GOOD_LINES = ["0,1,2,3,4,5,6,7:1,1,1,1,1,1,1,1:up", "7,6,5,4,3,2,1,0:1,1,1,1,1,1,1,1:down"] * 8
TRAIN = ["--arch", "conv4x3 relu fc8", "--epochs", "1", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def good_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("good")
    (folder / "Good_TRAIN.ts").write_text(HEADER + "\n".join(GOOD_LINES) + "\n")
    (folder / "Good_TEST.ts").write_text(HEADER + "\n".join(GOOD_LINES[:4]) + "\n")
    out = tmp_path_factory.mktemp("models") / "good"
    assert main(["train", str(folder), *TRAIN, "--out", str(out)]) == 0
    return out


def _ts(text: str, name: str = "bad.ts"):
    """A setup that writes name into the case's folder: the good header and cases, with text as its 4th case."""

    def setup(model: Path, tmp: Path) -> None:
        lines = [*GOOD_LINES[:3], text, *GOOD_LINES[3:]] if text is not None else GOOD_LINES
        (tmp / name).write_text(HEADER + "\n".join(lines) + "\n")

    return setup


def _file(name: str, text: str):
    def setup(model: Path, tmp: Path) -> None:
        (tmp / name).write_text(text)

    return setup


def _npy(shape: tuple[int, ...]):
    def setup(model: Path, tmp: Path) -> None:
        import numpy as np

        np.save(tmp / "cases.npy", np.zeros(shape, dtype=np.float32))

    return setup


LINE = "bad.ts' line 11"  # the 4th case: the header takes 7 lines
TRAIN_BAD = ["train", "{tmp}/bad.ts", *TRAIN, "--out", "{model}", "--force"]
PREDICT = ["predict", "{model}"]

CASES = [
    # -- a bad .ts file: the file and the line named, before any training, the model in --out kept ----------------
    ("ts-text-in-a-value", TRAIN_BAD, _ts("0,1,x,3,4,5,6,7:1,1,1,1,1,1,1,1:up"), [LINE, "'x' is not a number"]),
    ("ts-other-channel-count", TRAIN_BAD, _ts("0,1,2,3,4,5,6,7:up"), [LINE, "1 channel(s)", "says 2"]),
    ("ts-label-not-declared", TRAIN_BAD, _ts("0,1,2,3,4,5,6,7:1,1,1,1,1,1,1,1:left"), [LINE, "'left'", "up, down"]),
    ("ts-empty-series", TRAIN_BAD, _ts(":1,1,1,1,1,1,1,1:up"), [LINE, "channel 1", "empty series"]),
    ("ts-wrong-length", TRAIN_BAD, _ts("0,1,2:1,1,1:up"), [LINE, "@seriesLength 8"]),
    ("ts-all-missing", TRAIN_BAD, _ts("?,?,?,?,?,?,?,?:1,1,1,1,1,1,1,1:up"), [LINE, "missing"]),
    ("ts-wrong-header", TRAIN_BAD, _file("bad.ts", "@problemName x\n@serieslenght 8\n@data\n"),
     ["bad.ts' line 2", "'@serieslenght'", "did you mean"]),
    ("ts-billion-instants", TRAIN_BAD,
     _file("bad.ts", "@dimensions 2\n@seriesLength 1000000000\n@classLabel true up down\n@data\n"
           + "\n".join(GOOD_LINES * 4) + "\n"), ["bad.ts", "1000000000"]),
    ("ts-not-text", TRAIN_BAD, lambda model, tmp: (tmp / "bad.ts").write_bytes(b"\xff\xfe\x00garbage"),
     ["bad.ts", "not UTF-8"]),
    ("ucr-text-label-line", ["train", "{tmp}/bad.tsv", *TRAIN, "--out", "{tmp}/m"],
     _file("bad.tsv", "1\t0\t1\n2\t1\t0\n1\t0\tfoo\n"), ["bad.tsv' line 3", "'foo'"]),
    ("no-test-part-of-a-folder", ["train", "{tmp}", *TRAIN, "--out", "{tmp}/m"],
     _file("Only_TRAIN.ts", HEADER), ["'{tmp}'"]),
    # -- options for signals, checked where they enter ---------------------------------------------------------------
    ("length-zero", ["train", "bumps", *TRAIN, "--length", "0", "--out", "{tmp}/m"], None, ["--length"]),
    ("normalize-unknown", ["train", "bumps", *TRAIN, "--normalize", "global", "--out", "{tmp}/m"], None,
     ["--normalize", "global"]),
    ("normalize-series-for-pictures", ["train", "digits", *TRAIN, "--normalize", "series", "--out", "{tmp}/m"],
     None, ["normalize='series' is for signals", "pictures"]),
    ("image-size-for-signals", ["train", "bumps", *TRAIN, "--image-size", "8", "--out", "{tmp}/m"], None,
     ["signals", "--length"]),
    ("flip-for-signals", ["train", "bumps", *TRAIN, "--flip", "--out", "{tmp}/m"], None, ["--flip", "signal"]),
    # -- files to classify that do not fit the model ----------------------------------------------------------------
    ("predict-other-channels", [*PREDICT, "{tmp}/c.ts"], _file("c.ts", "@classLabel false\n@data\n1,2,3\n"),
     ["c.ts", "1 channel(s)", "takes 2"]),
    ("predict-npy-shape", [*PREDICT, "{tmp}/cases.npy"], _npy((3, 5, 8)), ["cases.npy", "(3, 5, 8)", "(N, 2, L)"]),
    ("predict-a-picture", [*PREDICT, "{tmp}/x.png"], _file("x.png", "PNG?"), ["x.png", "not a file of series"]),
    ("predict-missing-file", [*PREDICT, "{tmp}/none.ts"], None, ["none.ts", "no such file"]),
    # -- a damaged model.json of a signal model ------------------------------------------------------------------------
    ("series-not-a-bool", [*PREDICT, "{tmp}/c.ts"], _set("normalization", "series", "yes"),
     ["normalization.series", "true or false"]),
    ("series-for-pictures", [*PREDICT, "{tmp}/c.ts"], _set("input_shape", [2, 8, 1]), ["{model}", "input_shape"]),
]


@pytest.mark.parametrize("case_id, argv, setup, words", [pytest.param(*case, id=case[0]) for case in CASES])
def test_bad_signal_input_ends_in_one_line_and_exit_2_leaving_the_model_intact(
    case_id, argv, setup, words, good_model, tmp_path, capsys
):
    model = tmp_path / "model"
    shutil.copytree(good_model, model)
    if setup is not None:
        setup(model, tmp_path)
    before = _snapshot(model)
    code = _exit_code(_fill(argv, model, tmp_path))
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2, captured.err
    assert "Traceback" not in captured.err + captured.out
    assert len(lines) == 1, captured.err
    for word in _fill(words, model, tmp_path):
        assert word in lines[0], lines[0]
    assert _snapshot(model) == before


def test_the_good_signal_model_of_the_table_itself_predicts(good_model, tmp_path, capsys):
    (tmp_path / "c.ts").write_text("@classLabel false\n@data\n0,1,2,3,4,5,6,7:1,1,1,1,1,1,1,1\n")
    assert main(["predict", str(good_model), str(tmp_path / "c.ts")]) == 0
