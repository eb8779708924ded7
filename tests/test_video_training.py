"""Time as an extra dimension: a 3-D CNN learns moving-digits' direction; the same layers on one frame cannot."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from swarmcnn.checkpoint import load
from swarmcnn.cli import main
from swarmcnn.data import Dataset, Split, load_data
from swarmcnn.data.builtin import DIRECTIONS
from swarmcnn.hardware import resolve
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization, TrainConfig, build_seeded, evaluate, fit

ARCH = "conv16x3 relu maxpool2 conv32x3 relu maxpool2 fc64 relu"  # the acceptance check's network
EPOCHS = 3  # the acceptance check trains 15; 3 reach about 0.95


@pytest.fixture(scope="module")
def video_model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "moving"
    args = ["train", "moving-digits", "--arch", ARCH, "--epochs", str(EPOCHS), "--seed", "0", "--out", str(out)]
    assert main([*args, "--quiet"]) == 0
    return out


def test_3d_cnn_learns_the_direction_of_motion(video_model_dir, capsys):
    assert main(["evaluate", str(video_model_dir), "moving-digits", "--split", "test", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] >= 0.9, report["accuracy"]
    assert load(video_model_dir).input_shape == (1, 8, 16, 16)


def test_the_same_cnn_on_single_frames_stays_near_chance():
    data = load_data("moving-digits")
    middle = data.input_shape[1] // 2

    def frames(split: Split) -> Split:  # time removed: one frame per clip, (N, 1, H, W)
        return Split(split.x[:, :, middle].contiguous(), split.y)

    stills = Dataset(
        frames(data.train), frames(data.val), frames(data.test), data.class_names, (1, 16, 16), data.source
    )
    model = build_seeded(Spec.parse(ARCH), stills.input_shape, len(DIRECTIONS), seed=0)
    assert isinstance(model[0], torch.nn.Conv2d)
    normalization = Normalization.of(stills.train.x)
    fit(model, stills, normalization, TrainConfig(epochs=EPOCHS, seed=0))
    assert evaluate(model, stills.test, normalization).accuracy < 0.45  # chance is 0.25


def test_predict_classifies_video_files_as_the_model_does_the_stored_clips(video_model_dir, tmp_path, capsys):
    import av

    trained = load(video_model_dir)
    clips = load_data("moving-digits").test.x[:6]
    files = []
    for i, clip in enumerate(clips[:, 0].numpy()):
        files.append(tmp_path / f"clip{i}.mkv")
        with av.open(str(files[-1]), "w") as container:  # ffv1 in gray is lossless: the file holds the clip exactly
            stream = container.add_stream("ffv1", rate=8)
            stream.height, stream.width, stream.pix_fmt = 16, 16, "gray"
            for picture in clip:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="gray")))
            container.mux(stream.encode())
    larger = tmp_path / "larger.mp4"  # 20 frames of 32x32 in lossy mpeg4: sampled to 8 and resized to 16x16
    with av.open(str(larger), "w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.height, stream.width, stream.pix_fmt = 32, 32, "yuv420p"
        for t in range(20):
            picture = np.zeros((32, 32), dtype=np.uint8)
            picture[8:24, t : t + 12] = 200
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="gray")))
        container.mux(stream.encode())
    assert main(["predict", str(video_model_dir), *map(str, files), str(larger), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows.pop()["label"] in DIRECTIONS
    expected = trained.predict_proba(clips, resolve()).max(1)  # as predict computes by default (auto)
    assert [row["file"] for row in rows] == [str(f) for f in files]
    assert [row["label"] for row in rows] == [DIRECTIONS[i] for i in expected.indices.tolist()]
    assert np.allclose([row["probability"] for row in rows], expected.values.numpy(), atol=1e-5)


def test_frames_option_sets_the_clip_length_the_model_takes(tmp_path, capsys):
    out = tmp_path / "four"
    args = ["train", "moving-digits", "--arch", "conv4x3 relu fc8", "--frames", "4", "--epochs", "1", "--out", str(out)]
    assert main([*args, "--quiet"]) == 0
    assert load(out).input_shape == (1, 4, 16, 16)
    assert main(["evaluate", str(out), "moving-digits", "--json"]) == 0  # the stored frames rebuild the same data
    assert 0 <= json.loads(capsys.readouterr().out)["accuracy"] <= 1
