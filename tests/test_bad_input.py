"""Hostile input through the command line (issue 13): each bad input ends with one line naming the culprit and
exit code 2, never a traceback, and leaves the model or run that was there before as it was.

The table runs `swarmcnn.cli.main` in-process. A case is (id, argv, setup, words): argv may name "{model}" (a
copy of a good model, made per case and handed to setup to damage) and "{tmp}" (the case's own folder, which
holds a picture x.png); the error line must contain each of words.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from swarmcnn import strictjson
from swarmcnn.checkpoint import MODEL_FILE, WEIGHTS_FILE, load, replace_folder
from swarmcnn.cli import main
from swarmcnn.errors import CheckpointError

ARCH = "conv4x3 relu fc8"
TRAIN = ["train", "digits", "--arch", ARCH, "--epochs", "1", "--threads", "1", "--quiet"]
# 3 pictures per class: the 30 of digits train in one batch per epoch
ONE_BATCH = [*TRAIN, "--per-class", "3"]


@pytest.fixture(scope="module")
def good_model(tmp_path_factory) -> Path:
    """One tiny trained model; each case damages a copy of it."""
    out = tmp_path_factory.mktemp("good") / "model"
    assert main([*TRAIN, "--out", str(out)]) == 0
    return out


# -- setups: what a case does to its copy of the good model (or its folder) before the command runs -------------


def _edit(change):
    """A setup that rewrites model.json after `change(description)`; Python's json writes NaN as NaN."""

    def setup(model: Path, tmp: Path) -> None:
        path = model / MODEL_FILE
        description = json.loads(path.read_text())
        change(description)
        path.write_text(json.dumps(description))

    return setup


def _set(*keys_and_value):
    """An edit that sets description[k1][k2]... = value (the last argument), or deletes it if value is DELETE."""
    *keys, value = keys_and_value

    def change(description: dict) -> None:
        for key in keys[:-1]:
            description = description[key]
        if value is DELETE:
            del description[keys[-1]]
        else:
            description[keys[-1]] = value

    return _edit(change)


DELETE = object()


def _nan_weights(model: Path, tmp: Path) -> None:
    path = model / WEIGHTS_FILE
    tensors = load_file(str(path))
    name = next(n for n, t in tensors.items() if t.is_floating_point())
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] = math.nan
    save_file(tensors, str(path))


def _file_in_the_way(model: Path, tmp: Path) -> None:
    (tmp / "file").write_text("a file where --out needs a folder")


def _read_only_parent(model: Path, tmp: Path) -> None:
    (tmp / "locked").mkdir()
    (tmp / "locked").chmod(0o555)


def _text_model_json(text: str):
    def setup(model: Path, tmp: Path) -> None:
        (model / MODEL_FILE).write_text(text)

    return setup


ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
PREDICT = ["predict", "{model}", "{tmp}/x.png"]

