"""Spec -> torch module: inferred shapes, parameters and FLOPs agree with what PyTorch runs and counts."""

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from swarmcnn.errors import SpecError
from swarmcnn.model import build_model
from swarmcnn.spec import FC, GELU, BatchNorm, Conv, Dropout, GlobalPool, Pool, ReLU, Spec, Whiten, parse

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")

CASES = [
    # images (C, H, W)
    ("conv8x3 relu maxpool2 fc16 relu", (1, 8, 8)),
    ("conv4x3s2 relu conv6x4s2 relu fc10", (3, 9, 9)),
    ("conv4x2s2 conv4x5s3 avgpool2s1", (2, 15, 14)),
    ("conv4x4 maxpool3s2 avgpool2 fc8", (3, 15, 15)),
    ("conv4x3 bn relu maxpool2 fc16 bn relu dropout0.5 fc8", (1, 8, 8)),
    ("dropout0.1 fc12 bn dropout0.30000000000000004", (1, 5, 7)),
    ("maxpool1 avgpool2s3 conv2x1", (1, 7, 7)),
    ("whiten2 gelu conv8x3 maxpool2 bn gelu conv16x3 bn gelu gmp", (3, 12, 12)),
    ("whiten3 conv4x3 gap fc8 gelu", (1, 8, 8)),
    # videos (C, T, H, W)
    ("conv4x3 bn relu maxpool2t1 conv8x2s2 avgpool2 fc8 bn", (3, 4, 8, 8)),
    ("maxpool3s2 conv2x4s2 relu", (1, 5, 9, 9)),
    ("conv2x3s2 maxpool2t1s1 avgpool1t2", (2, 6, 7, 7)),
    ("conv3x2 avgpool2t1s2 bn dropout0.2 fc5 relu", (1, 3, 6, 6)),
    ("whiten2 gelu conv4x3 gap", (2, 4, 6, 6)),
]
CASE_IDS = [f"{text}@{'x'.join(map(str, shape))}" for text, shape in CASES]


def outputs_after_each_layer(model: nn.Sequential, x: torch.Tensor) -> list[tuple[int, ...]]:
    """The output shape after every layer of the spec and the classifier; the implicit flattens are skipped."""
    shapes = []
    for module in model:
        x = module(x)
        if not isinstance(module, nn.Flatten):
            shapes.append(tuple(x.shape))
    return shapes


def assert_shapes_match_forward(spec: Spec, input_shape: tuple[int, ...], num_classes: int, batch: int = 3):
    inferred = spec.shapes(input_shape)
    model = build_model(spec, input_shape, num_classes)
    with torch.no_grad():
        actual = outputs_after_each_layer(model, torch.randn(batch, *input_shape))
    assert actual[:-1] == [(batch, s.channels, *s.spatial) for s in inferred]
    assert actual[-1] == (batch, num_classes)


def counted_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    model.eval()  # batch norm after fc needs more than one sample in training mode
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, *input_shape))
    return counter.get_total_flops()


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("text, input_shape", CASES, ids=CASE_IDS)
def test_inferred_shapes_equal_the_forward_pass_after_every_layer(text, input_shape):
    assert_shapes_match_forward(parse(text), input_shape, num_classes=4)


@st.composite
def small_specs(draw) -> Spec:
    """Small valid specs, with time windows and pools that may or may not fit the input."""
    p = st.sampled_from([0.0, 0.1 + 0.2, 1e-05, 0.5]) | st.floats(0, 1, exclude_max=True)
    convs = st.builds(Conv, features=st.integers(1, 4), size=st.integers(1, 5), stride=st.integers(1, 3))
    pools = st.builds(
        Pool,
        kind=st.sampled_from(["max", "avg"]),
        window=st.integers(1, 3),
        stride=st.none() | st.integers(1, 3),
        time_window=st.none() | st.integers(1, 3),
    )
    others = st.just(ReLU()) | st.just(GELU()) | st.just(BatchNorm()) | st.builds(Dropout, p=p)
    maps = st.builds(GlobalPool, kind=st.sampled_from(["avg", "max"])) | st.builds(Whiten, st.integers(1, 3))
    fcs = st.builds(FC, neurons=st.integers(1, 8))
    head = draw(st.lists(convs | pools | maps | others, max_size=5))
    tail = draw(st.none() | st.tuples(fcs, st.lists(fcs | others, max_size=3)))
    return Spec(tuple(head) + (() if tail is None else (tail[0], *tail[1])))


