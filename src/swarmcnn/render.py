"""Pictures for people: a model's first-layer features as a grid, an input beside its evidence map.

Small inputs (8×8 digits) are enlarged by whole pixels so that nothing is smoothed away; the heat colours
are matplotlib's `inferno` map (dark = no evidence, yellow = strongest), laid over a grey copy of the input.
Signals (C, L) are drawn as lines instead, by `swarmcnn.render_signals`: each function here hands them on.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw

from swarmcnn.explain import Explanation

CELL = 96  # the least size in pixels of one enlarged picture
GAP = 4
CAPTION = 16
OVERLAY = 0.55  # weight of the heat colour over the grey input


def features_image(weight: torch.Tensor, columns: int = 8) -> Image.Image:
    """The features (filters) of a convolution, one cell each, grey 128 = 0.

    weight: (F, C, K, K) for images, (F, C, Kt, K, K) for video, whose K time slices go side by side; (F, C, K)
    for signals, drawn as short curves. Each feature is scaled on its own, so that a weak one is as readable as a
    strong one.
    """
    if weight.dim() == 3:
        from swarmcnn import render_signals

        return render_signals.features_image(weight, columns)
    weight = weight.detach().float().cpu()
    if weight.dim() == 4:
        weight = weight[:, :, None]  # one time slice
    features, channels, frames, height, width = weight.shape
    scale = max(1, math.ceil(CELL / 2 / max(height, width)))
    cells = []
    for feature in weight:
        span = float(feature.abs().max()) or 1.0
        pixels = (feature / span * 127.5 + 127.5).clamp(0, 255).round().to(torch.uint8)  # (C, T, K, K)
        slices = [_to_rgb(pixels[:, t].numpy()) for t in range(frames)]
        cells.append(_tile([_enlarge(s, scale) for s in slices], horizontal=True, gap=1))
    rows = [_tile(cells[i : i + columns], horizontal=True, gap=2 * GAP) for i in range(0, features, columns)]
    return _tile(rows, horizontal=False, gap=2 * GAP)


def explanation_image(x: torch.Tensor, explanation: Explanation, title: str) -> Image.Image:
    """The input beside its evidence map; for a video, its frames above their maps; for a signal, its lines with
    the evidence shaded under them."""
    if x.dim() == 2:
        from swarmcnn import render_signals

        return render_signals.signal_image(x, explanation.heatmap, title)
    x = x.detach().cpu()
    video = x.dim() == 4
    pictures = _as_uint8(x if video else x[:, None])  # (C, T, H, W)
    heat = explanation.heatmap if video else explanation.heatmap[None]
    scale = max(1, math.ceil(CELL / max(pictures.shape[2:])))
    frames = [_to_rgb(pictures[:, t]) for t in range(pictures.shape[1])]
    inputs = [_enlarge(frame, scale) for frame in frames]
    overlays = [_enlarge(_overlay(frame, heat[t].numpy()), scale) for t, frame in enumerate(frames)]
    body = _column([_row(inputs), _row(overlays)]) if video else _row([*inputs, *overlays])
    return _titled(body, title)


def _titled(body: Image.Image, title: str) -> Image.Image:
    """The picture under a one-line caption (widened where the caption is longer)."""
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    canvas = Image.new("RGB", (max(body.width, math.ceil(draw.textlength(title)) + 4), body.height + CAPTION), "white")
    ImageDraw.Draw(canvas).text((2, 2), title, fill="black")
    canvas.paste(body, (0, CAPTION))
    return canvas


def _as_uint8(x: torch.Tensor) -> np.ndarray:
    if x.dtype == torch.uint8:
        return x.numpy()
    low, high = float(x.min()), float(x.max())
    return ((x - low) / ((high - low) or 1.0) * 255).round().to(torch.uint8).numpy()


def _to_rgb(channels: np.ndarray) -> Image.Image:
    """(C, H, W) uint8 with C = 1 or 3 -> an RGB picture (any other C: the mean of the channels, in grey)."""
    if channels.shape[0] == 3:
        return Image.fromarray(np.ascontiguousarray(channels.transpose(1, 2, 0)), "RGB")
    grey = channels[0] if channels.shape[0] == 1 else channels.mean(0).round().astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(grey), "L").convert("RGB")


def _overlay(picture: Image.Image, heat: np.ndarray) -> Image.Image:
    from matplotlib import colormaps

    colours = (colormaps["inferno"](np.clip(heat, 0, 1))[..., :3] * 255).round().astype(np.uint8)
    grey = np.asarray(picture.convert("L").convert("RGB"), dtype=np.float32)
    mixed = (1 - OVERLAY) * grey + OVERLAY * colours.astype(np.float32)
    return Image.fromarray(mixed.round().astype(np.uint8), "RGB")


def _enlarge(picture: Image.Image, scale: int) -> Image.Image:
    return picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)


def _row(pictures) -> Image.Image:
    return _tile(list(pictures), horizontal=True)


def _column(pictures) -> Image.Image:
    return _tile(list(pictures), horizontal=False)


def _tile(pictures: list[Image.Image], horizontal: bool, gap: int = GAP) -> Image.Image:
    """Pictures side by side (or one under the other) on white, `gap` pixels apart."""
    along = [p.width if horizontal else p.height for p in pictures]
    across = max(p.height if horizontal else p.width for p in pictures)
    length = sum(along) + gap * (len(pictures) - 1)
    canvas = Image.new("RGB", (length, across) if horizontal else (across, length), "white")
    offset = 0
    for picture, size in zip(pictures, along):
        canvas.paste(picture, (offset, 0) if horizontal else (0, offset))
        offset += size + gap
    return canvas


def input_image(x: torch.Tensor) -> Image.Image:
    """A stored input enlarged: a picture, or a clip's frames side by side; a signal as lines."""
    if x.dim() == 2:
        from swarmcnn import render_signals

        return render_signals.signal_image(x)
    x = x.detach().cpu()
    pictures = _as_uint8(x if x.dim() == 4 else x[:, None])  # (C, T, H, W)
    scale = max(1, math.ceil(CELL / max(pictures.shape[2:])))
    return _row([_enlarge(_to_rgb(pictures[:, t]), scale) for t in range(pictures.shape[1])])


