"""Video clips: a folder with one sub-folder per class holding video files or frame folders.

    folder/<class>/<clip>.mp4      a video file (.mp4 .m4v .mov .avi .mkv .webm .mpg .mpeg), decoded with PyAV
    folder/<class>/<clip>/*.png    a folder of frames (any image type Pillow reads), in natural name order

Every clip becomes exactly `frames` frames, evenly spaced by frame index: frame i is the one in the
middle of the i-th of `frames` equal parts of the clip, so a 16-frame clip sampled to 8 keeps frames
1, 3, ..., 15 and a moving thing keeps a constant speed. A clip shorter than that repeats its frames
evenly (4 frames to 8: 0 0 1 1 2 2 3 3), down to half the frames asked for: a video file of which fewer
frames decode is refused (naming it and the counts), as it is most likely truncated and a clip of
2 frames repeated 4 times each is not the motion it was labelled for. A folder of frames is taken as
the user cut it and repeats its frames however few. Timestamps are ignored. As for image folders, the set is
grayscale unless some clip has colour, and frames are resized (Pillow's bilinear) to image_size,
which is required when clips differ in frame size. GIFs stay images. PyAV is imported only here,
when a video file is read (pip install 'swarmcnn[video]').
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from swarmcnn.data.files import check_regular_file
from swarmcnn.data.images import EXTENSIONS as IMAGE_EXTENSIONS
from swarmcnn.data.images import class_folders, open_image, to_array
from swarmcnn.data.splits import Arrays
from swarmcnn.errors import DataError
from swarmcnn.memory import available_bytes, check_fits

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg")
# lossy codecs store pictures as YUV; gray ones decode with channels equal or within a few levels
GRAY_TOLERANCE = 4


def folder_kind(folder: Path) -> str:
    """'videos' when the class folders hold video files or frame folders, else 'images'; a mix is refused."""
    image = video = clip_folder = None
    for class_folder in class_folders(folder):
        for path in sorted(class_folder.iterdir()):
            if path.name.startswith("."):
                continue
            if path.is_dir():
                clip_folder = clip_folder or path
            elif path.suffix.lower() in IMAGE_EXTENSIONS:
                image = image or path
            elif path.suffix.lower() in VIDEO_EXTENSIONS:
                video = video or path
    if image and video:
        raise DataError(
            f"folder '{folder}' mixes image files ('{image}') and video files ('{video}'); keep one kind per data set"
        )
    return "videos" if video or (clip_folder and not image) else "images"


def load_folder(folder: Path, image_size: tuple[int, int] | None, frames: int, per_class: int | None = None) -> Arrays:
    """Every clip under folder/<class>/ (the first per_class of each) as one uint8 array (N, C, T, H, W)."""
    classes = class_folders(folder)
    paths_by_class = [clip_paths(class_folder)[:per_class] for class_folder in classes]
    count = sum(len(paths) for paths in paths_by_class)
    clips: list[np.ndarray] = []
    labels: list[int] = []
    first: tuple[Path, tuple[int, int]] | None = None
    for label, paths in enumerate(paths_by_class):
        for path in paths:
            clip = read_clip(path, frames, image_size)
            if first is None:  # the clips, their stack and its channels-first copy, all in colour at worst
                check_fits(
                    3 * count * clip.size * (3 if clip.ndim == 3 else 1),
                    f"{count} clips of {frames} frames of {clip.shape[1]}x{clip.shape[2]}",
                    DataError,
                )
                first = (path, clip.shape[1:3])
            if clip.shape[1:3] != first[1]:
                raise _size_mismatch(first, (path, clip.shape[1:3]))
            clips.append(clip)
            labels.append(label)
    if any(c.ndim == 4 for c in clips):  # one colour clip makes the set RGB, as for image folders
        clips = [c if c.ndim == 4 else np.repeat(c[..., None], 3, axis=3) for c in clips]
    x = np.stack(clips)
    x = x[:, None] if x.ndim == 4 else x.transpose(0, 4, 1, 2, 3)
    return Arrays(np.ascontiguousarray(x), np.asarray(labels, dtype=np.int64), tuple(c.name for c in classes))


def clip_paths(class_folder: Path) -> list[Path]:
    """The visible video files and frame folders directly inside one class folder, in name order."""
    paths = sorted(  # a FIFO or device named like a video is refused when read, not skipped
        p
        for p in class_folder.iterdir()
        if not p.name.startswith(".") and (p.is_dir() or p.suffix.lower() in VIDEO_EXTENSIONS)
    )
    if not paths:
        raise DataError(
            f"class folder '{class_folder}' holds no videos ({', '.join(VIDEO_EXTENSIONS)}) or frame folders"
        )
    return paths


def read_clip(path: Path, frames: int, size: tuple[int, int] | None) -> np.ndarray:
    """One clip as uint8 (T, H, W) if gray or (T, H, W, 3), sampled to T = frames and resized to size (H, W)."""
    if path.is_dir():
        return _read_frame_folder(path, frames, size)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise DataError(
            f"cannot read '{path}' as a video: expected a video file ({', '.join(VIDEO_EXTENSIONS)}) "
            "or a folder of frames"
        )
    return _read_video(path, frames, size)


def load_clip_file(path: str | Path, input_shape: tuple[int, ...]) -> np.ndarray:
    """One video file or frame folder as uint8 (C, T, H, W) for a model that takes input_shape, C being 1 or 3."""
    if len(input_shape) != 4 or input_shape[0] not in (1, 3):
        raise DataError(f"cannot feed a video to a model with input shape {tuple(input_shape)}: need (1 or 3, T, H, W)")
    channels, frames, height, width = input_shape
    clip = read_clip(Path(path), frames, (height, width))
    if channels == 1 and clip.ndim == 4:
        clip = _gray(clip)
    elif channels == 3 and clip.ndim == 3:
        clip = np.repeat(clip[..., None], 3, axis=3)
    return np.ascontiguousarray(clip[None] if channels == 1 else clip.transpose(3, 0, 1, 2))


def sample_indices(count: int, frames: int) -> np.ndarray:
    """Which of count frames to keep: the middle of each of `frames` equal parts (integer arithmetic, exact)."""
    return (2 * np.arange(frames) + 1) * count // (2 * frames)


def _read_video(path: Path, frames: int, size: tuple[int, int] | None) -> np.ndarray:
    # Only the sampled frames are converted and kept, so a long full-resolution clip costs decoding time,
    # not memory. The container's frame count says which ones; where it is missing, every frame is kept
    # while they fit in a quarter of the free memory. Where the count proves wrong once decoded, or the
    # frames did not fit, a second pass keeps the frames sampled by the true count.
    stated, count, kept = _decode(path, size, frames, None)
    if not count:
        raise DataError(f"cannot read video '{path}': it holds no frames")
    if 2 * count < frames:
        header = f" of the {stated} its header states" if stated > count else ""
        raise DataError(
            f"video '{path}' decodes to only {count} frame(s){header} but {frames} are asked for; fewer than "
            "half: it may be truncated (repair or remove it, or ask for fewer frames per clip with --frames)"
        )
    if count != stated and len(kept) != count:
        _, count, kept = _decode(path, size, frames, count)
    clip = _stacked([kept[i] for i in sample_indices(count, frames)], path)
    spread = clip.max(axis=3).astype(np.int16) - clip.min(axis=3)
    return _gray(clip) if spread.max(initial=0) <= GRAY_TOLERANCE else clip


def _decode(path: Path, size: tuple[int, int] | None, frames: int, total: int | None) -> tuple[int, int, dict]:
    """Decode the first video stream: (the container's stated frame count or 0, frames decoded, the kept
    pictures by index, resized as they are decoded). Kept: the `frames` sampled by total, else by the stated
    count, else every frame while they fit in memory (none once they do not)."""
    check_regular_file(path, "video")
    av = _pyav(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"cannot read video '{path}': it has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            stated = max(int(stream.frames or 0), 0)
            codec = stream.codec_context  # its frame size may be missing (0) until a frame is decoded
            if codec is None:
                raise DataError(f"cannot read video '{path}': no decoder for its video stream")
            height, width = size or (max(codec.height or 1, 1), max(codec.width or 1, 1))
            _check_clip_fits(path, frames, height, width)
            by = total or stated
            keep = set(sample_indices(by, frames).tolist()) if by else None
            budget, held = available_bytes() // 4, 0
            kept, count = {}, 0
            for count, frame in enumerate(container.decode(stream), start=1):
                if keep is None and held > budget:  # too long to keep whole: count only, then sample
                    keep = set()
                    kept.clear()
                if keep is None or count - 1 in keep:
                    kept[count - 1] = to_array(frame.to_image(), size)
                    held += kept[count - 1].nbytes
            return stated, count, kept
    except FileNotFoundError:
        raise DataError(f"cannot read video '{path}': no such file") from None
    except (av.FFmpegError, OSError, ValueError, EOFError) as error:
        reason = "corrupt metadata" if isinstance(error, UnicodeDecodeError) else _reason(error)
        raise DataError(f"cannot read video '{path}': {reason}") from None


def _read_frame_folder(path: Path, frames: int, size: tuple[int, int] | None) -> np.ndarray:
    files = sorted(
        (p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")),
        key=_natural,
    )
    if not files:
        raise DataError(f"clip folder '{path}' holds no frames ({', '.join(IMAGE_EXTENSIONS)})")
    decoded = {0: to_array(open_image(files[0]), size)}  # its size tells what the clip will need
    _check_clip_fits(path, frames, *decoded[0].shape[:2])
    indices = sample_indices(len(files), frames).tolist()
    for i in indices:  # a short folder repeats frames: each is decoded once
        if i not in decoded:
            decoded[i] = to_array(open_image(files[i]), size)
    pictures = [decoded[i] for i in indices]
    if any(p.ndim == 3 for p in pictures):
        pictures = [p if p.ndim == 3 else np.repeat(p[:, :, None], 3, axis=2) for p in pictures]
    return _stacked(pictures, path)


def _check_clip_fits(path: Path, frames: int, height: int, width: int) -> None:
    """Before sampling: the clip in colour, and its stack."""
    check_fits(2 * frames * height * width * 3, f"clip '{path}' of {frames} frames of {height}x{width}", DataError)


def _pyav(path: Path):
    try:
        import av
    except ImportError:
        raise DataError(f"cannot read video '{path}': PyAV is not installed; pip install 'swarmcnn[video]'") from None
    return av


def _stacked(pictures: list[np.ndarray], path: Path) -> np.ndarray:
    shapes = {p.shape[:2] for p in pictures}
    if len(shapes) > 1:
        (ha, wa), (hb, wb) = sorted(shapes)[:2]
        raise DataError(
            f"frames of '{path}' differ in size ({ha}x{wa} and {hb}x{wb}, HxW); "
            "pass an image size to resize them all (--image-size HxW)"
        )
    return np.stack(pictures)


def _gray(rgb: np.ndarray) -> np.ndarray:
    """Luma with Pillow's own integer weights, so gray video frames match gray image files."""
    r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)


def _natural(path: Path) -> list:
    """'frame2' before 'frame10'; zero-padded names sort the same either way."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _reason(error: Exception) -> str:
    """FFmpeg's own words without the path it repeats, on one line."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(str(text).split())


def _size_mismatch(first: tuple[Path, tuple[int, int]], other: tuple[Path, tuple[int, int]]) -> DataError:
    (path_a, (ha, wa)), (path_b, (hb, wb)) = first, other
    return DataError(
        f"videos differ in frame size: '{path_a}' is {ha}x{wa} but '{path_b}' is {hb}x{wb} (HxW); "
        "pass an image size to resize them all (--image-size HxW)"
    )
