"""Hostile inputs to the data layer and the model builder (issue 13): each is refused in one line naming the
culprit, or read the one sensible way, before anything of a size the input decides is allocated."""

from __future__ import annotations

import gzip
import os
import re
import struct
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from swarmcnn import memory
from swarmcnn.data import DataConfig, check_regular_file, load_data, load_image_file
from swarmcnn.errors import DataError, SpecError, SwarmCNNError
from swarmcnn.model import build_model, check_model_fits
from swarmcnn.spec import Spec

GB = 10**9


def _raises(match: str, error: type[Exception] = DataError):
    return pytest.raises(error, match=re.escape(match))


@pytest.fixture
def small_memory(monkeypatch):
    """16 GB free, whatever the machine has, so a refusal does not depend on where the test runs."""
    monkeypatch.setattr(memory, "available_bytes", lambda: 16 * GB)


def _npz(path: Path, x: np.ndarray, y: np.ndarray | None = None, **fields) -> str:
    np.savez(path, x=x, y=np.arange(len(x)) % 2 if y is None else y, **fields)
    return str(path)


def _image_folder(root: Path, per_class: int = 3) -> Path:
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            Image.new("L", (6, 5), 40 * i).save(root / label / f"{i}.png")
    return root


# memory


def test_memory_available_is_measured():
    assert memory.available_bytes() > 0


def test_a_size_beyond_the_memory_is_refused_in_one_line_with_both_sizes(small_memory):
    with _raises("the thing needs 20.0 GB of memory but only 16.0 GB is available", SwarmCNNError):
        memory.check_fits(20 * GB, "the thing")
    memory.check_fits(15 * GB, "the thing")


def test_sizes_beyond_what_a_float_holds_are_still_shown():
    assert memory.format_bytes(10**400) == "1.0E+391 GB" and memory.format_bytes(5 * 10**6) == "5.0 MB"


# npz labels and layouts


def test_npz_labels_far_apart_make_three_classes_without_allocating_by_the_largest(tmp_path):
    y = np.array([0, 1, 10**9] * 10)
    data = load_data(_npz(tmp_path / "d.npz", np.zeros((30, 4, 4), dtype=np.uint8), y))
    assert data.class_names == ("0", "1", "1000000000")
    labels = torch.cat([data.train.y, data.val.y, data.test.y])
    assert sorted(labels.unique().tolist()) == [0, 1, 2]


def test_npz_labels_keep_their_values_as_names_in_order(tmp_path):
    x = np.arange(30, dtype=np.uint8)[:, None, None].repeat(4, 1).repeat(4, 2)
    y = np.array([7, 3] * 15)
    data = load_data(_npz(tmp_path / "d.npz", x, y), DataConfig(val_fraction=0, test_fraction=0))
    assert data.class_names == ("3", "7")
    index = data.train.x[:, 0, 0, 0].long()  # each picture holds its position in the file
    assert [data.class_names[label] for label in data.train.y.tolist()] == [str(y[i]) for i in index.tolist()]


def test_npz_channel_last_pictures_of_four_channels_keep_all_four(tmp_path):
    """A fourth channel of an array may be data (near-infrared, depth), not an alpha to drop (issue 27)."""
    x = np.zeros((20, 8, 8, 4), dtype=np.uint8)
    x[..., 0], x[..., 2], x[..., 3] = 10, 30, 200
    data = load_data(_npz(tmp_path / "d.npz", x))
    assert data.input_shape == (4, 8, 8)
    assert data.train.x[:, 0].eq(10).all() and data.train.x[:, 1].eq(0).all() and data.train.x[:, 2].eq(30).all()
    assert data.train.x[:, 3].eq(200).all()


def test_npz_one_channel_first_is_a_picture(tmp_path):
    assert load_data(_npz(tmp_path / "d.npz", np.zeros((20, 1, 6, 7), dtype=np.uint8))).input_shape == (1, 6, 7)


