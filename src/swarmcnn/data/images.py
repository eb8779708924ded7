"""Image files: a folder with one sub-folder per class, and single files for `predict`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from swarmcnn.data.files import check_regular_file
from swarmcnn.data.splits import Arrays
from swarmcnn.errors import DataError
from swarmcnn.memory import check_fits

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
SIXTEEN_BIT_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


def load_folder(folder: Path, image_size: tuple[int, int] | None, per_class: int | None = None) -> Arrays:
    """Every image under folder/<class>/ (the first per_class of each), as one uint8 array; grayscale unless
    some image has colour."""
    classes = class_folders(folder)
    files = [image_files(class_folder)[:per_class] for class_folder in classes]
    count = sum(len(paths) for paths in files)
    if image_size is not None:  # before any is read: Pillow would allocate the first one at that size
        _check_fits(count, image_size, 3)
    pictures: list[np.ndarray] = []
    labels: list[int] = []
    first: tuple[Path, tuple[int, int]] | None = None
    for label, paths in enumerate(files):
        for path in paths:
            picture = to_array(open_image(path), image_size)
            if first is None:
                _check_fits(count, picture.shape[:2], 1 if picture.ndim == 2 else 3)
                first = (path, picture.shape[:2])
            if picture.shape[:2] != first[1]:
                raise _size_mismatch(first, (path, picture.shape[:2]))
            pictures.append(picture)
            labels.append(label)
    # mixed folders become RGB throughout; a gray picture's colour version repeats its one channel
    if any(p.ndim == 3 for p in pictures):
        pictures = [p if p.ndim == 3 else np.repeat(p[:, :, None], 3, axis=2) for p in pictures]
    x = np.stack(pictures)
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    return Arrays(np.ascontiguousarray(x), np.asarray(labels, dtype=np.int64), tuple(c.name for c in classes))


def class_folders(folder: Path) -> list[Path]:
    """The sorted, visible sub-folders of folder: one per class."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"folder '{folder}' has no class sub-folders: expected one sub-folder of images per class")
    if len(classes) == 1:
        raise DataError(
            f"folder '{folder}' has only one class sub-folder ('{classes[0].name}'); a classifier needs at least two"
        )
    return classes


def image_files(class_folder: Path) -> list[Path]:
    """The visible image files directly inside one class folder, in name order."""
    # not only regular files: a FIFO or device named like an image is refused by open_image, not skipped
    files = sorted(
        p
        for p in class_folder.iterdir()
        if p.suffix.lower() in EXTENSIONS and not p.name.startswith(".") and not p.is_dir()
    )
    if not files:
        raise DataError(f"class folder '{class_folder}' holds no images ({', '.join(EXTENSIONS)})")
    return files


def open_image(path: Path) -> Image.Image:
    """The decoded picture as mode L (any grayscale or gray-palette image) or RGB (dropping alpha)."""
    check_regular_file(path, "image")
    try:
        with Image.open(path) as image:
            image.load()
    except FileNotFoundError:
        raise DataError(f"cannot read image '{path}': no such file") from None
    except UnidentifiedImageError:
        raise DataError(f"cannot read image '{path}': not an image file") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"cannot read image '{path}': {error}") from None
    if image.mode in SIXTEEN_BIT_MODES:
        return _sixteen_bit_to_gray(image)
    if image.mode in GRAY_MODES:
        return image.convert("L")
    rgb = image.convert("RGB")
    if image.mode in ("P", "PA") and _is_gray(rgb):  # GIFs store gray pictures as palettes
        return rgb.convert("L")
    return rgb


def to_array(image: Image.Image, size: tuple[int, int] | None) -> np.ndarray:
    """uint8 (H, W) for L or (H, W, 3) for RGB, resized to size (H, W) when given."""
    if size is not None and image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.array(image, dtype=np.uint8)  # a writable copy: torch refuses to share read-only memory


def load_image_file(path: str | Path, input_shape: tuple[int, ...]) -> np.ndarray:
    """One image as uint8 (C, H, W) for a model that takes input_shape (C, H, W), C being 1 or 3."""
    if len(input_shape) != 3 or input_shape[0] not in (1, 3):
        raise DataError(
            f"cannot feed an image file to a model with input shape {tuple(input_shape)}: need (1 or 3, H, W)"
        )
    channels, height, width = input_shape
    image = open_image(Path(path)).convert("L" if channels == 1 else "RGB")
    picture = to_array(image, (height, width))
    return np.ascontiguousarray(picture[None] if channels == 1 else picture.transpose(2, 0, 1))


def _check_fits(count: int, size: tuple[int, int], channels: int) -> None:
    """Whether load_folder's peak fits in memory: the pictures, their stack and its channels-first copy."""
    check_fits(3 * count * size[0] * size[1] * channels, f"{count} images of {size[0]}x{size[1]}", DataError)


def _sixteen_bit_to_gray(image: Image.Image) -> Image.Image:
    """Pillow's own I->L conversion clips at 255, which turns 16-bit pictures white; scale them instead."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16") or values.max(initial=0) > 255:
        values = values / 257
    return Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8), mode="L")


def _is_gray(rgb: Image.Image) -> bool:
    pixels = np.asarray(rgb)
    return bool((pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all())


def _size_mismatch(first: tuple[Path, tuple[int, int]], other: tuple[Path, tuple[int, int]]) -> DataError:
    (path_a, (ha, wa)), (path_b, (hb, wb)) = first, other
    return DataError(
        f"images differ in size: '{path_a}' is {ha}x{wa} but '{path_b}' is {hb}x{wb} (HxW); "
        "pass an image size to resize them all (--image-size HxW)"
    )