CASES = [
    # -- training options, refused where they enter, naming the option --------------------------------------------
    ("weight-decay-negative", [*TRAIN, "--weight-decay", "-5", "--out", "{tmp}/m"], None, ["--weight-decay"]),
    ("weight-decay-inf", [*TRAIN, "--weight-decay", "inf", "--out", "{tmp}/m"], None, ["--weight-decay"]),
    ("patience-negative", [*TRAIN, "--patience", "-3", "--out", "{tmp}/m"], None, ["--patience"]),
    ("patience-zero", [*TRAIN, "--patience", "0", "--out", "{tmp}/m"], None, ["--patience"]),
    ("lr-zero", [*TRAIN, "--lr", "0", "--out", "{tmp}/m"], None, ["--lr"]),
    ("lr-negative", [*TRAIN, "--lr", "-0.1", "--out", "{tmp}/m"], None, ["--lr"]),
    ("lr-nan", [*TRAIN, "--lr", "nan", "--out", "{tmp}/m"], None, ["--lr"]),
    ("lr-inf", [*TRAIN, "--lr", "inf", "--out", "{tmp}/m"], None, ["--lr"]),
    ("lr-text", [*TRAIN, "--lr", "fast", "--out", "{tmp}/m"], None, ["--lr", "fast"]),
    ("epochs-zero", [*TRAIN, "--epochs", "0", "--out", "{tmp}/m"], None, ["--epochs"]),
    ("batch-size-zero", [*TRAIN, "--batch-size", "0", "--out", "{tmp}/m"], None, ["--batch-size"]),
    ("seed-negative", [*TRAIN, "--seed", "-1", "--out", "{tmp}/m"], None, ["--seed"]),
    ("val-fraction-one", [*TRAIN, "--val-fraction", "1", "--out", "{tmp}/m"], None, ["--val-fraction"]),
    ("val-fraction-negative", [*TRAIN, "--val-fraction", "-0.1", "--out", "{tmp}/m"], None, ["--val-fraction"]),
    ("val-fraction-nan", [*TRAIN, "--val-fraction", "nan", "--out", "{tmp}/m"], None, ["--val-fraction"]),
    ("predict-top-zero", [*PREDICT, "--top", "0"], None, ["--top"]),
    ("runs-show-top-negative", ["runs", "show", "{tmp}/run", "--top", "-1"], None, ["--top"]),
    ("runs-show-top-zero", ["runs", "show", "{tmp}/run", "--top", "0"], None, ["--top"]),
    # -- --out: an existing model is kept unless --force; an unwritable --out is found before the data is read ------
    ("out-holds-a-model", [*TRAIN, "--out", "{model}"], None, ["--force", "model"]),
    ("out-through-a-file", ["train", "{tmp}/no-data", "--arch", ARCH, "--out", "{tmp}/file/m"], _file_in_the_way,
     ["--out", "file"]),
    pytest.param(
        "out-read-only-parent", ["train", "{tmp}/no-data", "--arch", ARCH, "--out", "{tmp}/locked/m"],
        _read_only_parent, ["--out", "locked"],
        marks=pytest.mark.skipif(ROOT, reason="root writes into read-only folders"), id="out-read-only-parent",
    ),
    # -- a diverged training ends in one line and never replaces the model in --out -------------------------------
    ("diverged-over-a-model", [*ONE_BATCH, "--lr", "1e30", "--force", "--out", "{model}"], None, ["diverged"]),
    ("diverged-without-validation-over-a-model",
     [*ONE_BATCH, "--lr", "1e30", "--val-fraction", "0", "--force", "--out", "{model}"], None, ["diverged"]),
    # -- a damaged model.json: the model directory and the field are named, nothing is allocated by it -------------
    ("input-shape-strings", PREDICT, _set("input_shape", ["1", "8", "8"]), ["{model}", "input_shape"]),
    ("input-shape-negative", PREDICT, _set("input_shape", [1, -8, 8]), ["input_shape"]),
    ("input-shape-fraction", PREDICT, _set("input_shape", [1, 8.5, 8]), ["input_shape"]),
    ("input-shape-huge", PREDICT, _set("input_shape", [1, 100000, 100000]), ["input_shape", "10,000,000,000"]),
    ("input-shape-other-size", PREDICT, _set("input_shape", [1, 16, 16]), ["weights", "shape"]),
    ("input-shape-missing", PREDICT, _set("input_shape", DELETE), ["input_shape", "missing"]),
    ("mean-wrong-channels", PREDICT, _set("normalization", "mean", [0.0, 0.0, 0.0]), ["normalization.mean", "3"]),
    ("mean-a-string", PREDICT, _set("normalization", "mean", "abc"), ["normalization.mean"]),
    ("std-strings", PREDICT, _set("normalization", "std", ["x"]), ["normalization.std"]),
    ("mean-nan", PREDICT, _set("normalization", "mean", [math.nan]), ["normalization.mean", "finite"]),
    ("std-infinite", PREDICT, _set("normalization", "std", [math.inf]), ["normalization.std", "finite"]),
    ("std-zero", PREDICT, _set("normalization", "std", [0.0]), ["normalization.std", "positive"]),
    ("std-negative", PREDICT, _set("normalization", "std", [-1.0]), ["normalization.std", "positive"]),
    ("std-missing", PREDICT, _set("normalization", "std", DELETE), ["normalization.std", "missing"]),
    ("normalization-a-string", PREDICT, _set("normalization", "none"), ["normalization"]),
    ("class-names-a-string", PREDICT, _set("class_names", "0123456789"), ["class_names"]),
    ("class-names-numbers", PREDICT, _set("class_names", list(range(10))), ["class_names"]),
    ("class-names-twice", PREDICT, _set("class_names", ["a"] * 10), ["class_names", "'a'"]),
    ("class-names-one-more", PREDICT, _set("class_names", [str(d) for d in range(11)]), ["weights", "shape"]),
    ("class-names-missing", PREDICT, _set("class_names", DELETE), ["class_names", "missing"]),
    ("spec-invalid", PREDICT, _set("spec", "conv4x3 bogus7"), ["'spec'", "bogus7"]),
    ("spec-not-the-layers", PREDICT, _set("spec", "conv4x3 fc8"), ["'spec'", "layers"]),
    ("spec-a-number", PREDICT, _set("spec", 7), ["'spec'"]),
    ("layers-garbled", PREDICT, _set("layers", [{"type": "Conv", "features": "x", "size": 3}]), ["'layers'"]),
    ("layers-dropout-text", PREDICT, _set("layers", [{"type": "Dropout", "p": "abc"}]), ["'layers'"]),
    ("layers-huge", PREDICT, _set("layers", [{"type": "FC", "neurons": 10**30}]), ["layers"]),
    ("layers-missing", PREDICT, _set("layers", DELETE), ["'layers'", "missing"]),
    ("data-a-string", ["evaluate", "{model}", "digits"], _set("data", "digits"), ["'data'"]),
    ("data-bad-setting", ["evaluate", "{model}", "digits"], _set("data", "val_fraction", "x"), ["'data'"]),
    ("format-version-other", PREDICT, _set("format_version", 2), ["format version"]),
    ("model-json-a-list", PREDICT, _text_model_json("[1, 2]"), [MODEL_FILE]),
    ("model-json-deeply-nested", PREDICT, _text_model_json("[" * 100_000), [MODEL_FILE]),
    ("weights-nan", PREDICT, _nan_weights, ["weights", "NaN"]),
    # -- cases of the data layer, the search journal and runs, and --device: added by their owners -----------------
]


