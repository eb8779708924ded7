"""What a trained CNN learned: its first-layer features, and where in an input the evidence for a class lies.

The attribution methods are Captum's (pytorch/captum, the PyTorch team's interpretability library), applied
to a copy of the model that takes normalised inputs:

- `gradcam`: Grad-CAM (Selvaraju et al., ICCV 2017). The last convolution's rectified feature maps, each
  weighted by how much the class score rises with it on average; coarse (the maps are pooled), but it
  shows what the deepest features matched, and it is one forward and one backward pass.
- `integrated-gradients` (Sundararajan et al., ICML 2017): the gradient of the class score summed along the
  path from a black input to this one; pixel-sharp, 32 passes.
- `occlusion` (Zeiler & Fergus, ECCV 2014): a black window walks over the input with a stride, as pooling's
  window does, and each place gets the drop of the class score when it is hidden; it needs no gradient.

Every map keeps the positive evidence only (what speaks *for* the class), summed over colour channels and
scaled to a maximum of 1. Images give an (H, W) map, videos a (T, H, W) one: time is one more axis here too;
signals (C, L) an (L,) map along time, summed over their channels. A signal has no black: its baseline (what
integrated gradients start from and occlusion hides with) is the training data's mean, 0 once normalised.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from swarmcnn.checkpoint import TrainedModel
from swarmcnn.ensemble import members_of
from swarmcnn.errors import SwarmCNNError, did_you_mean
from swarmcnn.memory import allocating

METHODS = ("gradcam", "integrated-gradients", "occlusion")
INTEGRATION_STEPS = 32
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_AFTER_CONV = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.ReLU, nn.Dropout)
_INTERPOLATION = {3: "linear", 4: "bilinear", 5: "trilinear"}  # Grad-CAM's maps to the input's size, by batch dims


@dataclass
class Explanation:
    """The prediction for one input and the map of the evidence for `target` (the predicted class unless asked)."""

    label: str
    probability: float
    target: str
    target_probability: float
    method: str
    heatmap: torch.Tensor  # (H, W), (T, H, W) or for signals (L,), 0..1

    @property
    def peak(self) -> tuple[int, ...]:
        """Where the evidence is strongest: (row, column), (frame, row, column) for a video, (instant,) for a
        signal."""
        flat = int(self.heatmap.argmax())
        return tuple(int(i) for i in np.unravel_index(flat, tuple(self.heatmap.shape)))

    @property
    def frame_importance(self) -> list[float] | None:
        """For a video, each frame's share of the evidence (sums to 1); None for an image."""
        if self.heatmap.dim() != 3:
            return None
        per_frame = self.heatmap.sum(dim=(1, 2))
        total = float(per_frame.sum())
        return [float(v) / total if total > 0 else 1 / len(per_frame) for v in per_frame]


def explain(
    trained: TrainedModel,
    inputs: torch.Tensor,
    method: str = "gradcam",
    target: str | None = None,
    device: str | torch.device = "cpu",
) -> list[Explanation]:
    """Explain the model's answer for each stored input of shape (N, *input_shape), uint8 or float.

    Always in fp32: attribution maps are gradients, and bf16 would round away the small differences they show.
    """
    if method not in METHODS:
        raise SwarmCNNError(f"unknown explanation method '{method}' (methods: {', '.join(METHODS)})"
                            f"{did_you_mean(method, list(METHODS))}")
    trained.check_inputs(inputs)
    _require_captum()
    with allocating("explaining", device):  # gradients of every input: an allocation failure is one line
        module = _explainable_copy(trained.module).to(device)
        x = trained.normalization(inputs.to(device))
        with torch.no_grad():
            probabilities = module(x).softmax(1).cpu()
        targets = probabilities.argmax(1) if target is None else torch.full((len(x),), _class_index(trained, target))
        black = _baseline(trained, inputs, device).expand_as(x).contiguous()
        maps = _ATTRIBUTE[method](module, x, targets.to(device), black).detach().cpu()
    return [_explanation(trained, p, t, method, m) for p, t, m in zip(probabilities, targets.tolist(), maps)]