def test_npz_ambiguous_channels_first_shape_is_refused_saying_how_to_disambiguate(tmp_path):
    path = _npz(tmp_path / "d.npz", np.zeros((20, 3, 16, 16), dtype=np.uint8))
    with _raises(f"npz file '{path}' field 'x' of shape (20, 3, 16, 16) is ambiguous") as caught:
        load_data(path)
    assert "layout='NCHW'" in str(caught.value) and "layout='NTHW'" in str(caught.value)
    assert load_data(_npz(tmp_path / "p.npz", np.zeros((20, 3, 16, 16)), layout="NCHW")).input_shape == (3, 16, 16)
    assert load_data(_npz(tmp_path / "v.npz", np.zeros((20, 3, 16, 16)), layout="NTHW")).input_shape == (1, 3, 16, 16)


def test_npz_channels_first_video_layout_is_read(tmp_path):
    x = np.zeros((20, 3, 5, 6, 7), dtype=np.uint8)
    x[:, 1] = 9
    data = load_data(_npz(tmp_path / "d.npz", x, layout="NCTHW"))
    assert data.input_shape == (3, 5, 6, 7) and data.train.x[:, 1].eq(9).all() and data.train.x[:, 0].eq(0).all()


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (np.zeros((20, 4, 4), dtype=bool), None, "field 'x' has dtype bool; expected integers or floats"),
        (np.zeros((20, 4, 4), dtype=complex), None, "field 'x' has dtype complex128; expected integers or floats"),
        (np.full((20, 4, 4), "a"), None, "field 'x' has dtype <U1; expected integers or floats"),
        (np.zeros((20, 4, 4), dtype="datetime64[s]"), None, "field 'x' has dtype datetime64[s]"),
        (np.zeros((20, 4, 4), dtype=object), None, "field 'x' cannot be read without pickle"),
        (np.full((20, 4, 4), 1e300), None, "field 'x' holds values beyond float32's range"),
        (np.full((20, 4, 4), -np.inf), None, "field 'x' holds NaN or infinite values (first in sample 0)"),
        (np.zeros((0, 4, 4), dtype=np.uint8), np.zeros(0, dtype=int), "holds no samples"),
        (np.zeros((20, 0, 4), dtype=np.uint8), None, "field 'x' has shape (20, 0, 4): its pictures hold no pixels"),
        (np.array(5), np.array(1), "field 'x' has shape ()"),
        (np.zeros((20, 4, 4), dtype=np.uint8), np.array(1), "field 'y' has shape (); expected one label per sample"),
        (np.zeros((20, 4, 4), dtype=np.uint8), np.arange(19) % 2, "field 'x' has 20 samples but field 'y' has 19"),
        (np.zeros((20, 4, 4), dtype=np.uint8), np.arange(20) % 2 == 0, "field 'y' has dtype bool"),
        (np.zeros((20, 4, 4), dtype=np.uint8), np.full(20, 2**64 - 1, dtype=np.uint64), "labels out of range"),
        (np.zeros((20, 4, 4), dtype=np.uint8), np.arange(20) - 1, "labels out of range: found -1"),
    ],
    ids=[
        "bool",
        "complex",
        "strings",
        "datetimes",
        "objects",
        "beyond-float32",
        "inf",
        "empty",
        "zero-sized",
        "0-d",
        "0-d-labels",
        "lengths-differ",
        "bool-labels",
        "huge-labels",
        "negative-labels",
    ],
)
def test_npz_bad_arrays_are_refused_naming_the_file_and_the_array(tmp_path, x, y, message):
    path = _npz(tmp_path / "d.npz", x, y)
    with _raises(message) as caught:
        load_data(path)
    assert f"npz file '{path}'" in str(caught.value) and "\n" not in str(caught.value)


