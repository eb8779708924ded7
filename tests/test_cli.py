import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from swarmcnn.cli import main


def _png(path, size=(8, 8), mode="L", seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3) if mode == "RGB" else size, dtype=np.uint8)
    Image.fromarray(pixels, mode).save(path)
    return path


def _run(*args):
    """The real command in a subprocess: what a user sees, traceback or not."""
    return subprocess.run([sys.executable, "-m", "swarmcnn", *map(str, args)], capture_output=True, text=True)


def _assert_clean_error(result, *words):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("swarmcnn: error:"), result.stderr
    for word in words:
        assert word in lines[0]


def test_evaluate_json_reports_accuracy_per_class_and_confusion(digits_model_dir, capsys):
    assert main(["evaluate", str(digits_model_dir), "digits", "--split", "test", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert 0.5 < report["accuracy"] <= 1
    assert set(report["per_class_accuracy"]) == {str(d) for d in range(10)}
    assert sum(map(sum, report["confusion_matrix"])) == report["images"]


def test_evaluate_test_split_matches_the_accuracy_recorded_at_training(digits_model_dir, capsys):
    main(["evaluate", str(digits_model_dir), "digits", "--json"])
    recorded = json.loads((digits_model_dir / "model.json").read_text())["metrics"]["test_accuracy"]
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(recorded)


def test_evaluate_prints_tables_without_json(digits_model_dir, capsys):
    assert main(["evaluate", str(digits_model_dir), "digits", "--split", "val"]) == 0
    assert "confusion matrix" in capsys.readouterr().out


def test_predict_json_on_png_files_gives_label_and_probability(digits_model_dir, tmp_path, capsys):
    files = [_png(tmp_path / "a.png"), _png(tmp_path / "b.png", size=(20, 16), mode="RGB", seed=1)]
    assert main(["predict", str(digits_model_dir), *map(str, files), "--top", "3", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["file"] for r in rows] == [str(f) for f in files]
    for row in rows:
        assert row["label"] in {str(d) for d in range(10)}
        assert 0 < row["probability"] <= 1
        assert [g["probability"] for g in row["top"]] == sorted((g["probability"] for g in row["top"]), reverse=True)
        assert len(row["top"]) == 3


def test_trained_model_directory_is_complete(digits_model_dir):
    assert (digits_model_dir / "weights.safetensors").is_file()
    description = json.loads((digits_model_dir / "model.json").read_text())
    assert description["data"]["source"] == "digits"
    assert description["metrics"]["status"] in {"completed", "early-stopped"}


@pytest.mark.parametrize(
    "arch,words",
    [
        ("conv0x3", ["conv0x3", "position 1"]),
        ("conv32x3 bogus7", ["bogus7", "position 2"]),
        ("fc10 conv8x3", ["conv8x3", "fc10"]),
        ("conv8x3 maxpool2 maxpool2 maxpool2 maxpool2", ["position 5", "1×1"]),
    ],
)
def test_bad_spec_exits_2_naming_the_token(arch, words, tmp_path):
    _assert_clean_error(_run("train", "digits", "--arch", arch, "--epochs", "1", "--out", tmp_path / "m"), *words)


def test_missing_data_path_exits_2_naming_it(tmp_path):
    _assert_clean_error(_run("train", tmp_path / "nothing", "--arch", "conv4x3", "--out", tmp_path / "m"), "nothing")


def test_explain_writes_a_picture_per_input_and_the_features(digits_model_dir, tmp_path, capsys):
    pytest.importorskip("captum", reason="explaining needs the explain extra (Captum)")
    png = _png(tmp_path / "a.png")
    out = tmp_path / "why"
    args = ["explain", str(digits_model_dir), str(png), "--data", "digits", "--samples", "3", "--out", str(out)]
    assert main([*args, "--method", "occlusion", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = report["explanations"]
    assert [r["file"] for r in rows] == [str(png), "digits test #0", "digits test #1", "digits test #2"]
    assert "true" not in rows[0] and all(r["true"] in {str(d) for d in range(10)} for r in rows[1:])
    for row in rows:
        assert row["target"] == row["label"] and len(row["peak"]) == 2
        assert Image.open(row["picture"]).format == "PNG"
    assert Image.open(report["features"]).format == "PNG"
    assert main(args) == 2  # the pictures of the first are there: replaced only with --force (issue 27)
    assert "--force" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    assert "digits test #2" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, words", [([], ["FILE", "--data"]), (["--data", "digits", "--target", "ten"], ["'ten'", "classes"])]
)
def test_explain_without_inputs_or_with_a_bad_target_exits_2(digits_model_dir, tmp_path, extra, words):
    pytest.importorskip("captum", reason="explaining needs the explain extra (Captum)")
    _assert_clean_error(_run("explain", digits_model_dir, "--out", tmp_path / "why", *extra), *words)


def test_explain_to_an_out_that_is_a_file_exits_2_naming_it(digits_model_dir, tmp_path):
    (tmp_path / "why").write_text("not a folder")
    _assert_clean_error(_run("explain", digits_model_dir, "--data", "digits", "--out", tmp_path / "why"), "why")


def test_missing_model_directory_exits_2_naming_it(tmp_path):
    _assert_clean_error(_run("evaluate", tmp_path / "nomodel", "digits"), "nomodel")


def test_unreadable_file_for_predict_exits_2_naming_it(digits_model_dir, tmp_path):
    (tmp_path / "broken.png").write_text("not an image")
    _assert_clean_error(_run("predict", digits_model_dir, tmp_path / "broken.png"), "broken.png")


def _folder(tmp_path, layout):
    """layout: {class: [(name, size, mode) or (name, None) for a broken file]}"""
    root = tmp_path / "images"
    for label, files in layout.items():
        (root / label).mkdir(parents=True)
        for name, size, mode in files:
            if size is None:
                (root / label / name).write_text("not an image")
            else:
                _png(root / label / name, size, mode)
    return root


@pytest.mark.parametrize(
    "layout,words",
    [
        ({"a": [("broken.png", None, None)], "b": [("x.png", (8, 8), "L")]}, ["broken.png"]),
        ({"a": [], "b": [("x.png", (8, 8), "L")]}, ["'"]),
        ({"only": [("x.png", (8, 8), "L"), ("y.png", (8, 8), "L")]}, ["only"]),
        ({"a": [("x.png", (8, 8), "L")], "b": [("y.png", (12, 10), "L")]}, ["image size"]),
    ],
    ids=["corrupt-image", "empty-class", "single-class", "mixed-sizes"],
)
def test_bad_image_folder_exits_2_naming_the_culprit(layout, words, tmp_path):
    root = _folder(tmp_path, layout)
    _assert_clean_error(
        _run("train", root, "--arch", "conv4x3 relu fc8", "--epochs", "1", "--out", tmp_path / "m"), *words
    )


@pytest.mark.parametrize(
    "x,y,words",
    [
        (np.zeros((20, 8, 8), np.uint8), np.array([0, 1] * 9 + [0, 7]), ["out of range"]),
        (np.full((20, 8, 8), np.nan, np.float32), np.array([0, 1] * 10), ["'x'"]),
    ],
    ids=["labels-out-of-range", "nan-values"],
)
def test_bad_npz_exits_2_naming_the_field(x, y, words, tmp_path):
    classes = np.array(["zero", "one"])
    np.savez(tmp_path / "d.npz", x=x, y=y, classes=classes)
    _assert_clean_error(
        _run("train", tmp_path / "d.npz", "--arch", "conv4x3 relu fc8", "--out", tmp_path / "m"), *words
    )


def test_out_folder_with_other_files_is_refused(tmp_path):
    (tmp_path / "keep.txt").write_text("precious")
    _assert_clean_error(_run("train", "digits", "--arch", "conv4x3", "--out", tmp_path), "--out")
    assert (tmp_path / "keep.txt").read_text() == "precious"


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "explain"])
def test_each_command_help_explains_options_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "example" in text and "swarmcnn " + command in text


def test_top_level_help_lists_commands_without_loading_torch():
    code = "import sys; from swarmcnn.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def _train_digits(out, *extra):
    arch = "conv8x3 relu maxpool2 fc32 relu"
    return main(["train", "digits", "--arch", arch, "--epochs", "4", *extra, "--out", str(out), "--quiet"])


def test_training_at_chance_level_warns_once_with_the_remedies_and_still_saves(tmp_path, capsys):
    assert _train_digits(tmp_path / "m", "--lr", "10") == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("swarmcnn: warning: the training loss stayed at the chance level")
    assert "--lr" in lines[0] and "bn" in lines[0]
    assert (tmp_path / "m" / "weights.safetensors").is_file()
    assert "not_learning_epoch" in json.loads((tmp_path / "m" / "model.json").read_text())["metrics"]


def test_training_that_learns_gives_no_chance_level_warning(tmp_path, capsys):
    assert _train_digits(tmp_path / "m") == 0
    assert "chance level" not in capsys.readouterr().err
    assert "not_learning_epoch" not in json.loads((tmp_path / "m" / "model.json").read_text())["metrics"]
