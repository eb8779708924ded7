"""The fixed first layer of airbench: features that whiten the training data's patches.

A `whiten<K>` layer (swarmcnn.spec.Whiten) is built as an ordinary convolution with frozen weights, zero until
`fit_whitening` computes them from the data it will see: the eigenvectors of the covariance of its K-wide
input patches, each divided by the square root of its eigenvalue (plus `EPS`), and the negatives of those, so
that a ReLU or GELU after it keeps both signs. The first layer then starts where a trained one would end up
(Jordan, "94% on CIFAR-10 in 3.29 seconds on a single GPU", 2024, after Coates & Ng, 2011) and costs no
gradient. A zero layer is one that has seen no data; a computed one is kept as it is (a model trained further).
"""

from __future__ import annotations

import torch
from torch import nn

EPS = 5e-4  # airbench's: added to the eigenvalues, so that near-constant directions are not blown up
SAMPLES = 5000  # inputs whose patches are counted: the covariance of 12 to 48 dimensions settles long before


def whitening_layers(model: nn.Module) -> list[nn.Module]:
    """The frozen convolutions of a model (its whiten<K> layers)."""
    convs = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
    return [m for m in model.modules() if isinstance(m, convs) and not m.weight.requires_grad]


@torch.no_grad()
def fit_whitening(model: nn.Module, inputs: torch.Tensor) -> int:
    """Compute every whitening layer of `model` that has seen no data from normalised `inputs` (a batch of the
    training split); returns how many were computed. Each layer sees what the layers before it make of them."""
    pending = [m for m in whitening_layers(model) if not m.weight.any()]
    if not pending:
        return 0
    captured: dict[nn.Module, torch.Tensor] = {}

    def capture(module: nn.Module, args: tuple) -> None:
        if module in pending and module not in captured:
            captured[module] = args[0].detach()
            raise _Captured

    for layer in pending:
        hook = layer.register_forward_pre_hook(capture)
        was_training = model.training
        model.eval()
        try:
            model(inputs[:SAMPLES].to(layer.weight.device, layer.weight.dtype))
        except _Captured:
            pass
        finally:
            hook.remove()
            model.train(was_training)
        layer.weight.copy_(whitening_weights(captured[layer], layer.kernel_size))
    return len(pending)


class _Captured(Exception):
    """Stops the forward pass once the layer's input is seen: nothing after it is computed."""


def whitening_weights(x: torch.Tensor, kernel_size: tuple[int, ...]) -> torch.Tensor:
    """The 2 x C x prod(K) features that whiten the K-wide patches of x (N, C, ...), in the layout of a conv
    weight (out, C, *K): eigenvectors scaled by 1 / sqrt(eigenvalue + EPS), then their negatives."""
    channels, size = x.shape[1], len(kernel_size)
    patches = _patches(x.double(), kernel_size)
    patches = patches - patches.mean(0)
    covariance = patches.T @ patches / max(len(patches) - 1, 1)
    values, vectors = torch.linalg.eigh(covariance)
    features = (vectors.T / (values.clamp(min=0) + EPS).sqrt()[:, None]).reshape(-1, channels, *kernel_size)
    assert features.dim() == 2 + size
    return torch.cat([features, -features]).to(x.dtype)


def _patches(x: torch.Tensor, kernel_size: tuple[int, ...]) -> torch.Tensor:
    """Every K-wide patch of x as a row (N * positions, C * prod(K)), for 1-, 2- and 3-D inputs alike: a
    convolution with one-hot features copies each patch element into its own channel."""
    channels = x.shape[1]
    width = channels * int(torch.tensor(kernel_size).prod())
    one_hot = torch.eye(width, dtype=x.dtype, device=x.device).reshape(width, channels, *kernel_size)
    conv = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d, 3: torch.nn.functional.conv3d}
    out = conv[len(kernel_size)](x, one_hot)
    return out.transpose(0, 1).reshape(width, -1).T
