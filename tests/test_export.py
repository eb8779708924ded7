"""swarmcnn export: one ONNX or TorchScript file that runs without swarmcnn and agrees with PyTorch."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from swarmcnn.checkpoint import load
from swarmcnn.cli import main
from swarmcnn.data import load_data, load_image_file

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
needs_onnx = pytest.mark.skipif(
    any(find_spec(name) is None for name in ("onnx", "onnxruntime", "onnxscript")),
    reason="the onnx extra is not installed: pip install 'swarmcnn[onnx]'",
)
README = Path(__file__).resolve().parents[1] / "README.md"


def _export(model: Path, out: Path, *options: str) -> int:
    return main(["export", str(model), "--out", str(out), "--threads", "1", *options])


def _onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"pixels": x})[0]


def _metadata(path: Path) -> dict[str, str]:
    import onnx

    return {prop.key: prop.value for prop in onnx.load(str(path)).metadata_props}


@pytest.fixture(scope="module")
def video_model_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("video") / "moving"
    arch = "conv4x3 relu maxpool2 fc16 relu"
    assert main(["train", "moving-digits", "--arch", arch, "--epochs", "1", "--out", str(out), "--quiet",
                 "--threads", "1"]) == 0
    return out


@needs_onnx
def test_onnx_export_of_a_digits_model_equals_pytorch_on_the_test_split(digits_model_dir, digits, tmp_path, capsys):
    out = tmp_path / "digits.onnx"
    assert _export(digits_model_dir, out) == 0
    assert "onnxruntime agrees with PyTorch within" in capsys.readouterr().out
    trained = load(digits_model_dir)
    x = digits.test.x
    expected = trained.predict_proba(x).numpy()
    assert np.abs(_onnx(out, x.numpy()) - expected).max() <= 1e-4
    assert np.abs(_onnx(out, x[:1].numpy()) - expected[:1]).max() <= 1e-4  # any batch size
    meta = _metadata(out)
    assert json.loads(meta["class_names"]) == list(trained.class_names)
    assert json.loads(meta["input_shape"]) == [1, 8, 8] and meta["input_layout"] == "NCHW"
    assert meta["input_dtype"] == "uint8" and "0..255" in meta["input_units"]
    assert meta["spec"] == str(trained.spec) and meta["swarmcnn_version"]


@needs_onnx
def test_onnx_model_on_uint8_pixels_gives_the_classes_of_swarmcnn_predict(digits_model_dir, digits, tmp_path, capsys):
    out = tmp_path / "digits.onnx"
    assert _export(digits_model_dir, out) == 0
    files = []
    for i in range(12):
        files.append(tmp_path / f"test-{i}.png")
        Image.fromarray(digits.test.x[i, 0].numpy()).save(files[-1])
    capsys.readouterr()
    assert main(["predict", str(digits_model_dir), *map(str, files), "--json"]) == 0
    predicted = [row["label"] for row in json.loads(capsys.readouterr().out)]
    pixels = torch.stack([load_image_file(f, (1, 8, 8)) for f in files]).numpy()
    assert pixels.dtype == np.uint8
    names = json.loads(_metadata(out)["class_names"])
    assert [names[i] for i in _onnx(out, pixels).argmax(1)] == predicted


def test_torchscript_export_equals_pytorch_and_carries_the_metadata(digits_model_dir, digits, tmp_path):
    from swarmcnn.export import torchscript_metadata

    out = tmp_path / "digits.pt"
    assert _export(digits_model_dir, out, "--format", "torchscript") == 0
    trained = load(digits_model_dir)
    scripted = torch.jit.load(str(out))
    with torch.no_grad():
        probabilities = scripted(digits.test.x)
    assert (probabilities - trained.predict_proba(digits.test.x)).abs().max() <= 1e-4
    assert probabilities.argmax(1).tolist() == trained.predict_proba(digits.test.x).argmax(1).tolist()
    meta = torchscript_metadata(out)
    assert json.loads(meta["class_names"]) == list(trained.class_names) and meta["input_dtype"] == "uint8"


@needs_onnx
def test_video_model_exports_to_onnx_and_torchscript_equal_to_pytorch(video_model_dir, tmp_path):
    trained = load(video_model_dir)
    clips = load_data("moving-digits").test.x
    expected = trained.predict_proba(clips)
    assert _export(video_model_dir, tmp_path / "moving.onnx") == 0
    assert np.abs(_onnx(tmp_path / "moving.onnx", clips.numpy()) - expected.numpy()).max() <= 1e-4
    assert _metadata(tmp_path / "moving.onnx")["input_layout"] == "NCTHW"
    assert _export(video_model_dir, tmp_path / "moving.pt", "--format", "torchscript") == 0
    with torch.no_grad():
        assert (torch.jit.load(str(tmp_path / "moving.pt"))(clips) - expected).abs().max() <= 1e-4


@needs_onnx
def test_an_export_that_differs_from_pytorch_fails_and_leaves_the_previous_file(
    digits_model_dir, tmp_path, monkeypatch, capsys
):
    from swarmcnn import export

    out = tmp_path / "digits.onnx"
    out.write_text("the previous file")
    running = export._run_onnx
    monkeypatch.setattr(export, "_run_onnx", lambda path, x: tuple(o + 1e-3 for o in running(path, x)))
    assert _export(digits_model_dir, out, "--force") == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "differs from PyTorch by 0.001" in error and "was not written" in error
    assert out.read_text() == "the previous file" and [p.name for p in tmp_path.iterdir()] == ["digits.onnx"]


def test_onnx_export_without_its_packages_names_the_install_command_and_torchscript_still_works(
    digits_model_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    assert _export(digits_model_dir, tmp_path / "m.onnx") == 2
    error = capsys.readouterr().err
    assert "pip install 'swarmcnn[onnx]'" in error and error.count("\n") == 1
    assert not (tmp_path / "m.onnx").exists()
    assert _export(digits_model_dir, tmp_path / "m.pt", "--format", "torchscript") == 0


def test_an_existing_file_needs_force_and_a_folder_is_refused(digits_model_dir, tmp_path, capsys):
    (tmp_path / "m.pt").write_text("keep")
    assert _export(digits_model_dir, tmp_path / "m.pt", "--format", "torchscript") == 2
    assert "pass --force" in capsys.readouterr().err and (tmp_path / "m.pt").read_text() == "keep"
    assert _export(digits_model_dir, tmp_path, "--format", "torchscript") == 2
    assert "is a folder" in capsys.readouterr().err


@needs_onnx
def test_a_model_of_arrays_is_checked_on_random_inputs_and_takes_float_input(tmp_path, capsys):
    from sklearn.datasets import load_digits

    from swarmcnn import SwarmCNNClassifier

    digits = load_digits()  # floats 0..16: a model trained on them takes floats
    classifier = SwarmCNNClassifier("conv4x3 relu fc16", epochs=1, device="cpu").fit(digits.images, digits.target)
    classifier.model_.save(tmp_path / "m")
    assert _export(tmp_path / "m", tmp_path / "m.onnx", "--input-dtype", "float32", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["checked_on"] == "32 random inputs" and report["max_difference"] <= 1e-4
    x = digits.images[:50, None].astype(np.float32)
    assert np.abs(_onnx(tmp_path / "m.onnx", x) - classifier.predict_proba(digits.images[:50])).max() <= 1e-4


def _section(title: str) -> list[tuple[str, str]]:
    text = README.read_text()
    body = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", body, re.S)


@needs_onnx
def test_the_readme_examples_of_use_the_model_elsewhere_run_as_written(tmp_path, monkeypatch):
    blocks = _section("Use the model elsewhere")
    assert [kind for kind, _ in blocks].count("python") >= 2 and blocks[0][0] == "bash"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for kind, code in blocks:
        if kind == "bash":
            for line in filter(None, (raw.split("#")[0].strip() for raw in code.splitlines())):
                done = subprocess.run(line, shell=True, env=env, capture_output=True, text=True)
                assert done.returncode == 0, (line, done.stderr)
        else:
            exec(compile(code, str(README), "exec"), namespace)
    assert namespace["probabilities"].shape == (len(namespace["pictures"]), 10)
    assert Path("models/digits-sklearn/model.json").is_file()


def test_export_help_explains_the_options_with_an_example(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "swarmcnn export models/digits --format onnx --out digits.onnx" in text and "--input-dtype" in text
