"""Built-in data sets: small enough to load in a blink, so tests and first runs need no downloads."""

from __future__ import annotations

import numpy as np

from swarmcnn.data.splits import Arrays
from swarmcnn.errors import DataError
from swarmcnn.memory import check_fits

BUILTIN = ("digits", "shapes", "moving-digits", "bumps")
SHAPES_COUNT = 1200
SHAPES_SIZE = (16, 16)
SHAPES_SEED = 20240501  # fixed: the pictures never change; only the split follows DataConfig.split_seed
MOVING_DIGITS_COUNT = 1200
MOVING_DIGITS_SIZE = (16, 16)
MOVING_DIGITS_SEED = 20240502  # fixed, as for shapes
DIRECTIONS = ("up", "down", "left", "right")
BUMPS_COUNT = 900
BUMPS_LENGTH = 96
BUMPS_SEED = 20240503  # fixed, as for shapes
BUMP_SHAPES = ("ramp-up", "ramp-down", "tent")
_STEPS = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)])  # (rows, columns) per frame at speed 1, per direction


def load_builtin(name: str, image_size: tuple[int, int] | None, frames: int = 8) -> Arrays:
    """A built-in set by name; shapes and moving-digits are drawn at image_size, digits is resized by the caller."""
    if name == "digits":
        return digits()
    if name == "shapes":
        return shapes(image_size or SHAPES_SIZE)
    if name == "moving-digits":
        return moving_digits(image_size or MOVING_DIGITS_SIZE, frames)
    if name == "bumps":
        if image_size is not None:
            raise DataError("built-in 'bumps' holds signals, not pictures: --image-size does not apply (--length does)")
        return bumps()
    raise DataError(f"unknown built-in data set '{name}'; choose one of {', '.join(BUILTIN)}")


def digits() -> Arrays:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images), scaled from 0..16 to 0..255."""
    from sklearn.datasets import load_digits

    bunch = load_digits()  # images: float64 (N, 8, 8), values 0..16
    x = np.round(bunch.images * 255 / 16).astype(np.uint8)[:, None]
    y = bunch.target.astype(np.int64)
    return Arrays(np.ascontiguousarray(x), y, tuple(str(d) for d in range(10)))


def shapes(size: tuple[int, int] = SHAPES_SIZE, count: int = SHAPES_COUNT) -> Arrays:
    """Noisy, shifted O and X strokes: the picture used to teach convolution.

    Shifts of up to 4 pixels (of 16) tie the class to the strokes' form, not to fixed pixels: a
    small CNN learns it perfectly, logistic regression on raw pixels reaches about 70%.
    """
    height, width = size
    if min(size) < 8:
        raise DataError(f"built-in 'shapes' needs an image size of at least 8x8, got {height}x{width}")
    # about six float64 pictures per sample are alive at once while the strokes are drawn
    check_fits(48 * count * height * width, f"built-in 'shapes' at {height}x{width}", DataError)
    rng = np.random.default_rng(SHAPES_SEED)
    y = rng.permutation(np.arange(count) % 2).astype(np.int64)  # balanced, in random order
    scale = min(size) / 16  # all lengths below are in pixels of a 16x16 picture
    shift = 4 * scale  # with radius <= 4.5 the strokes stay inside the picture
    cy = (height - 1) / 2 + rng.uniform(-shift, shift, count)[:, None, None]
    cx = (width - 1) / 2 + rng.uniform(-shift, shift, count)[:, None, None]
    radius = rng.uniform(2.5, 4.5, count)[:, None, None] * scale
    thickness = rng.uniform(0.8, 1.8, count)[:, None, None] * scale
    dy = np.arange(height)[None, :, None] - cy
    dx = np.arange(width)[None, None, :] - cx
    ink = np.where(y[:, None, None] == 0, _ring(dy, dx, radius), _cross(dy, dx, radius))
    # anti-aliased stroke: full ink within half the thickness, fading over one pixel
    strokes = np.clip(thickness / 2 + 0.5 - ink, 0, 1)
    brightness = rng.uniform(150, 255, count)[:, None, None]
    pictures = strokes * brightness + rng.normal(0, 25, (count, height, width))
    x = np.clip(np.round(pictures), 0, 255).astype(np.uint8)[:, None]
    return Arrays(np.ascontiguousarray(x), y, ("O", "X"))


def _ring(dy: np.ndarray, dx: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Distance of each pixel from a circle of the given radius."""
    return np.abs(np.hypot(dy, dx) - radius)