def maps_image(maps: torch.Tensor, limit: int = 16, columns: int = 8, title: str | None = None) -> Image.Image:
    """A layer's feature maps (C, H, W), the first `limit`, in grey on one scale for the whole layer (black = its
    lowest value, white = its highest), so that a weak map looks weak; under `title` when one is given. A signal's
    maps (C, L) are lines."""
    if maps.dim() == 2:
        from swarmcnn import render_signals

        return render_signals.maps_image(maps, limit, title)
    maps = maps.detach().float().cpu()[:limit]
    low, high = float(maps.min()), float(maps.max())
    pixels = ((maps - low) / ((high - low) or 1.0) * 255).round().to(torch.uint8).numpy()
    scale = max(1, math.ceil(CELL / 2 / max(maps.shape[1:])))
    cells = [_enlarge(_to_rgb(pixels[i][None]), scale) for i in range(len(pixels))]
    rows = [_row(cells[i : i + columns]) for i in range(0, len(cells), columns)]
    return _column(rows) if title is None else _titled(_column(rows), title)


def match_image(
    match: torch.Tensor, feature: torch.Tensor | None = None, title: str | None = None
) -> Image.Image:
    """A match map (H, W) of values in -1..1: black -1, grey 0, white 1; the feature (C, K, K) or (C, Kt, K, K)
    beside it as `features_image` draws it, and `title` above, when given; a signal's match (L,) is a curve."""
    if match.dim() == 1:
        from swarmcnn import render_signals

        return render_signals.match_image(match, feature, title)
    pixels = ((match.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    picture = _enlarge(_to_rgb(pixels[None]), max(1, math.ceil(CELL / max(pixels.shape))))
    if feature is not None:
        picture = _tile([features_image(feature[None]), picture], horizontal=True, gap=4 * GAP)
    return picture if title is None else _titled(picture, title)


def votes_image(names: tuple[str, ...], scores: tuple[float, ...], probabilities: tuple[float, ...]) -> Image.Image:
    """One bar per class: its probability, with its score written beside."""
    width, line = 240, 18
    labels = [f"{name}: {p:.2f} (score {s:+.2f})" for name, s, p in zip(names, scores, probabilities)]
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text = max(math.ceil(draw.textlength(label)) for label in labels) + 8
    canvas = Image.new("RGB", (text + width + 4, line * len(names) + 4), "white")
    board = ImageDraw.Draw(canvas)
    for i, (label, p) in enumerate(zip(labels, probabilities)):
        top = 2 + i * line
        board.text((2, top + 2), label, fill="black")
        board.rectangle((text, top + 3, text + max(1, round(p * width)), top + line - 3), fill=(60, 110, 200))
    return canvas
