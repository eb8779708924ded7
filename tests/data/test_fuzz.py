"""Random bytes and random arrays fed to every data source: a clean SwarmCNNError or a valid data set, never
another exception (a traceback, an allocator's MemoryError) and never a set that cannot be trained on."""

from __future__ import annotations

import gzip
import io
import os
import struct
import tempfile
import zipfile
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from swarmcnn.data import DataConfig, load_data, load_image_file
from swarmcnn.data.npz import LAYOUTS
from swarmcnn.errors import SwarmCNNError

# SWARMCNN_FUZZ_EXAMPLES=2000 for a longer hunt; the default keeps the file within seconds
EXAMPLES = int(os.environ.get("SWARMCNN_FUZZ_EXAMPLES", "50"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _checked(source: Path | str, config: DataConfig | None = None) -> None:
    """Load source: a SwarmCNNError is a clean refusal; anything else it returns must be a usable set."""
    try:
        data = load_data(str(source), config or DataConfig())
    except SwarmCNNError as error:
        assert "\n" not in str(error)
        event("refused")  # --hypothesis-show-statistics shows how often each outcome was reached
        return
    event("loaded")
    assert len(data.class_names) >= 2 and len(set(data.class_names)) == len(data.class_names)
    for split in (data.train, data.val, data.test):
        assert len(split) > 0
        assert split.x.dtype in (torch.uint8, torch.float32) and split.y.dtype == torch.int64
        assert tuple(split.x.shape[1:]) == data.input_shape and len(split.x) == len(split.y)
        assert min(data.input_shape) >= 1  # any channel count: an array keeps every channel (issue 27)
        assert split.x.dtype == torch.uint8 or bool(torch.isfinite(split.x).all())
        assert 0 <= int(split.y.min()) and int(split.y.max()) < len(data.class_names)


def _mutated(data: st.DataObject, original: bytes) -> bytes:
    """original with a few bytes overwritten and maybe cut short, or random bytes when the draw says so."""
    if data.draw(st.booleans(), label="random"):
        return data.draw(st.binary(max_size=3000), label="bytes")
    blob = bytearray(original)
    if data.draw(st.booleans(), label="cut short"):
        blob = blob[: data.draw(st.integers(0, len(original)), label="cut")]
    for _ in range(data.draw(st.integers(0, 6), label="flips")):
        if blob:
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    return bytes(blob)


def _picture_bytes(extension: str) -> bytes:
    stream = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(stream, format={".png": "PNG", ".jpg": "JPEG"}[extension])
    return stream.getvalue()


# image folders and predict inputs


@FUZZ
@given(data=st.data(), extension=st.sampled_from([".png", ".jpg"]))
def test_random_image_bytes_load_or_are_refused(data, extension):
    valid = _picture_bytes(extension)
    with tempfile.TemporaryDirectory() as root:
        for label in ("a", "b"):
            for i in range(3):
                path = Path(root, label, f"{i}{extension}")
                path.parent.mkdir(exist_ok=True)
                path.write_bytes(valid)
        Path(root, "a", f"0{extension}").write_bytes(_mutated(data, valid))
        _checked(root)
        try:
            picture = load_image_file(Path(root, "a", f"0{extension}"), (3, 8, 8))
        except SwarmCNNError:
            return
        assert picture.dtype == torch.uint8 and tuple(picture.shape) == (3, 8, 8)


# IDX folders


def _idx(array: np.ndarray) -> bytes:
    return struct.pack(f">I{array.ndim}I", 0x803 if array.ndim == 3 else 0x801, *array.shape) + array.tobytes()


IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@st.composite
def _idx_headers(draw) -> bytes:
    """A right magic number with dimensions of any size, then some bytes: what an overflow attack looks like."""
    dims = draw(st.sampled_from([1, 3]))
    shape = draw(st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 12), min_size=dims, max_size=dims))
    body = draw(st.binary(max_size=400))
    return struct.pack(f">I{dims}I", 0x800 + dims, *shape) + body


@FUZZ
@given(data=st.data(), target=st.sampled_from(IDX_FILES), gz=st.booleans())
def test_random_idx_files_load_or_are_refused(data, target, gz):
    labels = np.arange(24, dtype=np.uint8) % 3
    valid = {
        "train-images-idx3-ubyte": _idx(np.repeat(labels, 30).reshape(24, 5, 6)),
        "train-labels-idx1-ubyte": _idx(labels),
        "t10k-images-idx3-ubyte": _idx(np.zeros((6, 5, 6), dtype=np.uint8)),
        "t10k-labels-idx1-ubyte": _idx(labels[:6]),
    }
    content = data.draw(_idx_headers()) if data.draw(st.booleans()) else _mutated(data, valid[target])
    with tempfile.TemporaryDirectory() as root:
        for name, blob in {**valid, target: content}.items():
            if gz and name == target:
                Path(root, name + ".gz").write_bytes(gzip.compress(blob))
            else:
                Path(root, name).write_bytes(blob)
        _checked(root)


# .npz files


def _npz_bytes(**arrays) -> bytes:
    stream = io.BytesIO()
    np.savez(stream, **arrays)
    return stream.getvalue()


