"""The image stack shrinking, for one input: what each convolution, ReLU and pooling layer makes of it, how well
the first layer's features match each patch, and how the last layer votes.

These are the steps in which a CNN is usually taught: a feature lined up with every patch (the "match" is the
sum of pixel x feature products divided by the number of pixels in the feature, so that on pictures and
features of +-1 a perfect match reads 1), negatives set to 0, a window keeping the maximum, and fully
connected layers voting for the classes. `write_stack` writes them as pictures and an index.html that shows
them in order, a sentence each.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from swarmcnn.checkpoint import TrainedModel
from swarmcnn.ensemble import first_member
from swarmcnn.errors import SwarmCNNError

SHOWN_MAPS = 16  # feature maps drawn per layer at most
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)


@dataclass(frozen=True)
class LayerView:
    """One layer's output for the input: (C, H, W) maps (for a clip, its middle frame; for a signal (C, L)) and the
    layer's words."""

    position: int
    name: str  # as the spec writes it: conv8x3, relu, maxpool2
    module: nn.Module
    maps: torch.Tensor
    shape: tuple[int, ...]  # the whole output, without the batch axis

    @property
    def kind(self) -> str:
        if isinstance(self.module, _CONVS):
            return "convolution"
        return "ReLU" if isinstance(self.module, nn.ReLU) else "pooling"


@dataclass(frozen=True)
class Votes:
    scores: tuple[float, ...]  # the last layer's outputs, one per class
    probabilities: tuple[float, ...]  # their softmax