input_shapes = st.tuples(st.integers(1, 3), st.integers(1, 12), st.integers(1, 12)) | st.tuples(
    st.integers(1, 2), st.integers(1, 6), st.integers(1, 8), st.integers(1, 8)
)


def fitting_shapes(spec: Spec, input_shape: tuple[int, ...]):
    """The inferred shapes, or None where the spec cannot fit the input (which build must then refuse)."""
    try:
        shapes = spec.shapes(input_shape)
    except SpecError:
        with pytest.raises(SpecError):
            build_model(spec, input_shape, 3)
        return None
    return shapes


@settings(max_examples=100, deadline=None)
@given(small_specs(), input_shapes, st.integers(2, 5))
def test_random_spec_either_raises_spec_error_or_runs_with_the_inferred_shapes(spec, input_shape, num_classes):
    if fitting_shapes(spec, input_shape) is not None:
        assert_shapes_match_forward(spec, input_shape, num_classes, batch=2)


# ---------------------------------------------------------------- parameters and FLOPs


@pytest.mark.parametrize("text, input_shape", CASES, ids=CASE_IDS)
def test_num_params_equals_the_parameters_of_the_built_module(text, input_shape):
    spec = parse(text)
    model = build_model(spec, input_shape, 7)
    assert spec.num_params(input_shape, 7) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("text, input_shape", CASES, ids=CASE_IDS)
def test_flops_equal_what_the_pytorch_flop_counter_counts_for_one_sample(text, input_shape):
    spec = parse(text)
    assert spec.flops(input_shape, 7) == counted_flops(build_model(spec, input_shape, 7), input_shape)


def test_flops_of_a_known_network_by_hand():
    # conv: 2 * (8*8*8 outputs) * (1*3*3); fc: 2 * (8*4*4) * 16; classifier: 2 * 16 * 10
    assert parse("conv8x3 relu maxpool2 fc16").flops((1, 8, 8), 10) == 9216 + 4096 + 320


def test_num_params_of_a_known_network_by_hand():
    # conv 8*(1*9+1), bn 2*8, fc 16*(128+1), bn 2*16, classifier 10*(16+1)
    assert parse("conv8x3 bn maxpool2 fc16 bn").num_params((1, 8, 8), 10) == 80 + 16 + 2064 + 32 + 170


@settings(max_examples=60, deadline=None)
@given(small_specs(), input_shapes, st.integers(2, 5))
def test_random_spec_params_and_flops_equal_what_pytorch_counts(spec, input_shape, num_classes):
    if fitting_shapes(spec, input_shape) is None:
        return
    model = build_model(spec, input_shape, num_classes)
    assert spec.num_params(input_shape, num_classes) == sum(p.numel() for p in model.parameters())
    assert spec.flops(input_shape, num_classes) == counted_flops(model, input_shape)


# ---------------------------------------------------------------- the built module


@pytest.mark.parametrize("text, input_shape", CASES, ids=CASE_IDS)
def test_built_module_is_a_plain_sequential_of_torch_layers_only(text, input_shape):
    model = build_model(parse(text), input_shape, 3)
    assert type(model) is nn.Sequential
    for module in model.modules():
        assert type(module).__module__.startswith("torch.nn."), type(module)
    assert sum(isinstance(m, nn.Flatten) for m in model) == 1
    assert isinstance(model[-1], nn.Linear) and model[-1].out_features == 3


def test_image_input_builds_2d_layers_with_batchnorm1d_after_fc():
    model = build_model(parse("conv4x3 bn relu maxpool2 avgpool2 fc8 bn relu dropout0.1"), (3, 8, 8), 5)
    assert [type(m) for m in model] == [
        nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d,
        nn.Flatten, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Dropout, nn.Linear,
    ]  # fmt: skip


def test_video_input_builds_3d_layers_with_batchnorm1d_after_fc():
    model = build_model(parse("conv4x3 bn relu maxpool2 avgpool2 fc8 bn relu dropout0.1"), (3, 4, 8, 8), 5)
    assert [type(m) for m in model] == [
        nn.Conv3d, nn.BatchNorm3d, nn.ReLU, nn.MaxPool3d, nn.AvgPool3d,
        nn.Flatten, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Dropout, nn.Linear,
    ]  # fmt: skip
    assert model[0].kernel_size == (3, 3, 3)