def _cross(dy: np.ndarray, dx: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Distance of each pixel from the nearer of two diagonal segments that span the circle's box."""
    half = radius * np.sqrt(2)  # each arm reaches the corner of the square around the circle
    along_a, across_a = (dx + dy) / np.sqrt(2), (dy - dx) / np.sqrt(2)
    to_a = np.hypot(across_a, np.maximum(np.abs(along_a) - half, 0))
    to_b = np.hypot(along_a, np.maximum(np.abs(across_a) - half, 0))
    return np.minimum(to_a, to_b)


def moving_digits(
    size: tuple[int, int] = MOVING_DIGITS_SIZE, frames: int = 8, count: int = MOVING_DIGITS_COUNT
) -> Arrays:
    """Clips (N, 1, T, H, W) of an 8x8 digit gliding 1 or 2 pixels per frame; the label is the direction.

    The canvas wraps around and the start is uniform over it, so each frame on its own has the same
    distribution whatever the label (a random digit at a random place): only motion tells the class.
    """
    height, width = size
    if min(size) < 8:
        raise DataError(f"built-in 'moving-digits' needs an image size of at least 8x8, got {height}x{width}")
    if frames < 2:
        raise DataError(f"built-in 'moving-digits' needs at least 2 frames to show motion, got {frames}")
    # the clips as float64, their noise and the rounded copy
    check_fits(
        32 * count * frames * height * width,
        f"built-in 'moving-digits' of {frames} frames at {height}x{width}",
        DataError,
    )
    rng = np.random.default_rng(MOVING_DIGITS_SEED)
    y = rng.permutation(np.arange(count) % len(DIRECTIONS)).astype(np.int64)  # balanced, in random order
    pictures = digits().x[:, 0]
    canvas = np.zeros((count, height, width))
    brightness = rng.uniform(0.6, 1.0, count)[:, None, None]
    canvas[:, :8, :8] = pictures[rng.integers(0, len(pictures), count)] * brightness
    start = rng.integers(0, (height, width), (count, 2))
    speed = rng.integers(1, 3, count)
    # where the canvas's corner is at each frame: (N, T, 2); frame t is the canvas rolled by that much
    corner = start[:, None] + np.arange(frames)[None, :, None] * (speed[:, None] * _STEPS[y])[:, None]
    rows = (np.arange(height)[None, None] - corner[..., :1]) % height  # (N, T, H)
    cols = (np.arange(width)[None, None] - corner[..., 1:]) % width  # (N, T, W)
    clips = canvas[np.arange(count)[:, None, None, None], rows[..., None], cols[:, :, None, :]]
    clips += rng.normal(0, 20, clips.shape)
    x = np.clip(np.round(clips), 0, 255).astype(np.uint8)[:, None]
    return Arrays(np.ascontiguousarray(x), y, DIRECTIONS)


def bumps(count: int = BUMPS_COUNT, length: int = BUMPS_LENGTH) -> Arrays:
    """Signals (N, 2, L), float32: a bump somewhere in channel 0 (a slow rise and a sudden drop, the reverse, or
    an even rise and fall), over noise; channel 1 is background (a slow wave and noise) that tells nothing.

    The three shapes have the same width and height and so the same values, in another order: shuffling the
    time steps leaves nothing to learn (`swarmcnn check` says order matters), while a small 1-D CNN learns the
    edges in a few epochs; and the evidence for a class lies on its bump (`swarmcnn explain`).
    """
    if length < 16:
        raise DataError(f"built-in 'bumps' needs at least 16 instants, got {length}")
    check_fits(64 * count * length, f"built-in 'bumps' of {length} instants", DataError)
    rng = np.random.default_rng(BUMPS_SEED)
    y = rng.permutation(np.arange(count) % len(BUMP_SHAPES)).astype(np.int64)
    width = rng.integers(length // 6, length // 3 + 1, count)
    start = rng.integers(0, length - width + 1)
    height = rng.uniform(1.0, 2.0, count)
    along = (np.arange(length)[None] - start[:, None]) / (width[:, None] - 1)  # 0..1 inside the bump
    inside = (along >= 0) & (along <= 1)
    rise = np.where(y[:, None] == 0, along, np.where(y[:, None] == 1, 1 - along, 1 - np.abs(2 * along - 1)))
    x = np.zeros((count, 2, length))
    x[:, 0] = np.where(inside, rise, 0.0) * height[:, None] + rng.normal(0, 0.25, (count, length))
    phase = rng.uniform(0, 2 * np.pi, (count, 1))
    x[:, 1] = 0.5 * np.sin(2 * np.pi * np.arange(length) / length * rng.uniform(0.5, 2, (count, 1)) + phase)
    x[:, 1] += rng.normal(0, 0.25, (count, length))
    return Arrays(np.ascontiguousarray(x, dtype=np.float32), y, BUMP_SHAPES)
