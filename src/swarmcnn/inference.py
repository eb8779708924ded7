"""What a trained network needs to classify stored inputs: the inputs read as one tensor, the normalisation, and
batched scoring.

Kept apart from the training loop, so that loading and using a model (checkpoint, export, the estimator's
predict) imports no training code.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import nn

from swarmcnn.ensemble import first_member
from swarmcnn.errors import SwarmCNNError
from swarmcnn.hardware import Hardware

EVALUATION_BATCH = 512  # inputs per forward pass when evaluating: no gradients, so larger than a training batch
# a series whose deviation is below SERIES_EPS plus this share of its level is flat (float32 rounds its mean by
# about that much): it is centred, not blown up to unit noise
SERIES_FLAT = 1e-5
SERIES_EPS = 1e-8


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean and standard deviation of the training split, in the stored units (0..255 for uint8).

    series: each input's channels are first brought to mean 0 and deviation 1 over time, on their own
    (`standardized_series`, the z-normalisation of the UCR baselines), so that a signal's level and scale do
    not matter; the per-channel mean and deviation are then those of the standardised training split.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    series: bool = False

    @classmethod
    def of(cls, x: torch.Tensor, series: bool = False) -> Normalization:
        if series:
            x = standardized_series(x)
        channels = x.transpose(0, 1).reshape(x.shape[1], -1)
        mean, std = [], []
        for values in channels:  # one channel at a time keeps the float copy small
            values = values.double()
            mean.append(values.mean().item())
            std.append(max(values.std().item(), 1e-6))
        return cls(tuple(mean), tuple(std), series)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(x - mean) / std, as one fused multiply-add: x * (1 / std) + (-mean / std); each series standardised
        first where `series`."""
        shift, scale = self.affine(x.dim(), x.device)
        return torch.addcmul(shift, standardized_series(x) if self.series else x.float(), scale)

    def affine(self, dims: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """(shift, scale), float32, shaped to broadcast over a batch of `dims` dimensions (shared: do not modify);
        an exported model folds them into its graph, so that it computes exactly what this normalisation does."""
        return _affine(self.mean, self.std, torch.device(device), dims)


def standardized_series(x: torch.Tensor) -> torch.Tensor:
    """Each sample's channels at mean 0 and standard deviation 1 over their last axis (time), in float32; a flat
    series becomes (nearly) 0. Plain arithmetic, so that exported graphs (ONNX, TorchScript) compute it alike."""
    x = x.float()
    centred = x - x.mean(dim=-1, keepdim=True)
    deviation = centred.square().mean(dim=-1, keepdim=True).sqrt()
    floor = SERIES_EPS + SERIES_FLAT * x.abs().mean(dim=-1, keepdim=True)
    return centred / torch.maximum(deviation, floor)


@functools.lru_cache(maxsize=16)
def _affine(mean: tuple, std: tuple, device: torch.device, dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalisation as shift and scale tensors shaped to broadcast, made once per device: no host-to-GPU
    copy per batch."""
    shape = (1, -1) + (1,) * (dims - 2)
    mean_t, std_t = torch.tensor(mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)
    shift, scale = -mean_t / std_t, 1 / std_t
    return shift.float().to(device).view(shape), scale.float().to(device).view(shape)


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    x: torch.Tensor,
    normalization: Normalization,
    batch_size: int = EVALUATION_BATCH,
    hardware: Hardware | None = None,
    flip: bool = False,
) -> torch.Tensor:
    """Class scores for stored inputs (uint8 or float), in batches, in evaluation mode.

    flip: the mean of the scores of each input and of its mirror image (test-time augmentation, for a network
    trained with flips: it has learned both views of every picture). hardware: where and in what precision;
    None: in fp32 where the model is.
    """
    hardware = hardware or Hardware(next(model.parameters()).device, "fp32", channels_last=False)
    model.eval()

    def scores(batch: torch.Tensor) -> torch.Tensor:
        inputs = hardware.inputs(normalization(batch.to(hardware.device)))
        with hardware.autocast():
            return ((model(inputs) + model(inputs.flip(-1))) / 2 if flip else model(inputs)).float()

    parts = [scores(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return torch.cat(parts).float() if parts else torch.empty(0, first_member(model)[-1].out_features)


def as_inputs(x) -> torch.Tensor:
    """Inputs as a tensor of numbers: a tensor as it is, a NumPy array (or a list) as uint8 or float32 (without a
    copy where it is one already); strings, objects, complex numbers and booleans refused in one line."""
    if not isinstance(x, torch.Tensor):
        import numpy as np

        try:
            array = np.asarray(x)
        except (ValueError, TypeError) as error:  # ragged lists
            raise SwarmCNNError(f"inputs cannot be read as one array: {error}") from None
        if array.dtype.kind not in "iuf":
            raise SwarmCNNError(f"inputs have dtype {array.dtype}; expected uint8 pixel values or floats")
        # uint8 as it is; any other number as float32, the arithmetic of the network (and in native byte order)
        x = torch.from_numpy(np.require(array, np.uint8 if array.dtype == np.uint8 else np.float32, ("C", "W")))
    if x.is_complex() or x.dtype == torch.bool:
        raise SwarmCNNError(f"inputs have dtype {x.dtype}; expected uint8 pixel values or floats")
    return x