def _params(cases: list) -> list:
    """Each case as a pytest.param named by its id (a case given as a pytest.param already is one)."""
    return [case if hasattr(case, "marks") else pytest.param(*case, id=case[0]) for case in cases]


def _fill(argv: list[str], model: Path, tmp: Path) -> list[str]:
    return [arg.replace("{model}", str(model)).replace("{tmp}", str(tmp)) for arg in argv]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.is_dir() else {}


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_info:  # argparse refuses an option by exiting
        return exit_info.code


@pytest.mark.parametrize("case_id, argv, setup, words", _params(CASES))
def test_bad_input_ends_in_one_line_and_exit_2_leaving_the_model_intact(
    case_id, argv, setup, words, good_model, tmp_path, capsys
):
    model = tmp_path / "model"
    shutil.copytree(good_model, model)
    Image.fromarray(np.full((8, 8), 128, np.uint8), "L").save(tmp_path / "x.png")
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
    assert _snapshot(model) == before  # weights.safetensors and model.json byte for byte
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_the_good_model_of_the_table_itself_predicts(good_model, tmp_path, capsys):
    """The table's cases fail by their damage, not by the copy they start from."""
    model = tmp_path / "model"
    shutil.copytree(good_model, model)
    Image.fromarray(np.full((8, 8), 128, np.uint8), "L").save(tmp_path / "x.png")
    assert _exit_code(_fill([*PREDICT, "--json"], model, tmp_path)) == 0
    assert 0 < json.loads(capsys.readouterr().out)[0]["probability"] <= 1