def _baseline(trained: TrainedModel, inputs: torch.Tensor, device) -> torch.Tensor:
    """One normalised input that shows nothing: black for pictures and clips, the mean (0) for signals."""
    if len(trained.input_shape) == 2:
        return torch.zeros((1, *trained.input_shape), device=device)
    return trained.normalization(torch.zeros_like(inputs[:1], device=device))


def _explanation(trained: TrainedModel, probabilities, target: int, method: str, heat) -> Explanation:
    names = trained.class_names
    best = int(probabilities.argmax())
    peak = float(heat.max())
    return Explanation(
        label=names[best],
        probability=float(probabilities[best]),
        target=names[target],
        target_probability=float(probabilities[target]),
        method=method,
        heatmap=heat / peak if peak > 0 else heat,
    )


def first_conv_weight(module: nn.Module) -> torch.Tensor | None:
    """The features (filters) of the first convolution, (F, C, K) for signals, (F, C, K, K) or (F, C, K, K, K);
    None without one."""
    return next((layer.weight for layer in module.modules() if isinstance(layer, _CONVS)), None)


def _require_captum() -> None:
    try:
        import captum.attr  # noqa: F401
    except ImportError:
        raise SwarmCNNError("explaining needs Captum and matplotlib: pip install 'swarmcnn[explain]'") from None


def _explainable_copy(module: nn.Module) -> nn.Module:
    """An evaluation-mode copy whose ReLUs are not in place: in-place ops corrupt the hooked activations."""
    module = copy.deepcopy(module).cpu().eval()
    for layer in module.modules():
        if isinstance(layer, nn.ReLU):
            layer.inplace = False
    return module


def _class_index(trained: TrainedModel, name: str) -> int:
    names = list(trained.class_names)
    if name not in names:
        raise SwarmCNNError(f"--target '{name}' is not a class of this model{did_you_mean(name, names)}; "
                            f"its classes are {', '.join(names)}")
    return trained.class_names.index(name)


def last_conv_activation(module: nn.Sequential) -> nn.Module:
    """The layer that ends the last convolution's block (its batch norm and ReLU): Grad-CAM's feature maps."""
    layers = list(module)
    convs = [i for i, layer in enumerate(layers) if isinstance(layer, _CONVS)]
    if not convs:
        raise SwarmCNNError("gradcam needs a convolution layer and this model has none; "
                            "use --method integrated-gradients or occlusion")
    end = convs[-1]
    while end + 1 < len(layers) and isinstance(layers[end + 1], _AFTER_CONV):
        end += 1
    return layers[end]


def _gradcam(module: nn.Module, x: torch.Tensor, targets: torch.Tensor, black: torch.Tensor) -> torch.Tensor:
    """Grad-CAM of the last convolution's maps; of an ensemble, the mean of its members' (each has its own maps)."""
    from captum.attr import LayerAttribution, LayerGradCam

    maps = []
    for member in members_of(module):
        coarse = LayerGradCam(member, last_conv_activation(member)).attribute(x, target=targets,
                                                                              relu_attributions=True)
        maps.append(LayerAttribution.interpolate(coarse.detach(), tuple(x.shape[2:]),
                                                 interpolate_mode=_INTERPOLATION[x.dim()]))
    return torch.stack(maps).mean(0)[:, 0].clamp(min=0)


def _integrated_gradients(module, x, targets, black) -> torch.Tensor:
    from captum.attr import IntegratedGradients

    attribution = IntegratedGradients(module).attribute(
        x, baselines=black, target=targets, n_steps=INTEGRATION_STEPS, internal_batch_size=64
    )
    return attribution.detach().sum(1).clamp(min=0)


def _occlusion(module, x, targets, black) -> torch.Tensor:
    from captum.attr import Occlusion

    window = tuple(max(1, math.ceil(size / 4)) for size in x.shape[2:])  # a quarter of each axis
    strides = tuple(max(1, w // 2) for w in window)
    attribution = Occlusion(module).attribute(
        x,
        sliding_window_shapes=(x.shape[1], *window),
        strides=(x.shape[1], *strides),
        baselines=black,
        target=targets,
    )
    return attribution.detach().sum(1).clamp(min=0)


_ATTRIBUTE = {"gradcam": _gradcam, "integrated-gradients": _integrated_gradients, "occlusion": _occlusion}
