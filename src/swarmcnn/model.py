"""Spec -> plain torch.nn.Sequential: 1-D layers for signals (C, L), 2-D for images (C, H, W), 3-D for video
(C, T, H, W); the layer classes are looked up by the number of dimensions, so every token serves all three.

The result holds only torch.nn layers, so it runs, saves and exports without swarmcnn.
"""

from __future__ import annotations

import math
import numbers
import warnings

import torch
from torch import nn

from swarmcnn.designs import spec_of
from swarmcnn.errors import SpecError
from swarmcnn.memory import check_fits
from swarmcnn.spec import (
    FC,
    GELU,
    INPUT_KINDS,
    INPUT_SHAPES,
    BatchNorm,
    Conv,
    Dropout,
    GlobalPool,
    Pool,
    ReLU,
    Spec,
    Whiten,
    conv_padding,
    pool_geometry,
)

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_BATCHNORM = {0: nn.BatchNorm1d, 1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_POOL = {
    ("max", 1): nn.MaxPool1d,
    ("avg", 1): nn.AvgPool1d,
    ("max", 2): nn.MaxPool2d,
    ("max", 3): nn.MaxPool3d,
    ("avg", 2): nn.AvgPool2d,
    ("avg", 3): nn.AvgPool3d,
}
_GLOBAL_POOL = {
    ("avg", 1): nn.AdaptiveAvgPool1d,
    ("max", 1): nn.AdaptiveMaxPool1d,
    ("avg", 2): nn.AdaptiveAvgPool2d,
    ("avg", 3): nn.AdaptiveAvgPool3d,
    ("max", 2): nn.AdaptiveMaxPool2d,
    ("max", 3): nn.AdaptiveMaxPool3d,
}
_LARGEST = 2**31 - 1  # torch unpacks sizes and strides as 64-bit integers, and some kernels index with 32


def create_model(
    arch: str | Spec, input_shape: tuple[int, ...], num_classes: int, seed: int = 0
) -> nn.Sequential:
    """The network for a design name ('lenet5', 'vgg-small'), spec text or Spec, seeded: one entry point from a
    name to a plain module (as timm's create_model). The global random state is left as it was.

    input_shape: (C, L) for signals (C channels of L instants), (C, H, W) for pictures, (C, T, H, W) for video clips.
    """
    spec = spec_of(arch)
    shape = tuple(input_shape)
    if len(shape) not in INPUT_KINDS or not all(
        isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1 for n in shape
    ):
        raise SpecError(f"input_shape must be {INPUT_SHAPES}, whole numbers >= 1, got {input_shape!r}")
    shape = tuple(int(n) for n in shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(spec, shape, num_classes)


def build_model(spec: Spec, input_shape: tuple[int, ...], num_classes: int) -> nn.Sequential:
    """Build the layers in order, with the flatten before the first fc and the classifier at the end."""
    if num_classes < 2:
        raise SpecError(f"a classifier needs at least 2 classes, got {num_classes}")
    shapes = spec.shapes(input_shape)  # raises a SpecError naming the layer before anything is built
    check_model_fits(spec, input_shape, num_classes)
    previous_shapes = [(input_shape[0], tuple(input_shape[1:])), *((s.channels, s.spatial) for s in shapes)]
    layers: list[nn.Module] = []
    flat = False
    for layer, (channels, spatial) in zip(spec.layers, previous_shapes):
        dims = 0 if flat else len(spatial)
        if isinstance(layer, FC) and not flat:
            layers.append(nn.Flatten())
            channels, flat = channels * math.prod(spatial), True
        layers.append(_build_layer(layer, channels, dims))
    if not flat:
        layers.append(nn.Flatten())
    layers.append(nn.Linear(spec.feature_size(input_shape), num_classes))
    return nn.Sequential(*layers)


def check_model_fits(
    spec: Spec,
    input_shape: tuple[int, ...],
    num_classes: int,
    batch_size: int = 1,
    training: bool = False,
    device=None,
) -> None:
    """Refuse, before torch allocates, a model too large for the free memory (of device, where it is a CUDA
    device), naming its parameter count.

    Counted in float32: the weights and the values of a batch through every layer; training adds the
    gradients and AdamW's two moments of each weight, and the gradient of each value.
    """
    params = spec.num_params(input_shape, num_classes)
    values = math.prod(input_shape) + sum(shape.numel for shape in spec.shapes(input_shape)) + num_classes
    weight_copies, value_copies = (4, 2) if training else (1, 1)
    needed = 4 * (params * weight_copies + values * batch_size * value_copies)
    shown = "x".join(map(str, input_shape))
    what = f"model '{spec}' for {shown} inputs ({params:,} parameters" + (
        f", batches of {batch_size})" if batch_size > 1 else ")"
    )
    check_fits(needed, what, SpecError, device)
    for position, layer in enumerate(spec.layers, start=1):
        large = [v for v in vars(layer).values() if isinstance(v, int) and v > _LARGEST]
        if large:
            raise SpecError(f"layer '{layer}' at position {position}: {large[0]} exceeds {_LARGEST}, torch's limit")


def _build_layer(layer, channels: int, dims: int) -> nn.Module:
    if isinstance(layer, Conv):
        padding = conv_padding(layer.size, layer.stride)
        if padding == "same" and layer.size % 2 == 0:
            _quiet_even_same_padding()
        return _CONV[dims](channels, layer.features, layer.size, stride=layer.stride, padding=padding)
    if isinstance(layer, Whiten):
        return _whitening(_CONV[dims](channels, layer.features(channels, dims), layer.size))
    if isinstance(layer, Pool):
        window, stride = pool_geometry(layer, dims)
        return _POOL[layer.kind, dims](window, stride=stride)
    if isinstance(layer, GlobalPool):
        return _GLOBAL_POOL[layer.kind, dims](1)
    if isinstance(layer, FC):
        return nn.Linear(channels, layer.neurons)
    if isinstance(layer, BatchNorm):
        return _BATCHNORM[dims](channels)
    if isinstance(layer, ReLU):
        return nn.ReLU(inplace=True)
    if isinstance(layer, GELU):
        return nn.GELU()
    if isinstance(layer, Dropout):
        return nn.Dropout(layer.p)
    raise TypeError(f"unknown layer {layer!r}")


def _quiet_even_same_padding() -> None:
    """Silence PyTorch's note, once per process at the first forward pass, that 'same' padding with an even kernel
    pads a copy of the layer's input: the FCN's kernel of 8 (Wang et al. 2017) and psoCNN's 4 and 6 ask for exactly
    that, one instant more at the end than at the start, as Keras pads them. The copy costs nothing measurable: the
    FCN on SelfRegulationSCP1's 6x896 signals trains a batch in the time of its twin with a kernel of 7, within the
    noise of two shared cores. Set here, where a model with such a layer is built, so that a user of the paper's
    network is not warned about a cost they chose; other warnings stay. Added again at every such build (the same
    filter is kept once), so that a caller's `warnings.catch_warnings()` that dropped it does not bring it back."""
    warnings.filterwarnings("ignore", message="Using padding='same' with even kernel", category=UserWarning)


def _whitening(conv: nn.Module) -> nn.Module:
    """A convolution that training leaves alone: zero until `swarmcnn.whitening` computes it from data."""
    for parameter in conv.parameters():
        parameter.requires_grad_(False)
        if parameter.device.type != "meta":
            parameter.zero_()
    return conv