def test_npz_header_claiming_more_than_the_memory_is_refused_before_reading(tmp_path):
    """A few bytes whose .npy header claims 10**18 values: reading it would ask numpy for an exabyte."""
    path = tmp_path / "d.npz"
    header = {"descr": "|u1", "fortran_order": False, "shape": (10**6, 10**6, 10**6)}
    with open(tmp_path / "x.npy", "wb") as stream:
        np.lib.format.write_array_header_1_0(stream, header)
        stream.write(bytes(64))
    np.save(tmp_path / "y.npy", np.arange(4) % 2)
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(tmp_path / "x.npy", "x.npy")
        archive.write(tmp_path / "y.npy", "y.npy")
    with _raises(f"npz file '{path}' field 'x' of shape (1000000, 1000000, 1000000) and dtype uint8 needs"):
        load_data(str(path))


def test_npz_too_large_for_the_memory_is_refused_naming_the_field(tmp_path, monkeypatch):
    path = _npz(tmp_path / "d.npz", np.zeros((20, 100, 100), dtype=np.uint8))
    monkeypatch.setattr(memory, "available_bytes", lambda: 10**5)
    with _raises(f"npz file '{path}' field 'x' of shape (20, 100, 100) and dtype uint8 needs 0.6 MB of memory"):
        load_data(path)


# IDX


def _idx(path: Path, magic: int, shape: tuple[int, ...], body: bytes) -> Path:
    data = struct.pack(f">I{len(shape)}I", magic, *shape) + body
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def _idx_folder(root: Path, train_labels: list[int], test_labels: list[int]) -> Path:
    for part, labels in (("train", train_labels), ("t10k", test_labels)):
        _idx(root / f"{part}-images-idx3-ubyte", 0x803, (len(labels), 4, 4), bytes(16 * len(labels)))
        _idx(root / f"{part}-labels-idx1-ubyte", 0x801, (len(labels),), bytes(labels))
    return root


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_header_whose_dimensions_overflow_is_refused_before_reading(tmp_path, suffix):
    _idx_folder(tmp_path, [0, 1] * 6, [0, 1])
    (tmp_path / "train-images-idx3-ubyte").unlink()
    path = _idx(tmp_path / f"train-images-idx3-ubyte{suffix}", 0x803, (2**31, 2**31, 4), bytes(100))
    expected = "is truncated: header gives shape (2147483648, 2147483648, 4)" if not suffix else "needs"
    with _raises(f"IDX file '{path}'") as caught:
        load_data(str(tmp_path))
    assert expected in str(caught.value)


def test_idx_test_class_missing_from_training_is_refused_naming_class_and_file(tmp_path):
    _idx_folder(tmp_path, [0, 1, 2] * 4, [0, 1, 12])
    with _raises(f"IDX file '{tmp_path / 't10k-labels-idx1-ubyte'}' holds class 12 that the training labels"):
        load_data(str(tmp_path))


def test_idx_classes_are_the_training_label_values_without_empty_classes(tmp_path):
    data = load_data(str(_idx_folder(tmp_path, [0, 3, 9] * 4, [9, 0])))
    assert data.class_names == ("0", "3", "9")
    assert data.test.y.tolist() == [2, 0]


# video


def _video(path: Path, frames: int) -> tuple[bytes, list[int]]:
    """An mp4 of noisy 16x16 frames with its index first (faststart), and each frame's size in the file."""
    av = pytest.importorskip("av")
    rng = np.random.default_rng(0)
    sizes = []
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.height = stream.width = 16
        stream.pix_fmt = "yuv420p"
        for _ in range(frames):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                sizes.append(packet.size)
                container.mux(packet)
        for packet in stream.encode():
            sizes.append(packet.size)
            container.mux(packet)
    return path.read_bytes(), sizes


def _video_folder(root: Path, frames: int = 8) -> Path:
    for label in ("a", "b"):
        for i in range(3):
            _video(root / label / f"{i}.mp4", frames)
    return root


