"""whiten<K>: the fixed first layer computed from the data, for signals, pictures and clips alike."""

import pytest
import torch

from swarmcnn.data import load_data
from swarmcnn.model import create_model
from swarmcnn.train import Normalization, TrainConfig, fit
from swarmcnn.whitening import fit_whitening, whitening_layers


def _correlated(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Inputs whose neighbouring values are strongly correlated (smoothed noise), as pictures are."""
    x = torch.randn(400, *shape, generator=torch.Generator().manual_seed(seed))
    for axis in range(2, x.dim()):
        x = x + x.roll(1, axis)
    return x


@pytest.mark.parametrize("shape", [(3, 12, 12), (1, 10, 10), (2, 4, 6, 6)])
def test_the_computed_features_make_the_patches_uncorrelated_with_unit_variance(shape):
    model = create_model("whiten2 gelu conv4x1 gap", shape, 3)
    x = _correlated(shape)
    assert fit_whitening(model, x) == 1
    conv = model[0]
    half = conv.out_channels // 2
    out = torch.nn.functional.conv2d(x, conv.weight[:half]) if x.dim() == 4 else \
        torch.nn.functional.conv3d(x, conv.weight[:half])
    covariance = torch.cov(out.transpose(0, 1).reshape(half, -1))
    assert torch.allclose(covariance, torch.eye(half), atol=0.05)
    assert torch.equal(conv.weight[half:], -conv.weight[:half])  # the negatives keep both signs through a GELU


def test_a_computed_layer_is_left_alone_and_training_never_moves_it():
    data = load_data("digits")
    model = create_model("whiten2 gelu conv8x3 maxpool2 bn gelu gap", data.input_shape, 10)
    (layer,) = whitening_layers(model)
    assert not layer.weight.any()  # zero: it has seen no data
    fit(model, data, Normalization.of(data.train.x), TrainConfig(epochs=1))
    computed = layer.weight.clone()
    assert computed.any()
    assert fit_whitening(model, torch.randn(50, *data.input_shape)) == 0
    fit(model, data, Normalization.of(data.train.x), TrainConfig(epochs=1, seed=1))
    assert torch.equal(layer.weight, computed)