def layer_views(trained: TrainedModel, x: torch.Tensor) -> list[LayerView]:
    """The outputs of every convolution, ReLU and pooling layer before the first fully connected one, for one
    stored input x of the model's input shape."""
    module = first_member(trained.module).cpu().eval()  # an ensemble's members share their layers' kinds
    value = trained.normalization(x[None].cpu())
    # before the first fc, module i is the spec's layer i (model.build_model inserts nothing there)
    names = [str(layer) for layer in trained.spec.layers]
    views = []
    with torch.no_grad():
        for position, layer in enumerate(module):
            if isinstance(layer, (nn.Flatten, nn.Linear)):
                break
            value = layer(value)
            if isinstance(layer, (*_CONVS, nn.ReLU, *_POOLS)):
                maps = value[0] if value.dim() in (3, 4) else value[0, :, value.shape[2] // 2]
                name = names[position] if position < len(names) else type(layer).__name__
                views.append(LayerView(position, name, layer, maps.clone(), tuple(value.shape[1:])))
    return views


def match_map(x: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
    """How well `feature` w (C, K, K) or (C, Kt, K, K) matches each patch p of x (C, H, W) or (C, T, H, W), x scaled
    to +-1 first (`plus_minus_one`): sum(p * w) / sum(|w|), at each patch's centre.

    This is the seed's "sum of pixel x feature products divided by the number of pixels in the feature" with the
    feature's weights normalised to +-1 by their largest magnitude, u = w / max|w|, and each pixel counted by its
    weight's share |u| in 0..1: sum(p * u) / sum(|u|). For a feature of +-1, sum(|u|) is the number of pixels, so
    it is the seed's formula exactly. For any feature, a patch of values in -1..1 reads at most 1, and exactly 1
    where p = sign(w) (|sum(p * u)| <= max|p| * sum(|u|), with equality there); -1 where p = -sign(w). A learned
    feature's weak weights thereby count little, where dividing by the pixel count would cap its best match
    below 1. The ratio does not change when w is scaled. The border is padded with 0 (no evidence).
    """
    convolve = {2: F.conv1d, 3: F.conv2d, 4: F.conv3d}[feature.dim()]
    padding = tuple(size // 2 for size in feature.shape[1:])
    total = float(feature.abs().sum()) or 1.0
    return convolve(x[None].float(), feature[None].float(), padding=padding)[0, 0] / total


def plus_minus_one(x: torch.Tensor) -> torch.Tensor:
    """Stored values mapped linearly to -1..1: 0..255 for uint8 pictures, the input's own range otherwise."""
    if x.dtype == torch.uint8:
        return x.float() / 127.5 - 1
    low, high = float(x.min()), float(x.max())
    return (x.float() - low) / ((high - low) or 1.0) * 2 - 1


def first_layer_match(trained: TrainedModel, x: torch.Tensor, feature: int | None = None) -> tuple[int, torch.Tensor]:
    """The first convolution's feature `feature` (default: the one with the best match anywhere) and its match
    map on x scaled to +-1."""
    conv = next((layer for layer in first_member(trained.module) if isinstance(layer, _CONVS)), None)
    if conv is None:
        raise SwarmCNNError("the model has no convolution: there are no features to match")
    weight = conv.weight.detach().cpu()
    scaled = plus_minus_one(x.cpu())
    if feature is None:
        feature = max(range(len(weight)), key=lambda k: float(match_map(scaled, weight[k]).max()))
    if not 0 <= feature < len(weight):
        raise SwarmCNNError(f"--feature {feature}: the first convolution has features 0..{len(weight) - 1}")
    return feature, match_map(scaled, weight[feature])


def votes(trained: TrainedModel, x: torch.Tensor) -> Votes:
    """The last layer's score for each class on input x, and the probabilities softmax makes of them."""
    with torch.no_grad():
        scores = trained.module.cpu().eval()(trained.normalization(x[None].cpu()))[0]
    return Votes(tuple(scores.tolist()), tuple(scores.softmax(0).tolist()))


SENTENCES = {
    "convolution": "Convolution: each of its {features} features is lined up with every patch, multiplied pixel by "
    "pixel and added up; a map is bright where its feature is found. Output {shape}.",
    "ReLU": "ReLU: every negative value becomes 0, so only the places where a feature was found stay. Output {shape}.",
    "pooling": "Pooling: a window walks over each map and keeps its maximum (or average): the stack shrinks to "
    "{shape} and keeps the strongest matches.",
}
SIGNAL_SENTENCES = {  # the same steps along time
    "convolution": "Convolution: each of its {features} features, a short stretch of signal over all channels, is "
    "lined up with every stretch of the input, multiplied instant by instant and added up; a map is high where its "
    "feature is found. Output {shape}.",
    "ReLU": SENTENCES["ReLU"],
    "pooling": "Pooling: a window of instants walks along each map and keeps its maximum (or average): the series "
    "shrink to {shape} and keep the strongest matches.",
}


def write_stack(trained: TrainedModel, x: torch.Tensor, out: Path, name: str, feature: int | None = None) -> dict:
    """Pictures of the stack for input x, the match view, the votes, and an index.html showing them in order.

    Returns the files written, by role (for `explain --json`).
    """
    from swarmcnn import render

    out.mkdir(parents=True, exist_ok=True)
    files: dict = {"input": "stack-input.png", "layers": []}
    render.input_image(x).save(out / files["input"])
    sections = [(files["input"], f"The input: {html.escape(name)}, {'×'.join(map(str, x.shape))}.")]
    if trained.members > 1:
        sections.append(("", f"The model averages the votes of {trained.members} trainings of one network; the "
                             "layers below are the first training's."))
    for view in layer_views(trained, x):
        picture = f"stack-{view.position:02d}-{view.kind.lower()}.png"
        shape = "×".join(map(str, view.shape))
        plain = "x".join(map(str, view.shape))  # PIL's default font has no ×
        title = f"layer {view.position + 1}: {view.name}, output {plain}"
        render.maps_image(view.maps, SHOWN_MAPS, title=title).save(out / picture)
        features = view.module.out_channels if view.kind == "convolution" else ""
        sentence = (SIGNAL_SENTENCES if x.dim() == 2 else SENTENCES)[view.kind].format(features=features, shape=shape)
        files["layers"].append({
            "layer": view.position, "name": view.name, "kind": view.kind, "shape": list(view.shape),
            "picture": picture,
        })
        sections.append((picture, html.escape(f"Layer {view.position + 1}, {view.name}. {sentence}")))
    if any(isinstance(layer, _CONVS) for layer in first_member(trained.module)):
        chosen, matches = first_layer_match(trained, x, feature)
        shown = matches if matches.dim() <= 2 else matches[matches.shape[0] // 2]
        files["match"], files["feature"] = "stack-match.png", chosen
        first = next(layer for layer in first_member(trained.module) if isinstance(layer, _CONVS))
        signal = x.dim() == 2
        patch, unit = ("stretch", "instant") if signal else ("patch", "pixel")
        scale = "1 at the top, -1 at the bottom" if signal else "white 1, black -1"
        title = f"feature {chosen} of the first convolution, and its match with each {patch} ({scale})"
        render.match_image(shown, first.weight[chosen], title=title).save(out / files["match"])
        sections.append((files["match"], html.escape(
            f"The match of feature {chosen} of the first layer with each {patch}: the sum of {unit} × feature "
            f"products divided by the number of {unit}s in the feature, on the input scaled to ±1 and the feature "
            f"scaled to ±1 (each {unit} counted by its weight's share), so a {patch} of the feature's signs reads 1 "
            f"({'the top' if signal else 'white'}), its opposite -1 ({'the bottom' if signal else 'black'}); best "
            f"here {float(shown.max()):.2f}."
        )))
    result = votes(trained, x)
    files["votes"] = "stack-votes.png"
    render.votes_image(trained.class_names, result.scores, result.probabilities).save(out / files["votes"])
    best = max(range(len(result.probabilities)), key=result.probabilities.__getitem__)
    sections.append((files["votes"], html.escape(
        f"The fully connected layers vote: every value left scores each class, and softmax turns the scores into "
        f"probabilities. Answer: {trained.class_names[best]} ({result.probabilities[best]:.2f})."
    )))
    files["index"] = "index.html"
    (out / files["index"]).write_text(_page(name, sections), encoding="utf-8")
    files["votes_probabilities"] = dict(zip(trained.class_names, result.probabilities))
    return files


def _page(name: str, sections: list[tuple[str, str]]) -> str:
    body = "\n".join(
        f'<figure><img src="{html.escape(picture)}" alt="{html.escape(picture)}">'
        f"<figcaption>{text}</figcaption></figure>" if picture else f"<p>{text}</p>"  # a section of words only
        for picture, text in sections
    )
    return (
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>What the network does with {html.escape(name)}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}img{image-rendering:pixelated;"
        "max-width:100%}figure{margin:0 0 2em}</style></head><body>"
        f"<h1>What the network does with {html.escape(name)}</h1>\n{body}\n</body></html>\n"
    )