def test_truncated_video_of_which_2_of_8_frames_decode_is_refused_with_the_counts(tmp_path):
    _video_folder(tmp_path)
    data, sizes = _video(tmp_path / "a" / "cut.mp4", 8)
    start = data.index(b"mdat") + 4  # the frames follow the index, in order: cut after the second
    (tmp_path / "a" / "cut.mp4").write_bytes(data[: start + sum(sizes[:2])])
    with _raises(f"video '{tmp_path / 'a' / 'cut.mp4'}' decodes to only 2 frame(s) of the 8 its header states"):
        load_data(str(tmp_path), DataConfig(frames=8))


def test_slightly_short_video_repeats_frames(tmp_path):
    _video_folder(tmp_path, frames=5)
    assert load_data(str(tmp_path), DataConfig(frames=8)).input_shape == (3, 8, 16, 16)


def test_long_video_without_a_frame_count_is_sampled_alike_when_its_frames_do_not_fit(tmp_path, monkeypatch):
    """Matroska states no frame count: every frame is kept while they fit, else counted and sampled in a
    second pass; either way the same frames come out."""
    av = pytest.importorskip("av")
    path = tmp_path / "long.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.height, stream.width, stream.pix_fmt = 16, 16, "gray"  # lossless
        for t in range(12):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.full((16, 16), 20 * t, np.uint8), "gray")))
        container.mux(stream.encode())
    whole = load_image_file(path, (1, 6, 16, 16))
    monkeypatch.setattr("swarmcnn.data.video.available_bytes", lambda: 4 * 256)  # room for about one frame
    assert torch.equal(load_image_file(path, (1, 6, 16, 16)), whole)
    assert whole[0, :, 0, 0].tolist() == [20, 60, 100, 140, 180, 220]  # frames 1, 3, ..., 11 of 12


def test_frames_beyond_the_memory_are_refused_before_decoding(tmp_path, small_memory):
    _video_folder(tmp_path)
    with _raises("of 100000000 frames of 16x16 needs"):
        load_data(str(tmp_path), DataConfig(frames=10**8))
    with _raises("built-in 'moving-digits' of 100000 frames at 16x16 needs"):
        load_data("moving-digits", DataConfig(frames=100000))


# image sizes


def test_image_size_beyond_the_memory_is_refused_before_any_image_is_read(tmp_path, small_memory):
    _image_folder(tmp_path)
    with _raises("6 images of 100000x100000 needs 540.0 GB of memory but only 16.0 GB is available"):
        load_data(str(tmp_path), DataConfig(image_size=(100000, 100000)))
    with _raises("1797 inputs resized to 100000x100000 needs"):
        load_data("digits", DataConfig(image_size=(100000, 100000)))
    with _raises("built-in 'shapes' at 100000x100000 needs"):
        load_data("shapes", DataConfig(image_size=(100000, 100000)))


def test_predict_input_beyond_the_memory_is_refused(tmp_path, small_memory):
    Image.new("L", (6, 5)).save(tmp_path / "a.png")
    with _raises(f"an input of 3x100000x100000 for '{tmp_path / 'a.png'}' needs"):
        load_image_file(tmp_path / "a.png", (3, 100000, 100000))


# FIFOs, devices and sockets


def _within(seconds: float, call, fifo: Path) -> BaseException | None:
    """call() in a thread; a reader still blocked on the FIFO after `seconds` is a failure (and is released)."""
    outcome: dict[str, BaseException] = {}

    def run():
        try:
            call()
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # a writer that leaves unblocks the reader
        pytest.fail(f"reading the FIFO '{fifo}' blocked")
    return outcome.get("error")