_SHAPES = hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4)
_DTYPES = hnp.scalar_dtypes() | hnp.unicode_string_dtypes() | hnp.byte_string_dtypes()


@st.composite
def _arrays(draw) -> np.ndarray:
    """Any small array: every numpy scalar kind, strings, objects, 0-d to 5-d, zero-sized axes."""
    if draw(st.integers(0, 9)) == 0:
        return np.array(draw(st.lists(st.integers() | st.text(max_size=3), max_size=4)) + [None], dtype=object)
    return draw(hnp.arrays(draw(_DTYPES), draw(_SHAPES)))


@FUZZ
@given(x=_arrays(), y=_arrays(), extra=st.sampled_from(["none", "classes", "layout"]), fields=st.data())
def test_random_arrays_of_every_dtype_and_shape_load_or_are_refused(x, y, extra, fields):
    arrays = {"x": x, "y": y}
    if extra != "none":
        arrays[extra] = fields.draw(_arrays() | st.sampled_from(LAYOUTS).map(np.array))
    with tempfile.TemporaryDirectory() as root:
        path = Path(root, "d.npz")
        path.write_bytes(_npz_bytes(**arrays))
        _checked(path)


@st.composite
def _nearly_valid(draw) -> dict[str, np.ndarray]:
    """Enough samples to make a set, with the faults that matter: odd labels, NaN/Inf, channels, dtypes."""
    count = draw(st.integers(6, 15))
    rest = draw(
        st.sampled_from(
            [(5, 6), (5, 6, 1), (5, 6, 3), (5, 6, 4), (4, 5, 6), (3, 5, 6), (1, 5, 6), (4, 5, 6, 3), (4, 5, 6, 2)]
        )
    )
    dtype = draw(st.sampled_from([np.uint8, np.int16, np.int64, np.uint64, np.float16, np.float32, np.float64]))
    x = draw(hnp.arrays(dtype, (count, *rest)))
    values = draw(st.lists(st.sampled_from([0, 1, 2, 7, 10**9, 2**62, -1]), min_size=2, max_size=3, unique=True))
    y = np.array([values[i % len(values)] for i in range(count)], dtype=np.int64)
    arrays = {"x": x, "y": y}
    if draw(st.booleans()):
        arrays["layout"] = np.array(draw(st.sampled_from(LAYOUTS)))
    if draw(st.booleans()):
        arrays["classes"] = np.array([f"c{i}" for i in range(draw(st.integers(0, 4)))])
    return arrays


@FUZZ
@given(arrays=_nearly_valid())
def test_nearly_valid_npz_loads_or_is_refused(arrays):
    with tempfile.TemporaryDirectory() as root:
        path = Path(root, "d.npz")
        path.write_bytes(_npz_bytes(**arrays))
        _checked(path)


@FUZZ
@given(data=st.data())
def test_random_npz_bytes_load_or_are_refused(data):
    labels = np.arange(12) % 2
    valid = _npz_bytes(x=np.zeros((12, 4, 4), dtype=np.uint8), y=labels)
    compressed = io.BytesIO()
    np.savez_compressed(compressed, x=np.zeros((12, 4, 4), dtype=np.uint8), y=labels)
    original = valid if data.draw(st.booleans()) else compressed.getvalue()
    with tempfile.TemporaryDirectory() as root:
        path = Path(root, "d.npz")
        path.write_bytes(_mutated(data, original))
        _checked(path)


@FUZZ
@given(shape=st.lists(st.integers(0, 2**40), min_size=1, max_size=4), compressed=st.booleans())
def test_npz_headers_claiming_any_size_load_or_are_refused(shape, compressed):
    """A .npy header may claim any shape over a few bytes of data (a zip bomb without the zip)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
    with tempfile.TemporaryDirectory() as root:
        path = Path(root, "d.npz")
        method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
        with zipfile.ZipFile(path, "w", method) as archive:
            archive.writestr("x.npy", header.getvalue() + bytes(64))
            archive.writestr("y.npy", _npy(np.arange(shape[0] % 50) % 2))
        _checked(path)


def _npy(array: np.ndarray) -> bytes:
    stream = io.BytesIO()
    np.save(stream, array)
    return stream.getvalue()


# video folders


@pytest.fixture(scope="module")
def video_bytes():
    av = pytest.importorskip("av")
    with tempfile.TemporaryDirectory() as root:
        path = Path(root, "v.mp4")
        with av.open(str(path), "w") as container:
            stream = container.add_stream("mpeg4", rate=10)
            stream.height = stream.width = 16
            stream.pix_fmt = "yuv420p"
            for value in range(0, 240, 30):
                frame = av.VideoFrame.from_ndarray(np.full((16, 16), value, dtype=np.uint8), format="gray")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return path.read_bytes()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_video_bytes_load_or_are_refused(video_bytes, data):
    with tempfile.TemporaryDirectory() as root:
        for label in ("a", "b"):
            Path(root, label).mkdir()
            for i in range(3):
                Path(root, label, f"{i}.mp4").write_bytes(video_bytes)
        Path(root, "a", "0.mp4").write_bytes(_mutated(data, video_bytes))
        _checked(root, DataConfig(frames=4))
