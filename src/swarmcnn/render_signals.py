"""Pictures of signals for people: lines, not pixels. `swarmcnn.render` hands (C, L) inputs, (F, C, K) features and
(C, L) feature maps here, and gets PIL images back as for pictures.

Each channel is a line over time; evidence is shaded under it in red (white: none, deep red: the strongest), so
that where along the series the network found its answer reads at a glance. matplotlib draws them (Agg, no
display), as it draws the report's figures.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

SHOWN_CHANNELS = 12  # channels drawn at most (JapaneseVowels has 12, EEG sets often 6 to 64)
SHOWN_FEATURES = 32
COLOURS = ("#1f5fa8", "#d04a02", "#2a8a3a", "#7b3fa0", "#8c6d1f", "#c2185b")  # one per input channel of a feature
DPI = 100


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _image(figure) -> Image.Image:
    plt = _pyplot()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def signal_image(x: torch.Tensor, heat: torch.Tensor | None = None, title: str | None = None) -> Image.Image:
    """A signal (C, L), one line per channel (the first SHOWN_CHANNELS), with `heat` (L,) in 0..1 shaded under
    each line where given."""
    values = x.detach().float().cpu().numpy()
    shown = values[:SHOWN_CHANNELS]
    plt = _pyplot()
    figure, axes = plt.subplots(len(shown), 1, figsize=(7, 0.9 + 0.9 * len(shown)), sharex=True, squeeze=False)
    instants = np.arange(values.shape[1])
    for channel, (line, panel) in enumerate(zip(shown, axes[:, 0])):
        panel.plot(instants, line, color="#222", linewidth=1)
        if heat is not None:
            _shade(panel, instants, line, heat.detach().float().cpu().numpy())
        panel.set_ylabel(f"ch {channel + 1}", fontsize=7, rotation=0, ha="right", va="center")
        panel.tick_params(labelsize=6)
        panel.margins(x=0)
    axes[-1, 0].set_xlabel("instant" + (f" (channels 1-{len(shown)} of {len(values)})" if len(values) > len(shown)
                                        else ""), fontsize=7)
    if title:
        axes[0, 0].set_title(title, fontsize=8, loc="left")
    return _image(figure)


def _shade(panel, instants: np.ndarray, line: np.ndarray, heat: np.ndarray) -> None:
    """The heat as a red band under the line, down to the bottom of the panel, its colour per instant."""
    low, high = float(line.min()), float(line.max())
    bottom = low - 0.05 * ((high - low) or 1.0)
    area = panel.fill_between(instants, bottom, line, color="none")
    image = panel.imshow(heat[None], extent=(instants[0] - 0.5, instants[-1] + 0.5, bottom, high), aspect="auto",
                         cmap="Reds", vmin=0, vmax=1, origin="lower", interpolation="nearest")
    image.set_clip_path(area.get_paths()[0], transform=panel.transData)
    panel.set_ylim(bottom, high + 0.05 * ((high - low) or 1.0))


def features_image(weight: torch.Tensor, columns: int = 8) -> Image.Image:
    """A 1-D convolution's features (F, C, K) as short curves, one small panel each, one colour per input channel;
    each scaled on its own, as `render.features_image` scales a picture's."""
    weight = weight.detach().float().cpu().numpy()[:SHOWN_FEATURES]
    rows = -(-len(weight) // columns)
    plt = _pyplot()
    figure, grid = plt.subplots(rows, min(columns, len(weight)), figsize=(1.1 * min(columns, len(weight)), 0.9 * rows),
                                squeeze=False)
    for axes in grid.flat[len(weight):]:
        axes.set_visible(False)
    for index, (feature, axes) in enumerate(zip(weight, grid.flat)):
        span = float(np.abs(feature).max()) or 1.0
        for channel, taps in enumerate(feature[:len(COLOURS)]):
            axes.plot(taps / span, color=COLOURS[channel], linewidth=1.2, marker="." if len(taps) <= 9 else None,
                      markersize=3)
        axes.axhline(0, color="#bbb", linewidth=0.5)
        axes.set(ylim=(-1.1, 1.1), xticks=[], yticks=[])
        axes.set_title(str(index), fontsize=6, pad=1)
    return _image(figure)


def maps_image(maps: torch.Tensor, limit: int = 16, title: str | None = None) -> Image.Image:
    """A layer's feature maps (C, L), the first `limit`, one line each on one scale for the whole layer (a weak map
    looks weak)."""
    maps = maps.detach().float().cpu().numpy()[:limit]
    low, high = float(maps.min()), float(maps.max())
    pad = 0.05 * ((high - low) or 1.0)
    plt = _pyplot()
    figure, axes = plt.subplots(len(maps), 1, figsize=(6, 0.3 + 0.42 * len(maps)), sharex=True, squeeze=False)
    for index, (line, panel) in enumerate(zip(maps, axes[:, 0])):
        panel.fill_between(np.arange(len(line)), low, line, color="#9bb8d8", linewidth=0)
        panel.plot(line, color="#1f5fa8", linewidth=0.8)
        panel.set(ylim=(low - pad, high + pad), yticks=[])
        panel.set_ylabel(str(index), fontsize=6, rotation=0, ha="right", va="center")
        panel.tick_params(labelsize=6)
        panel.margins(x=0)
    if title:
        axes[0, 0].set_title(title, fontsize=8, loc="left")
    return _image(figure)


def match_image(match: torch.Tensor, feature: torch.Tensor | None = None, title: str | None = None) -> Image.Image:
    """A match curve (L,) in -1..1 over time, with the feature (C, K) drawn beside it when given."""
    values = match.detach().float().cpu().numpy()
    plt = _pyplot()
    width = (1, 5) if feature is not None else (5,)
    figure, axes = plt.subplots(1, len(width), figsize=(7, 1.8), gridspec_kw={"width_ratios": width}, squeeze=False)
    curve = axes[0, -1]
    curve.plot(values, color="#d04a02", linewidth=1)
    curve.axhline(0, color="#bbb", linewidth=0.5)
    curve.set(ylim=(-1.05, 1.05), xlabel="instant")
    curve.tick_params(labelsize=6)
    curve.margins(x=0)
    if feature is not None:
        taps = feature.detach().float().cpu().numpy()
        span = float(np.abs(taps).max()) or 1.0
        for channel, line in enumerate(taps[:len(COLOURS)]):
            axes[0, 0].plot(line / span, color=COLOURS[channel], linewidth=1.2, marker=".")
        axes[0, 0].set(ylim=(-1.1, 1.1), xticks=[], yticks=[])
        axes[0, 0].set_xlabel("feature", fontsize=7)
    if title:
        figure.suptitle(title, fontsize=8, x=0.02, y=1.04, ha="left")
    return _image(figure)