def _assert_refused(call, fifo: Path) -> None:
    error = _within(10, call, fifo)
    assert isinstance(error, DataError), error
    assert f"'{fifo}': it is a FIFO (named pipe); only regular files are read" in str(error)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_predict_on_a_fifo_is_refused_not_blocked(tmp_path):
    os.mkfifo(tmp_path / "x.png")
    _assert_refused(lambda: load_image_file(tmp_path / "x.png", (1, 8, 8)), tmp_path / "x.png")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_fifo_in_an_image_folder_is_refused_not_blocked(tmp_path):
    _image_folder(tmp_path)
    os.mkfifo(tmp_path / "a" / "x.png")
    _assert_refused(lambda: load_data(str(tmp_path)), tmp_path / "a" / "x.png")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_fifo_as_npz_source_is_refused_not_blocked(tmp_path):
    os.mkfifo(tmp_path / "d.npz")
    _assert_refused(lambda: load_data(str(tmp_path / "d.npz")), tmp_path / "d.npz")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_fifo_as_idx_file_is_refused_not_blocked(tmp_path):
    _idx_folder(tmp_path, [0, 1] * 6, [0, 1])
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    os.mkfifo(tmp_path / "t10k-labels-idx1-ubyte")
    _assert_refused(lambda: load_data(str(tmp_path)), tmp_path / "t10k-labels-idx1-ubyte")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_fifo_as_video_or_frame_is_refused_not_blocked(tmp_path):
    _video_folder(tmp_path)
    os.mkfifo(tmp_path / "b" / "x.mp4")
    _assert_refused(lambda: load_data(str(tmp_path)), tmp_path / "b" / "x.mp4")
    clip = tmp_path / "clip"
    clip.mkdir()
    Image.new("L", (6, 5)).save(clip / "0.png")
    os.mkfifo(clip / "1.png")
    _assert_refused(lambda: load_image_file(clip, (1, 2, 5, 6)), clip / "1.png")


def test_devices_and_folders_are_not_regular_files(tmp_path):
    if Path("/dev/null").exists():
        with _raises("cannot read image '/dev/null': it is a character device"):
            check_regular_file("/dev/null", "image")
    with _raises(f"cannot read file '{tmp_path}': it is a folder"):
        check_regular_file(tmp_path)
    with _raises(f"cannot read file '{tmp_path / 'gone'}': no such file"):
        check_regular_file(tmp_path / "gone")


# model size


@pytest.mark.parametrize(
    ("spec", "input_shape", "words"),
    [
        ("fc99999999999999999999", (1, 8, 8), "(6,699,999,999,999,999,999,935 parameters) needs 2.7E+13 GB"),
        ("fc2000000 fc2000000", (1, 8, 8), "(4,000,136,000,002 parameters) needs 16,000.6 GB"),
        ("conv100000x3", (3, 224, 224), "(10,038,000,002 parameters) needs 60.2 GB"),
    ],
)
def test_model_too_large_for_the_memory_is_refused_before_torch_allocates(spec, input_shape, words, small_memory):
    with _raises(f"model '{spec}' for {'x'.join(map(str, input_shape))} inputs {words}", SpecError):
        build_model(Spec.parse(spec), input_shape, 2)


def test_training_batch_too_large_for_the_memory_is_refused(small_memory):
    spec = Spec.parse("conv100000x3")
    build_model(spec, (1, 8, 8), 10)  # 65 million weights fit
    with _raises("model 'conv100000x3' for 1x8x8 inputs (65,000,010 parameters, batches of 512) needs", SpecError):
        check_model_fits(spec, (1, 8, 8), 10, batch_size=512, training=True)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("conv4x3s99999999999999999999", "99999999999999999999 exceeds 2147483647, torch's limit"),
        ("maxpool2s99999999999999999999", "99999999999999999999 exceeds 2147483647, torch's limit"),
        ("fc" + "9" * 5000, "the number of neurons has 5000 digits"),
    ],
    ids=["stride", "pool-stride", "5000-digits"],
)
def test_numbers_torch_or_python_cannot_take_are_refused(spec, message):
    with _raises(message, SpecError):
        build_model(Spec.parse(spec), (1, 8, 8), 2)
