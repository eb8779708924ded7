"""Folders of class sub-folders (images or videos), alone or split into train/, test/ and optionally val/.

A split folder is the layout most image sets ship in (torchvision's ImageFolder, Keras's
`image_dataset_from_directory`, Hugging Face's `imagefolder`): `DATA/train/<class>/...`, `DATA/test/<class>/...`.
Its own test split is kept, as IDX files keep theirs; a `val/` (or `valid/`, `validation/`) folder is the
validation split, otherwise the validation split is carved from train/. Classes are matched by folder name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from swarmcnn.data.splits import Arrays, Parts
from swarmcnn.errors import DataError

VAL_NAMES = ("val", "valid", "validation")


def split_folders(folder: Path) -> dict[str, Path]:
    """{'train', 'test'[, 'val']: folder} when folder is split that way, else {}."""
    parts = {"train": folder / "train", "test": folder / "test"}
    if not all(p.is_dir() for p in parts.values()):
        return {}
    val = next((folder / name for name in VAL_NAMES if (folder / name).is_dir()), None)
    return {**parts, "val": val} if val is not None else parts


def load_class_folders(
    folder: Path, image_size: tuple[int, int] | None, frames: int, per_class: int | None = None
) -> Arrays:
    """A folder of class sub-folders holding images, or video files and frame folders."""
    from swarmcnn.data import images, video

    if video.folder_kind(folder) == "videos":
        return video.load_folder(folder, image_size, frames, per_class)
    return images.load_folder(folder, image_size, per_class)


def load_split_folders(
    folder: Path, image_size: tuple[int, int] | None, frames: int, per_class: int | None = None
) -> Parts:
    """train/ as the pool (its first per_class samples of each class), test/ and val/ as they are."""
    paths = split_folders(folder)
    train = load_class_folders(paths["train"], image_size, frames, per_class)
    others = {name: load_class_folders(path, image_size, frames) for name, path in paths.items() if name != "train"}
    others = {name: _labelled_as(train, arrays, paths[name], paths["train"]) for name, arrays in others.items()}
    parts = _same_channels({"train": train, **others})
    for name, arrays in parts.items():
        if arrays.x.shape[2:] != train.x.shape[2:]:
            raise DataError(
                f"'{paths[name]}' holds inputs of {'x'.join(map(str, arrays.x.shape[2:]))} but '{paths['train']}' "
                f"of {'x'.join(map(str, train.x.shape[2:]))}; pass an image size to resize them all (--image-size HxW)"
            )
    return Parts(parts["train"], parts["test"], parts.get("val"))


def _labelled_as(train: Arrays, arrays: Arrays, path: Path, train_path: Path) -> Arrays:
    """arrays with the label numbers of train's classes (matched by folder name); a class train lacks is refused."""
    unknown = [name for name in arrays.class_names if name not in train.class_names]
    if unknown:
        raise DataError(
            f"'{path}' has class folder '{unknown[0]}' that '{train_path}' lacks; "
            "every class must have training samples"
        )
    mapping = np.array([train.class_names.index(name) for name in arrays.class_names], dtype=np.int64)
    return Arrays(arrays.x, mapping[arrays.y], train.class_names)


def _same_channels(parts: dict[str, Arrays]) -> dict[str, Arrays]:
    """One colour part makes every part colour (a gray picture's colour version repeats its channel)."""
    if all(a.x.shape[1] == 1 for a in parts.values()) or all(a.x.shape[1] == 3 for a in parts.values()):
        return parts
    return {name: a if a.x.shape[1] == 3 else Arrays(np.repeat(a.x, 3, axis=1), a.y, a.class_names)
            for name, a in parts.items()}