# -- what is written: plain JSON; a missing validation is null, not 0 and Infinity ---------------------------------


def _strict_json(path: Path):
    def refuse(constant: str):
        raise AssertionError(f"{path} holds {constant}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_training_without_validation_writes_null_scores_in_plain_json(tmp_path):
    assert main([*TRAIN, "--val-fraction", "0", "--out", str(tmp_path / "m")]) == 0
    metrics = _strict_json(tmp_path / "m" / MODEL_FILE)["metrics"]
    assert metrics["val_accuracy"] is None and metrics["val_loss"] is None
    assert 0 <= metrics["test_accuracy"] <= 1


def test_strict_json_writes_non_finite_numbers_as_null_at_any_depth():
    value = {"a": math.nan, "b": [1.0, math.inf, (-math.inf, 2)], "c": {"d": 3, "e": "NaN"}}
    assert json.loads(strictjson.dumps(value)) == {"a": None, "b": [1.0, None, [None, 2]], "c": {"d": 3, "e": "NaN"}}


# -- --force replaces a model whole; a save that fails or is killed leaves the previous one ------------------------


def test_force_replaces_the_model_and_leaves_nothing_beside_it(good_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(good_model, model)
    before = (model / WEIGHTS_FILE).read_bytes()
    assert main([*TRAIN, "--seed", "1", "--force", "--out", str(model)]) == 0
    assert (model / WEIGHTS_FILE).read_bytes() != before
    assert load(model).metrics["status"] == "completed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_save_that_fails_midway_keeps_the_previous_model(good_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(good_model, model)
    before = _snapshot(model)

    def write_half(folder: Path) -> None:
        (folder / WEIGHTS_FILE).write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    with pytest.raises(CheckpointError, match="no space left on device"):  # one line that says so, not OSError
        replace_folder(model, write_half)
    assert _snapshot(model) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_leftovers_of_a_killed_save_are_cleaned_and_a_model_renamed_away_is_put_back(good_model, tmp_path):
    loaded = load(good_model)
    pid = _dead_pid()
    # killed between the two renames: the previous model renamed away, the new one complete beside it
    shutil.copytree(good_model, tmp_path / f".model.old.{pid}")
    shutil.copytree(good_model, tmp_path / f".model.staging.{pid}")

    def never(folder: Path) -> None:
        raise RuntimeError("stop before writing")

    with pytest.raises(RuntimeError):
        replace_folder(tmp_path / "model", never)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert torch.equal(load(tmp_path / "model").module[-1].weight, loaded.module[-1].weight)


@pytest.mark.parametrize("val", [True, False], ids=["validated", "no-validation-split"])
def test_a_training_at_a_huge_rate_is_diverged_never_completed(digits, val):
    """One batch per epoch: the only loss measured is the one before the step that blew the weights up."""
    from swarmcnn.data import Split
    from swarmcnn.spec import parse
    from swarmcnn.train import Normalization, TrainConfig, build_seeded, fit

    val_split = digits.val if val else Split(digits.val.x[:0], digits.val.y[:0])
    small = dataclasses.replace(digits, train=Split(digits.train.x[:30], digits.train.y[:30]), val=val_split)
    model = build_seeded(parse(ARCH), digits.input_shape, 10, 0)
    result = fit(model, small, Normalization.of(small.train.x), TrainConfig(epochs=1, lr=1e30, precision="fp32"))
    assert result.status == "diverged" and not result.ok, result.reason


def test_loading_refuses_what_the_table_damages_with_a_checkpoint_error(good_model, tmp_path):
    """The same checks hold for a library user of swarmcnn.load, not only the CLI."""
    model = tmp_path / "model"
    shutil.copytree(good_model, model)
    _set("normalization", "std", [0.0])(model, tmp_path)
    with pytest.raises(CheckpointError, match="normalization.std"):
        load(model)


def test_saving_refuses_a_target_that_is_a_file(good_model, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="not a folder"):
        load(good_model).save(tmp_path / "file")
    assert (tmp_path / "file").read_text() == "x"
