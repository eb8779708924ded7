"""Image folders (one sub-folder per class) and single image files for predict."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from swarmcnn.data import DataConfig, load_data, load_image_file
from swarmcnn.errors import DataError


def _write(path: Path, mode: str = "L", size: tuple[int, int] = (10, 12), value=100) -> Path:
    """An image of one colour; size is (H, W)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (size[1], size[0]), value).save(path)
    return path


def _folder(root: Path, classes=("cat", "dog"), per_class: int = 4, mode: str = "L", value=100) -> Path:
    for name in classes:
        for i in range(per_class):
            _write(root / name / f"{i}.png", mode, value=value)
    return root


def _raises(match: str):
    return pytest.raises(DataError, match=re.escape(match))


def test_grayscale_folder_loads_as_one_channel_uint8(tmp_path):
    data = load_data(str(_folder(tmp_path)))
    assert data.input_shape == (1, 10, 12)
    assert data.train.x.dtype == torch.uint8 and data.train.x.is_contiguous()
    assert len(data.train) + len(data.val) + len(data.test) == 8
    assert int(data.train.x[0, 0, 0, 0]) == 100


def test_class_names_are_the_sorted_sub_folder_names(tmp_path):
    _folder(tmp_path, classes=("zebra", "ant", "mole"), per_class=3)
    _write(tmp_path / "ant" / "0.png", value=7)
    _write(tmp_path / "zebra" / "0.png", value=9)
    data = load_data(str(tmp_path), DataConfig(val_fraction=0.3, test_fraction=0.3))
    assert data.class_names == ("ant", "mole", "zebra")
    x = torch.cat([data.train.x, data.val.x, data.test.x])
    y = torch.cat([data.train.y, data.val.y, data.test.y])
    assert y[x[:, 0, 0, 0] == 7].tolist() == [0] and y[x[:, 0, 0, 0] == 9].tolist() == [2]


def test_one_colour_image_turns_the_whole_folder_rgb(tmp_path):
    _folder(tmp_path, value=100)
    _write(tmp_path / "dog" / "red.png", "RGB", value=(200, 10, 20))
    data = load_data(str(tmp_path))
    assert data.input_shape == (3, 10, 12)
    pixels = {tuple(p) for p in torch.cat([data.train.x, data.val.x, data.test.x])[:, :, 0, 0].tolist()}
    assert pixels == {(100, 100, 100), (200, 10, 20)}


def test_rgba_images_become_rgb(tmp_path):
    _folder(tmp_path, mode="RGBA", value=(1, 2, 3, 128))
    data = load_data(str(tmp_path))
    assert data.input_shape == (3, 10, 12)
    assert data.train.x[0, :, 0, 0].tolist() == [1, 2, 3]


def test_jpeg_bmp_gif_in_any_case_are_read_and_other_files_ignored(tmp_path):
    for name in ("a.JPG", "b.jpeg", "c.bmp", "d.Gif"):
        _write(tmp_path / "cat" / name)
        _write(tmp_path / "dog" / name)
    (tmp_path / "dog" / "notes.txt").write_text("not a picture")
    _write(tmp_path / "dog" / ".hidden.png")
    (tmp_path / "dog" / ".DS_Store").write_bytes(b"\0\1")
    (tmp_path / ".git").mkdir()
    (tmp_path / "README.md").write_text("top-level files are not classes")
    data = load_data(str(tmp_path))
    assert data.class_names == ("cat", "dog")
    assert len(data.train) + len(data.val) + len(data.test) == 8
    assert data.input_shape == (1, 10, 12)


def test_gray_palette_gif_stays_grayscale(tmp_path):
    _folder(tmp_path)
    Image.new("L", (12, 10), 50).convert("P").save(tmp_path / "cat" / "palette.gif")
    assert load_data(str(tmp_path)).input_shape == (1, 10, 12)


def test_sixteen_bit_png_is_scaled_to_bytes_not_clipped(tmp_path):
    picture = Image.fromarray(np.full((10, 12), 257 * 128, dtype=np.uint16))
    assert picture.mode.startswith("I;16")
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        for i in range(3):
            picture.save(tmp_path / name / f"{i}.png")
    data = load_data(str(tmp_path))
    assert data.input_shape == (1, 10, 12)
    assert int(data.train.x[0, 0, 0, 0]) == 128