def test_layers_carry_the_numbers_of_the_spec():
    model = build_model(parse("conv6x4s2 maxpool3s2 avgpool2t1 dropout0.25 fc9"), (2, 8, 16, 16), 3)
    conv, maxpool, avgpool, dropout, _, fc, _ = model
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride) == (2, 6, (4, 4, 4), (2, 2, 2))
    assert (maxpool.kernel_size, maxpool.stride) == ((3, 3, 3), (2, 2, 2))
    assert (avgpool.kernel_size, avgpool.stride) == ((1, 2, 2), (1, 2, 2))
    assert dropout.p == 0.25
    assert fc.out_features == 9


def test_spec_without_layers_builds_flatten_and_classifier():
    model = build_model(Spec(()), (2, 3, 4), 5)
    assert [type(m) for m in model] == [nn.Flatten, nn.Linear]
    assert model[1].in_features == 24


def test_spec_that_cannot_fit_the_input_is_refused_before_building():
    with pytest.raises(SpecError, match="'maxpool2' at position 5"):
        build_model(parse("conv8x3 maxpool2 maxpool2 maxpool2 maxpool2"), (1, 8, 8), 10)


def test_state_dict_round_trips_through_torch_save_and_weights_only_load(tmp_path):
    spec, input_shape = parse("conv4x3 bn relu maxpool2t1 fc8 bn relu dropout0.5"), (2, 3, 6, 6)
    original = build_model(spec, input_shape, 3)
    with torch.no_grad():  # training moves the batch norm statistics away from their initial values
        original(torch.randn(4, *input_shape))
    torch.save(original.state_dict(), tmp_path / "weights.pt")

    restored = build_model(spec, input_shape, 3)
    restored.load_state_dict(torch.load(tmp_path / "weights.pt", weights_only=True))
    x = torch.randn(2, *input_shape)
    with torch.no_grad():
        assert torch.equal(original.eval()(x), restored.eval()(x))


@pytest.mark.parametrize(
    ("arch", "input_shape"),
    [
        ("lenet5", (1, 28, 28)),
        ("vgg-small", (3, 4, 16, 16)),
        ("vgg-3block", (1, 8, 8)),
        ("conv8x3 relu maxpool2 fc16 relu", (1, 8, 8)),
    ],
)
def test_create_model_builds_a_design_name_or_a_spec_seeded_into_a_plain_module(arch, input_shape):
    import swarmcnn
    from swarmcnn.designs import spec_of

    first = swarmcnn.create_model(arch, input_shape, 7, seed=4)
    again = swarmcnn.create_model(arch, input_shape, 7, seed=4)
    assert isinstance(first, nn.Sequential)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    assert first(torch.zeros(2, *input_shape)).shape == (2, 7)
    assert sum(p.numel() for p in first.parameters()) == spec_of(arch).num_params(input_shape, 7)


def test_the_designs_offered_are_those_that_fit_the_input_and_a_search_starts_from_the_deepest_vgg():
    from swarmcnn.designs import fitting, starting

    assert list(fitting((1, 8, 8))) == ["lenet5", "vgg-small", "vgg-3block"]
    assert list(fitting((3, 4, 16, 16))) == ["lenet5", "vgg-small"]  # three pools need 8 frames
    assert list(fitting((1, 4, 4))) == ["lenet5", "vgg-small"]
    assert list(starting((1, 8, 8))) == ["lenet5", "vgg-3block"]  # a search starts from the deepest VGG that fits
    assert list(starting((1, 4, 4))) == ["lenet5", "vgg-small"]
    assert list(fitting((3, 32, 32)))[-2:] == ["airbench", "airbench-small"]
    assert list(starting((3, 32, 32))) == ["lenet5", "vgg-3block", "airbench-small"]  # and airbench's layout


@pytest.mark.parametrize(
    ("arch", "input_shape", "message"),
    [
        ("lenet", (1, 28, 28), "did you mean 'lenet5'"),
        ("conv8x3 rellu", (1, 8, 8), "did you mean 'relu'"),
        ("lenet5", (28,), "input_shape must be (C, L), (C, H, W) or (C, T, H, W)"),
        ("lenet5", (1, 2, 2), "maxpool2"),
    ],
)
def test_create_model_refuses_an_unknown_name_or_a_shape_that_does_not_fit(arch, input_shape, message):
    import swarmcnn

    with pytest.raises(SpecError, match=re.escape(message)):
        swarmcnn.create_model(arch, input_shape, 10)
