"""Video sources: built-in moving-digits, folders of video files or frame folders, video .npz, and their errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from swarmcnn.data import DataConfig, load_data, load_image_file
from swarmcnn.data.builtin import DIRECTIONS, moving_digits
from swarmcnn.data.video import sample_indices
from swarmcnn.errors import DataError

av = pytest.importorskip("av")


def _write_video(path: Path, clip: np.ndarray, codec: str = "mpeg4", pix_fmt: str = "yuv420p") -> Path:
    """Encode uint8 frames (T, H, W) or (T, H, W, 3) with PyAV; ffv1 with pix_fmt 'gray' is lossless."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.height, stream.width = clip.shape[1:3]
        stream.pix_fmt = pix_fmt
        for picture in clip:
            frame = av.VideoFrame.from_ndarray(picture, format="gray" if picture.ndim == 2 else "rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _square_clip(count: int, step: int, size: int = 16, start: int = 0) -> np.ndarray:
    """A 4x4 bright square whose left edge is at column start + t * step in frame t: (T, size, size) uint8."""
    clip = np.zeros((count, size, size), dtype=np.uint8)
    for t in range(count):
        left = start + t * step
        clip[t, 6:10, left : left + 4] = 220
    return clip


def _columns(frames: torch.Tensor) -> list[float]:
    """Centre column of the bright pixels in each frame (T, H, W)."""
    bright = frames.float() > 110
    columns = torch.arange(frames.shape[-1], dtype=torch.float32)
    return [float((b.float().sum(0) * columns).sum() / b.sum()) for b in bright]


def _video_folder(root: Path) -> Path:
    """Two classes of three 10-frame clips each, a square moving left or right, in .mp4 and .avi (mpeg4)."""
    for i, ext in enumerate((".mp4", ".avi", ".mp4")):
        _write_video(root / "right" / f"clip{i}{ext}", _square_clip(10, 1, start=i))
        _write_video(root / "left" / f"clip{i}{ext}", _square_clip(10, -1, start=12 - i))
    return root


def _all(data) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([data.train.x, data.val.x, data.test.x]), torch.cat([data.train.y, data.val.y, data.test.y])


def _raises(match: str):
    return pytest.raises(DataError, match=re.escape(match))


# built-in moving-digits


@pytest.fixture(scope="module")
def clips():
    return moving_digits()


def test_moving_digits_are_1200_balanced_gray_clips_of_8_frames_of_16x16(clips):
    assert clips.x.shape == (1200, 1, 8, 16, 16) and clips.x.dtype == np.uint8
    assert clips.class_names == ("up", "down", "left", "right") == DIRECTIONS
    assert np.bincount(clips.y).tolist() == [300, 300, 300, 300]


def test_moving_digits_load_as_a_video_data_set_the_same_every_time():
    first, second = load_data("moving-digits"), load_data("moving-digits")
    assert first.input_shape == (1, 8, 16, 16)
    for a, b in zip((first.train, first.val, first.test), (second.train, second.val, second.test), strict=True):
        assert a.x.shape[1:] == (1, 8, 16, 16) and a.x.dtype == torch.uint8
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


def test_moving_digits_follow_the_frames_and_image_size_settings():
    assert load_data("moving-digits", DataConfig(frames=4)).input_shape == (1, 4, 16, 16)
    assert load_data("moving-digits", DataConfig(frames=12, image_size=(20, 24))).input_shape == (1, 12, 20, 24)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (DataConfig(frames=1), "needs at least 2 frames to show motion, got 1"),
        (DataConfig(image_size=(6, 16)), "needs an image size of at least 8x8, got 6x16"),
    ],
)
def test_moving_digits_refuse_settings_that_cannot_show_a_moving_digit(config, message):
    with _raises(message):
        load_data("moving-digits", config)


def test_every_moving_digits_clip_moves_in_the_labelled_direction(clips):
    """Frame 1 matches frame 0 shifted 1 or 2 pixels one way: the direction it matches best is the label."""
    x = clips.x[:, 0].astype(np.float32)
    steps = [(-1, 0), (1, 0), (0, -1), (0, 1)]  # up, down, left, right as (rows, columns)
    errors = np.stack(
        [
            np.stack(
                [((np.roll(x[:, 0], (s * dy, s * dx), axis=(1, 2)) - x[:, 1]) ** 2).mean((1, 2)) for s in (1, 2)]
            ).min(0)
            for dy, dx in steps
        ]
    )
    assert (errors.argmin(0) == clips.y).all()


@pytest.mark.parametrize("frame", [0, 4, 7])
def test_no_single_moving_digits_frame_tells_the_direction(clips, frame):
    """The digit, its place and the noise of any one frame are drawn alike for every label."""
    from sklearn.linear_model import LogisticRegression

    pictures = clips.x[:, 0, frame].reshape(len(clips.y), -1) / 255.0
    model = LogisticRegression(max_iter=200).fit(pictures[:900], clips.y[:900])
    assert model.score(pictures[900:], clips.y[900:]) < 0.4  # chance is 0.25


# sampling and folders of videos or frames


