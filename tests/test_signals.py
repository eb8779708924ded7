"""Signals through every command: a 1-D CNN trained on .ts files finds a bump in a noisy recording; evaluate,
predict (one row per case), export (float32 (N, C, L), checked in onnxruntime), explain (the evidence on the bump),
report (lines, not pictures), the estimator, and the per-series normalisation carried into every one of them."""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import torch

from swarmcnn.checkpoint import load
from swarmcnn.cli import main
from swarmcnn.data import load_data
from swarmcnn.train import augment

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
needs_onnx = pytest.mark.skipif(any(find_spec(n) is None for n in ("onnx", "onnxruntime", "onnxscript")),
                                reason="the onnx extra is not installed")
needs_captum = pytest.mark.skipif(find_spec("captum") is None, reason="explaining needs the explain extra (Captum)")

LENGTH = 40
ARCH = "conv16x7 bn relu maxpool2 conv16x5 bn relu maxpool20"  # the last pool: the strongest match anywhere
TRAIN = ["--arch", ARCH, "--epochs", "10", "--seed", "0", "--threads", "1", "--quiet"]
NEAR = {"gradcam": 4, "integrated-gradients": 4, "occlusion": 7}  # occlusion's window is a quarter of the series


def recordings(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two channels of noise at a level of their own; class 'bump' has a bump somewhere in channel 0. Returns the
    cases (N, 2, L), the labels (0 flat, 1 bump) and where each bump is centred."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.3, (count, 2, LENGTH)) + rng.uniform(-2, 2, (count, 2, 1))
    y = np.arange(count) % 2
    centre = rng.integers(4, LENGTH - 4, count)
    x[:, 0] += 2.5 * y[:, None] * np.exp(-0.5 * ((np.arange(LENGTH)[None] - centre[:, None]) / 1.5) ** 2)
    return x, y, centre


def write_ts(path: Path, x: np.ndarray, y: np.ndarray | None) -> Path:
    names = ("flat", "bump")
    header = "@problemName Bump\n@univariate false\n@dimensions 2\n@equalLength true\n"
    header += f"@seriesLength {LENGTH}\n" + ("@classLabel true flat bump\n" if y is not None else "@classLabel false\n")
    lines = [":".join(",".join(f"{v:.6f}" for v in channel) for channel in case)
             + ("" if y is None else f":{names[label]}") for case, label in zip(x, y if y is not None else x)]
    path.write_text(header + "@data\n" + "\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def bump_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bump")
    write_ts(folder / "Bump_TRAIN.ts", *recordings(160, seed=1)[:2])
    write_ts(folder / "Bump_TEST.ts", *recordings(40, seed=2)[:2])
    return folder


@pytest.fixture(scope="module")
def bump_model(bump_folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("models") / "bump"
    assert main(["train", str(bump_folder), *TRAIN, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def series_model(bump_folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("models") / "bump-series"
    assert main(["train", str(bump_folder), *TRAIN, "--normalize", "series", "--out", str(out)]) == 0
    return out


def test_a_1d_cnn_trained_on_ts_files_finds_the_bump_on_their_own_test_split(bump_model, bump_folder, capsys):
    assert main(["evaluate", str(bump_model), str(bump_folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 40 and report["accuracy"] >= 0.9, report["accuracy"]
    trained = load(bump_model)
    assert trained.input_shape == (2, LENGTH) and trained.class_names == ("flat", "bump")
    assert isinstance(trained.module[0], torch.nn.Conv1d) and not trained.normalization.series


def test_predict_gives_one_row_per_case_of_ts_and_npy_files(bump_model, tmp_path, capsys):
    x, _, _ = recordings(6, seed=3)
    cases = write_ts(tmp_path / "cases.ts", x, None)
    np.save(tmp_path / "cases.npy", x[:2])
    assert main(["predict", str(bump_model), str(cases), str(tmp_path / "cases.npy"), "--json", "--top", "2",
                 "--precision", "fp32"]) == 0  # as predict_proba below (auto may mean bf16)
    rows = json.loads(capsys.readouterr().out)
    assert [(row["file"], row["case"]) for row in rows] == [(str(cases), i) for i in range(6)] + [
        (str(tmp_path / "cases.npy"), i) for i in range(2)]
    expected = load(bump_model).predict_proba(torch.from_numpy(x.astype(np.float32))).max(1)
    assert [row["label"] for row in rows[:6]] == [("flat", "bump")[i] for i in expected.indices.tolist()]
    assert np.allclose([row["probability"] for row in rows[:6]], expected.values.numpy(), atol=1e-5)
    assert rows[6]["label"] == rows[0]["label"] and len(rows[0]["top"]) == 2


@needs_onnx
def test_export_takes_float32_signals_and_agrees_with_pytorch_in_onnxruntime(bump_model, tmp_path, capsys):
    import onnx
    import onnxruntime

    out = tmp_path / "bump.onnx"
    assert main(["export", str(bump_model), "--out", str(out), "--threads", "1"]) == 0
    assert "input 'signals' float32 N×2×40" in capsys.readouterr().out
    meta = {prop.key: prop.value for prop in onnx.load(str(out)).metadata_props}
    assert meta["input_layout"] == "NCL" and meta["input_dtype"] == "float32"
    x = recordings(10, seed=4)[0].astype(np.float32)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].name == "signals"
    expected = load(bump_model).predict_proba(torch.from_numpy(x)).numpy()
    assert np.abs(session.run(None, {"signals": x})[0] - expected).max() <= 1e-4
    assert main(["export", str(bump_model), "--out", str(tmp_path / "b.onnx"), "--input-dtype", "uint8"]) == 2
    assert "float32" in capsys.readouterr().err


@needs_onnx
def test_series_normalization_is_stored_and_applied_at_predict_and_in_exported_files(series_model, tmp_path, capsys):
    import onnxruntime

    trained = load(series_model)
    assert trained.normalization.series
    assert json.loads((series_model / "model.json").read_text())["normalization"]["series"] is True
    x = torch.from_numpy(recordings(10, seed=5)[0].astype(np.float32))
    moved = x * torch.tensor([10.0, 0.5]).view(1, 2, 1) + torch.tensor([100.0, -3.0]).view(1, 2, 1)
    assert torch.allclose(trained.predict_proba(moved), trained.predict_proba(x), atol=1e-4)  # level, scale: gone
    for kind, name in (("onnx", "m.onnx"), ("torchscript", "m.pt")):
        assert main(["export", str(series_model), "--format", kind, "--out", str(tmp_path / name)]) == 0
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    expected = trained.predict_proba(x).numpy()
    assert np.abs(session.run(None, {"signals": moved.numpy()})[0] - expected).max() <= 1e-4
    scripted = torch.jit.load(str(tmp_path / "m.pt"))
    assert np.abs(scripted(moved).detach().numpy() - expected).max() <= 1e-4


@needs_captum
@pytest.mark.parametrize("method", ["gradcam", "integrated-gradients", "occlusion"])
def test_the_evidence_for_a_bump_lies_on_the_bump(bump_model, method):
    from swarmcnn.explain import explain

    x, y, centre = recordings(40, seed=6)
    bumps = torch.from_numpy(x[y == 1].astype(np.float32))
    found = explain(load(bump_model), bumps, method)
    assert all(explanation.heatmap.shape == (LENGTH,) and explanation.frame_importance is None for explanation in found)
    hits = sum(abs(e.peak[0] - c) <= NEAR[method] for e, c in zip(found, centre[y == 1]) if e.label == "bump")
    assert hits >= 16, f"{method}: the peak fell on the bump in {hits} of 20 recordings"


@needs_captum
def test_explain_draws_lines_with_the_evidence_features_as_curves_and_the_stack(bump_model, bump_folder, tmp_path,
                                                                               capsys):
    from PIL import Image

    out = tmp_path / "why"
    cases = write_ts(tmp_path / "cases.ts", recordings(2, seed=7)[0], None)
    assert main(["explain", str(bump_model), str(cases), "--data", str(bump_folder), "--samples", "1",
                 "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [row["file"] for row in report["explanations"]] == [f"{cases}[0]", f"{cases}[1]", "bump0 test #0"]
    assert report["explanations"][-1]["true"] in ("flat", "bump")
    assert all(len(row["peak"]) == 1 and Path(row["picture"]).is_file() for row in report["explanations"])
    assert Image.open(report["features"]).size[0] > 100
    stack = report["stack"]
    assert [layer["kind"] for layer in stack["layers"]][:3] == ["convolution", "ReLU", "pooling"]
    assert stack["layers"][0]["shape"] == [16, LENGTH] and (out / "stack" / stack["match"]).is_file()
    page = (out / "stack" / "index.html").read_text()
    assert "stretch of signal" in page and "instant" in page


def test_the_report_draws_signals_as_lines(bump_folder, tmp_path, capsys):
    run = tmp_path / "run"
    search = ["--evaluations", "3", "--candidate-epochs", "1", "--final-epochs", "1", "--rungs", "0",
              "--threads", "1", "--quiet"]
    assert main(["search", str(bump_folder), *search, "--out", str(run)]) == 0
    assert main(["report", str(run), "--out", str(tmp_path / "report.html")]) == 0
    text = (tmp_path / "report.html").read_text()
    assert "(channels, instants)" in text and "40 instants" in text
    assert 'id="fig-features"' in text
    if 'id="fig-misclassified"' in text:  # a network trained one epoch gets some wrong; drawn as an SVG of lines
        figure = text[text.index('id="fig-misclassified"'):]
        assert figure.index("<svg") < figure.index("</figure>") and "each series drawn over time" in figure


def test_augment_shifts_signals_along_time_only_with_their_edges_repeated():
    x = torch.arange(32, dtype=torch.float32).view(1, 1, 32).repeat(64, 3, 1) + torch.arange(3.0).view(1, 3, 1) * 100
    shifted = augment(x, torch.Generator().manual_seed(0))
    offsets = shifted[:, :, 8] - x[:, :, 8]
    assert torch.equal(offsets[:, 0], offsets[:, 1]) and torch.equal(offsets[:, 1], offsets[:, 2])  # channels alike
    assert offsets.abs().max() <= 4 and len(offsets[:, 0].unique()) > 3  # up to L/8 instants, early or late
    assert torch.equal(shifted.diff(dim=-1).clamp(0, 1).max(-1).values, torch.ones(64, 3))  # still a ramp in time


def test_flip_is_refused_for_signals_in_one_line(bump_folder, tmp_path, capsys):
    assert main(["train", str(bump_folder), *TRAIN, "--flip", "--out", str(tmp_path / "m")]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "--flip" in error and "signal" in error


def test_the_estimator_takes_signal_arrays_in_cross_val_score():
    from sklearn.model_selection import cross_val_score

    from swarmcnn import SwarmCNNClassifier

    x, y, _ = recordings(150, seed=8)
    x[3, 1, 5] = np.nan  # a missing value, filled along time
    labels = np.array(["flat", "bump"])[y]
    classifier = SwarmCNNClassifier(ARCH, epochs=10, layout="NCL")
    scores = cross_val_score(classifier, x, labels, cv=3)
    assert scores.mean() >= 0.75, scores  # chance: 0.5
    fitted = classifier.fit(x, labels)
    assert fitted.input_shape_ == (2, LENGTH) and set(fitted.predict(x[:4])) <= {"flat", "bump"}


def test_train_says_how_the_series_were_prepared(tmp_path, capsys):
    folder = tmp_path / "ragged"
    folder.mkdir()
    x, y, _ = recordings(40, seed=9)
    lines = [":".join(",".join(f"{v:.3f}" for v in channel[: LENGTH - i % 3]) for channel in case)
             + f":{('flat', 'bump')[label]}" for i, (case, label) in enumerate(zip(x, y))]
    lines[0] = "?" + lines[0][lines[0].index(","):]  # its first value missing
    header = "@dimensions 2\n@equalLength false\n@missing true\n@classLabel true flat bump\n@data\n"
    (folder / "Ragged_TRAIN.ts").write_text(header + "\n".join(lines[:30]) + "\n")
    (folder / "Ragged_TEST.ts").write_text(header + "\n".join(lines[30:]) + "\n")
    assert main(["train", str(folder), "--arch", "conv4x3 relu gap", "--epochs", "1", "--threads", "1",
                 "--out", str(tmp_path / "m")]) == 0
    said = capsys.readouterr().err
    assert "signals of 40 instants" in said and "resampled to 40" in said and "1 missing value filled" in said
    assert load_data(str(folder)).signal.resampled == 26
