"""The weight-sharing supernet: every child is its stand-alone network with the inherited weights."""

import pytest
import torch

from swarmcnn.data import load_data
from swarmcnn.designs import design
from swarmcnn.errors import SwarmCNNError
from swarmcnn.search.oneshot import score_child, train_supernet
from swarmcnn.search.supernet import Bounds, Supernet
from swarmcnn.spec import parse
from swarmcnn.train import Normalization, TrainConfig

CHILDREN = [
    "conv8x3 relu",
    "conv16x5 bn relu maxpool2 conv8x3 bn gelu gap fc12 bn relu dropout0.2",
    "whiten2 gelu conv8x3 maxpool2 bn gelu conv16x3 bn gelu gmp",
    "conv6x5 relu maxpool2 conv16x5 relu maxpool2 fc32 relu fc16 relu",  # flattened maps into the first fc
    "avgpool2 conv4x1 bn relu",
]


@pytest.mark.parametrize("shape", [(3, 16, 16), (1, 12, 12), (2, 4, 8, 8)], ids=["rgb", "gray", "clip"])
def test_each_child_gives_the_outputs_of_its_stand_alone_network_with_the_inherited_weights(shape):
    supernet = Supernet(shape, 5, Bounds(features=32, kernel=5, neurons=32))
    x = torch.randn(6, *shape)
    for text in CHILDREN:
        spec = parse(text)
        spec.shapes(shape)
        supernet.fit_whitening(x, spec)
        supernet.recalibrate(spec, [x, x.flip(0)])
        standalone = supernet.child(spec).eval()
        supernet.eval()
        assert torch.allclose(supernet(x, spec), standalone(x), atol=1e-6), text
        supernet.train()
        standalone.train()
        torch.manual_seed(0)  # the same dropout masks
        shared = supernet(x, spec)
        torch.manual_seed(0)
        assert torch.allclose(shared, standalone(x), atol=1e-5), text  # with batch statistics alike


def test_children_share_the_slices_of_their_common_layers():
    supernet = Supernet((1, 8, 8), 3, Bounds(features=16, kernel=5, neurons=16))
    narrow, wide = parse("conv4x3 relu gap"), parse("conv16x5 relu gap")
    first = supernet.child(narrow)[0].weight
    second = supernet.child(wide)[0].weight
    assert torch.equal(first, second[:4, :, 1:4, 1:4])  # the first features, the centre of the larger kernel


def test_a_child_wider_than_the_banks_or_whitening_inside_is_refused():
    supernet = Supernet((1, 8, 8), 3, Bounds(features=16, kernel=3, neurons=16))
    supernet(torch.randn(2, 1, 8, 8), parse("conv8x3 relu conv8x3 relu"))
    with pytest.raises(SwarmCNNError, match="wider than the supernet's space"):
        supernet(torch.randn(2, 1, 8, 8), parse("conv8x3 relu conv32x3 relu"))
    with pytest.raises(SwarmCNNError, match="only as the first layer"):
        supernet(torch.randn(2, 1, 8, 8), parse("conv8x3 whiten2"))


def test_training_the_supernet_teaches_its_children_digits():
    data = load_data("digits")
    normalization = Normalization.of(data.train.x)
    supernet = Supernet(data.input_shape, 10, Bounds(features=32, kernel=3, neurons=32))
    children = [parse("conv16x3 bn relu maxpool2 conv32x3 bn relu gap"),
                parse("conv32x3 bn relu maxpool2 conv16x3 bn relu gap")]
    before = [score_child(supernet, spec, data, normalization) for spec in children]
    draw = lambda generator: children[int(torch.randint(2, (1,), generator=generator))]  # noqa: E731
    trained = train_supernet(supernet, data, normalization, draw, TrainConfig(epochs=3, seed=0))
    after = [score_child(supernet, spec, data, normalization) for spec in children]
    assert trained.children == 2 and trained.images >= 3 * len(data.train)
    assert all(a > 0.7 > b for a, b in zip(after, before)), (before, after)


def test_the_designs_are_children():
    supernet = Supernet((3, 32, 32), 10, Bounds(features=256, kernel=5, neurons=256))
    x = torch.randn(2, 3, 32, 32)
    for name in ("lenet5", "vgg-3block", "airbench-small"):
        spec = design(name)
        supernet.fit_whitening(x, spec)
        assert supernet(x, spec).shape == (2, 10)


def test_a_saved_supernet_loads_with_the_same_children(tmp_path):
    supernet = Supernet((1, 8, 8), 3, Bounds(features=16, kernel=3, neurons=16))
    x = torch.randn(4, 1, 8, 8)
    specs = [parse("conv8x3 bn relu gap"), parse("conv16x3 bn relu maxpool2 fc8 relu")]
    supernet.eval()
    before = [supernet(x, spec) for spec in specs]
    supernet.save(tmp_path / "supernet.safetensors")
    again = Supernet((1, 8, 8), 3, Bounds(features=16, kernel=3, neurons=16))
    again.load(tmp_path / "supernet.safetensors")
    again.eval()
    assert all(torch.equal(a, again(x, spec)) for a, spec in zip(before, specs))
    assert not again.take_new_banks()  # nothing made anew