@pytest.mark.parametrize(
    ("count", "frames", "expected"),
    [(16, 8, [1, 3, 5, 7, 9, 11, 13, 15]), (8, 8, list(range(8))), (4, 8, [0, 0, 1, 1, 2, 2, 3, 3]), (1, 3, [0, 0, 0])],
)
def test_frames_are_the_middles_of_equal_parts_and_short_clips_repeat_frames(count, frames, expected):
    assert sample_indices(count, frames).tolist() == expected


def test_video_folder_loads_gray_clips_of_the_configured_frames_that_move(tmp_path):
    data = load_data(str(_video_folder(tmp_path)), DataConfig(frames=6, val_fraction=0.2, test_fraction=0.2))
    assert data.input_shape == (1, 6, 16, 16) and data.class_names == ("left", "right")
    x, y = _all(data)
    assert x.dtype == torch.uint8 and x.is_contiguous() and len(y) == 6
    for clip, label in zip(x, y):
        moves = np.diff(_columns(clip[0]))
        assert ((moves > 0) if data.class_names[label] == "right" else (moves < 0)).all(), moves


def test_video_frames_are_sampled_evenly_by_index(tmp_path):
    _write_video(tmp_path / "a" / "0.mkv", _square_clip(12, 1), "ffv1", "gray")
    _write_video(tmp_path / "b" / "0.mkv", _square_clip(12, 1), "ffv1", "gray")
    _write_video(tmp_path / "a" / "1.mkv", _square_clip(12, 1), "ffv1", "gray")
    _write_video(tmp_path / "b" / "1.mkv", _square_clip(12, 1), "ffv1", "gray")
    data = load_data(str(tmp_path), DataConfig(frames=6, val_fraction=0, test_fraction=0))
    left_edges = [c - 1.5 for c in _columns(data.train.x[0, 0])]
    assert left_edges == [1, 3, 5, 7, 9, 11]


def test_video_frames_are_resized_to_the_image_size(tmp_path):
    data = load_data(str(_video_folder(tmp_path)), DataConfig(frames=4, image_size=(8, 10)))
    assert data.input_shape == (1, 4, 8, 10)


def test_videos_of_different_frame_sizes_need_an_image_size(tmp_path):
    _video_folder(tmp_path)
    big = _write_video(tmp_path / "right" / "big.mp4", _square_clip(12, 1, size=32))
    with _raises("videos differ in frame size") as caught:
        load_data(str(tmp_path))
    assert str(big) in str(caught.value) and "--image-size" in str(caught.value)
    assert load_data(str(tmp_path), DataConfig(image_size=(16, 16))).input_shape == (1, 8, 16, 16)


def test_one_colour_video_makes_the_whole_set_rgb(tmp_path):
    _video_folder(tmp_path)
    red = np.zeros((12, 16, 16, 3), dtype=np.uint8)
    red[..., 0] = 200
    _write_video(tmp_path / "left" / "red.mp4", red)
    assert load_data(str(tmp_path)).input_shape == (3, 8, 16, 16)


def test_frame_folders_load_in_natural_name_order(tmp_path):
    for label, step in (("left", -1), ("right", 1)):
        for clip in range(3):
            for t, picture in enumerate(_square_clip(12, step, start=0 if step > 0 else 12)):
                path = tmp_path / label / f"clip{clip}" / f"frame{t}.png"  # frame10 sorts after frame9
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(picture).save(path)
    data = load_data(str(tmp_path), DataConfig(frames=4, val_fraction=0.2, test_fraction=0.2))
    assert data.input_shape == (1, 4, 16, 16)
    x, y = _all(data)
    expected = {0: [12.5, 9.5, 6.5, 3.5], 1: [2.5, 5.5, 8.5, 11.5]}  # frames 1, 4, 7, 10 of 12
    for clip, label in zip(x, y.tolist()):
        assert _columns(clip[0]) == pytest.approx(expected[label])


def test_a_short_frame_folder_repeats_its_frames(tmp_path):
    for label in ("a", "b"):
        for t, picture in enumerate(_square_clip(3, 2)):
            (tmp_path / label / "clip").mkdir(parents=True, exist_ok=True)
            Image.fromarray(picture).save(tmp_path / label / "clip" / f"{t:03d}.png")
    data = load_data(str(tmp_path), DataConfig(frames=8, val_fraction=0, test_fraction=0))
    assert [c - 1.5 for c in _columns(data.train.x[0, 0])] == [0, 0, 0, 2, 2, 4, 4, 4]


def test_folder_mixing_images_and_videos_is_refused(tmp_path):
    _video_folder(tmp_path)
    picture = tmp_path / "left" / "still.png"
    Image.fromarray(_square_clip(1, 0)[0]).save(picture)
    with _raises("mixes image files") as caught:
        load_data(str(tmp_path))
    assert str(picture) in str(caught.value)


def test_corrupt_video_is_refused_naming_the_file(tmp_path):
    _video_folder(tmp_path)
    bad = tmp_path / "left" / "broken.mp4"
    bad.write_bytes(np.random.default_rng(0).bytes(3000))
    with _raises(f"cannot read video '{bad}'") as caught:
        load_data(str(tmp_path))
    assert "\n" not in str(caught.value)