def test_images_are_resized_to_the_image_size(tmp_path):
    _write(tmp_path / "cat" / "0.png", size=(20, 30))
    _write(tmp_path / "cat" / "1.png", size=(8, 8))
    _write(tmp_path / "cat" / "2.png", size=(12, 10))
    for i in range(3):
        _write(tmp_path / "dog" / f"{i}.png", size=(5, 40))
    data = load_data(str(tmp_path), DataConfig(image_size=(16, 24)))
    assert data.input_shape == (1, 16, 24)
    assert data.train.x.shape[1:] == (1, 16, 24)
    assert (data.train.x == 100).all()  # resizing a flat picture keeps its value


def test_different_sizes_without_image_size_name_both_files_and_the_flag(tmp_path):
    _folder(tmp_path)
    big = _write(tmp_path / "dog" / "big.png", size=(20, 30))
    with pytest.raises(DataError) as caught:
        load_data(str(tmp_path))
    message = str(caught.value)
    assert str(tmp_path / "cat" / "0.png") in message and "10x12" in message
    assert str(big) in message and "20x30" in message and "--image-size HxW" in message


def test_corrupt_image_in_folder_names_the_file(tmp_path):
    _folder(tmp_path)
    broken = tmp_path / "dog" / "broken.png"
    broken.write_bytes(b"this is not a png")
    with _raises(f"cannot read image '{broken}': not an image file"):
        load_data(str(tmp_path))


def test_truncated_image_in_folder_names_the_file(tmp_path):
    _folder(tmp_path)
    cut = tmp_path / "cat" / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(cut)
    cut.write_bytes(cut.read_bytes()[:200])
    with _raises(f"cannot read image '{cut}'"):
        load_data(str(tmp_path))


def test_empty_class_folder_is_named(tmp_path):
    _folder(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no pictures here")
    with _raises(f"class folder '{tmp_path / 'empty'}' holds no images"):
        load_data(str(tmp_path))


def test_folder_with_a_single_class_is_refused(tmp_path):
    _folder(tmp_path, classes=("cat",))
    with _raises(f"folder '{tmp_path}' has only one class sub-folder ('cat')"):
        load_data(str(tmp_path))


def test_folder_without_sub_folders_is_refused(tmp_path):
    _write(tmp_path / "0.png")
    with _raises(f"folder '{tmp_path}' has no class sub-folders"):
        load_data(str(tmp_path))


def test_class_with_too_few_images_for_the_split_is_named(tmp_path):
    _folder(tmp_path)
    _write(tmp_path / "owl" / "0.png")
    with _raises("class 'owl'"):
        load_data(str(tmp_path))


def test_load_image_file_turns_gray_into_rgb(tmp_path):
    path = _write(tmp_path / "gray.png", value=77)
    x = load_image_file(path, (3, 10, 12))
    assert x.dtype == torch.uint8 and x.shape == (3, 10, 12)
    assert (x == 77).all()


def test_load_image_file_turns_rgb_into_gray(tmp_path):
    path = _write(tmp_path / "red.png", "RGB", value=(255, 0, 0))
    x = load_image_file(str(path), (1, 10, 12))
    assert x.shape == (1, 10, 12)
    assert int(x[0, 0, 0]) == 76  # ITU-R 601 luma of pure red, as Pillow's convert('L')


def test_load_image_file_resizes_to_the_input_shape(tmp_path):
    path = _write(tmp_path / "big.jpg", "RGB", size=(100, 60), value=(10, 200, 30))
    x = load_image_file(path, (3, 28, 28))
    assert x.shape == (3, 28, 28) and x.is_contiguous()
    assert x[:, 14, 14].tolist() == pytest.approx([10, 200, 30], abs=3)  # JPEG is lossy


def test_load_image_file_names_a_missing_file(tmp_path):
    with _raises(f"cannot read image '{tmp_path / 'gone.png'}': no such file"):
        load_image_file(tmp_path / "gone.png", (1, 8, 8))


def test_load_image_file_names_a_non_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with _raises(f"cannot read image '{path}': not an image file"):
        load_image_file(path, (1, 8, 8))


def test_load_image_file_refuses_a_non_image_input_shape(tmp_path):
    with _raises("input shape (4, 8, 8)"):
        load_image_file(_write(tmp_path / "a.png"), (4, 8, 8))