def test_missing_pyav_says_how_to_install_it(tmp_path, monkeypatch):
    folder = _video_folder(tmp_path)
    monkeypatch.setitem(sys.modules, "av", None)  # makes `import av` raise ImportError
    with _raises("PyAV is not installed; pip install 'swarmcnn[video]'"):
        load_data(str(folder))


@pytest.mark.parametrize("frames", [0, -3, 2.5, True])
def test_bad_frames_setting_names_the_field(frames):
    with _raises(f"frames (per video clip) must be a positive integer, got {frames!r}"):
        DataConfig(frames=frames)


# video in .npz


def _npz(path: Path, x: np.ndarray, **fields) -> str:
    y = np.arange(len(x)) % 2
    np.savez(path, x=x, y=y, **fields)
    return str(path)


def test_npz_5d_is_channels_last_video(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (20, 5, 6, 7, 3), dtype=np.uint8)
    data = load_data(_npz(tmp_path / "v.npz", x), DataConfig(val_fraction=0, test_fraction=0))  # keeps the order
    assert data.input_shape == (3, 5, 6, 7)
    assert torch.equal(data.train.x, torch.from_numpy(x).permute(0, 4, 1, 2, 3))


def test_npz_4d_with_a_last_axis_other_than_1_or_3_is_gray_video(tmp_path):
    data = load_data(_npz(tmp_path / "v.npz", np.zeros((20, 5, 6, 7), dtype=np.uint8)))
    assert data.input_shape == (1, 5, 6, 7)


def test_npz_layout_field_reads_4d_as_video_even_with_3_columns(tmp_path):
    x = np.zeros((20, 5, 6, 3), dtype=np.uint8)
    assert load_data(_npz(tmp_path / "i.npz", x)).input_shape == (3, 5, 6)
    assert load_data(_npz(tmp_path / "v.npz", x, layout="NTHW")).input_shape == (1, 5, 6, 3)


def test_npz_video_is_resized_frame_by_frame(tmp_path):
    x = np.full((20, 5, 6, 6), 90, dtype=np.uint8)
    data = load_data(_npz(tmp_path / "v.npz", x), DataConfig(image_size=(3, 4)))
    assert data.input_shape == (1, 5, 3, 4) and bool((data.train.x == 90).all())


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("NCWH", "field 'layout' is 'NCWH'; expected one of NHW, NHWC, NCHW, NTHW, NTHWC, NCTHW"),
        ("NTHWC", "field 'layout' is 'NTHWC' but field 'x' has shape (20, 4, 6, 6)"),
    ],
)
def test_npz_bad_layout_is_named(tmp_path, layout, message):
    path = _npz(tmp_path / "v.npz", np.zeros((20, 4, 6, 6), dtype=np.uint8), layout=layout)
    with _raises(f"npz file '{path}' {message}"):
        load_data(path)


def test_npz_video_with_2_channels_is_refused(tmp_path):
    path = _npz(tmp_path / "v.npz", np.zeros((20, 4, 6, 6, 2), dtype=np.uint8))
    with _raises("read as NTHWC: C must be 1, 3 or 4, got 2"):
        load_data(path)


# single files for predict


def test_load_image_file_reads_a_video_or_frame_folder_for_a_video_model(tmp_path):
    clip = _square_clip(16, 1)
    lossless = _write_video(tmp_path / "a.mkv", clip, "ffv1", "gray")
    assert torch.equal(load_image_file(lossless, (1, 8, 16, 16)), torch.from_numpy(clip[1::2][None]))
    big = _write_video(tmp_path / "b.mp4", _square_clip(20, 1, size=32))
    assert load_image_file(big, (3, 5, 8, 8)).shape == (3, 5, 8, 8)
    frames = tmp_path / "frames"
    frames.mkdir()
    for t, picture in enumerate(clip):
        Image.fromarray(picture).save(frames / f"{t:02d}.png")
    assert torch.equal(load_image_file(frames, (1, 8, 16, 16)), torch.from_numpy(clip[1::2][None]))


def test_image_for_a_video_model_and_video_for_an_image_model_are_refused(tmp_path):
    picture = tmp_path / "a.png"
    Image.fromarray(_square_clip(1, 0)[0]).save(picture)
    video = _write_video(tmp_path / "a.mp4", _square_clip(8, 1))
    with _raises(f"cannot read '{picture}' as a video"):
        load_image_file(picture, (1, 8, 16, 16))
    with _raises(f"'{video}' is a video but the model takes images"):
        load_image_file(video, (1, 16, 16))


def test_cli_train_on_a_corrupt_video_prints_one_line_naming_the_file(tmp_path):
    _video_folder(tmp_path / "data")
    bad = tmp_path / "data" / "left" / "broken.mp4"
    bad.write_bytes(np.random.default_rng(1).bytes(3000))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "swarmcnn",
            "train",
            str(tmp_path / "data"),
            "--arch",
            "fc8",
            "--out",
            str(tmp_path / "m"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"swarmcnn: error: cannot read video '{bad}'"), result.stderr
