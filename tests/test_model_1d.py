"""The grammar in one dimension: signals (C, L) get Conv1d / MaxPool1d / AvgPool1d / BatchNorm1d layers whose shapes,
parameters and FLOPs the spec computes exactly, layer by layer, as for pictures."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from swarmcnn.errors import SpecError
from swarmcnn.model import build_model, create_model
from swarmcnn.spec import Conv, Pool, ReLU, Spec, parse
from tests.test_model import assert_shapes_match_forward, counted_flops

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")

CASES = [
    ("conv16x7 relu maxpool2 fc16 relu", (1, 50)),
    ("conv16x7 bn relu maxpool2 conv32x5 bn relu avgpool2 fc8", (6, 100)),
    ("conv8x8 conv4x5s3 avgpool3s1 dropout0.2 fc5 bn", (12, 29)),
    ("conv4x3s2 relu maxpool3s2 conv2x1", (3, 31)),
    ("maxpool1 avgpool2s3 conv2x9 bn", (2, 17)),
    ("fc12 relu dropout0.1", (2, 7)),
]
CASE_IDS = [f"{text}@{'x'.join(map(str, shape))}" for text, shape in CASES]


@pytest.mark.parametrize("text, input_shape", CASES, ids=CASE_IDS)
def test_inferred_shapes_of_signals_equal_the_forward_pass_after_every_layer(text, input_shape):
    assert_shapes_match_forward(parse(text), input_shape, num_classes=3)


@pytest.mark.parametrize("text, input_shape", CASES, ids=CASE_IDS)
def test_params_and_flops_of_signals_equal_what_pytorch_has_and_counts(text, input_shape):
    spec = parse(text)
    model = build_model(spec, input_shape, 4)
    assert spec.num_params(input_shape, 4) == sum(p.numel() for p in model.parameters())
    assert spec.flops(input_shape, 4) == counted_flops(model, input_shape)


def test_conv16x7_is_sixteen_features_of_seven_instants_over_all_channels_and_maxpool2_halves_the_length():
    model = create_model("conv16x7 bn relu maxpool2", (3, 50), 2)
    conv, norm, _, pool = model[:4]
    assert isinstance(conv, nn.Conv1d) and tuple(conv.weight.shape) == (16, 3, 7)
    assert isinstance(norm, nn.BatchNorm1d) and isinstance(pool, nn.MaxPool1d)
    assert [(s.channels, s.spatial) for s in parse("conv16x7 bn relu maxpool2").shapes((3, 50))][-1] == (16, (25,))
    assert isinstance(create_model("avgpool2 fc4", (1, 8), 2)[0], nn.AvgPool1d)
    assert model(torch.randn(5, 3, 50)).shape == (5, 2)


def test_the_known_flops_of_a_signal_network_by_hand():
    # conv: 2 x 50 instants x 8 features x 3 channels x 7 taps; fc: 2 x 25 x 8 x 16; classifier: 2 x 16 x 2
    assert parse("conv8x7 relu maxpool2 fc16").flops((3, 50), 2) == 16800 + 6400 + 64


@pytest.mark.parametrize(
    ("text", "input_shape", "words"),
    [
        ("conv8x3 maxpool8 maxpool8", (1, 20), ["'maxpool8' at position 3", "below 1"]),
        ("maxpool2t1", (2, 16), ["'maxpool2t1' at position 1", "video", "'maxpool2'"]),
        ("avgpool4 fc8 conv4x3", (1, 16), ["'conv4x3' at position 3", "after fully connected"]),
        ("conv4x3s2 conv4x3s2 conv4x4s2", (1, 3), ["'conv4x4s2' at position 3", "shrinks"]),
    ],
)
def test_a_spec_that_cannot_fit_a_signal_is_refused_naming_the_layer(text, input_shape, words):
    with pytest.raises(SpecError) as caught:
        parse(text).shapes(input_shape)
    assert all(word in str(caught.value) for word in words), str(caught.value)


def test_create_model_takes_signals_and_names_every_kind_of_input_when_refusing_another():
    assert isinstance(create_model("lenet5", (6, 100), 4)[0], nn.Conv1d)
    with pytest.raises(SpecError, match=r"\(C, L\), \(C, H, W\) or \(C, T, H, W\)"):
        create_model("lenet5", (100,), 4)


@st.composite
def signal_specs(draw):
    convs = st.builds(Conv, features=st.integers(1, 4), size=st.integers(1, 9), stride=st.integers(1, 3))
    pools = st.builds(Pool, kind=st.sampled_from(["max", "avg"]), window=st.integers(1, 4),
                      stride=st.none() | st.integers(1, 3))
    layers = draw(st.lists(convs | pools | st.just(ReLU()), min_size=1, max_size=4))
    return Spec(tuple(layers)), (draw(st.integers(1, 4)), draw(st.integers(1, 60)))


@settings(max_examples=40, deadline=None)
@given(signal_specs())
def test_random_signal_specs_are_refused_or_match_pytorch_exactly(case):
    spec, input_shape = case
    try:
        spec.shapes(input_shape)
    except SpecError:
        return
    model = build_model(spec, input_shape, 3)
    assert spec.num_params(input_shape, 3) == sum(p.numel() for p in model.parameters())
    assert spec.flops(input_shape, 3) == counted_flops(model, input_shape)
    assert_shapes_match_forward(spec, input_shape, 3, batch=2)


def test_the_designs_offered_to_signals_are_the_signal_designs_and_only_to_signals():
    from swarmcnn.designs import SIGNAL_DESIGNS, fitting, starting

    assert list(fitting((1, 150))) == list(starting((6, 896))) == ["lenet1d", "fcn"] == list(SIGNAL_DESIGNS)
    assert list(fitting((12, 3))) == ["fcn"]  # lenet1d's two pools need 4 instants
    for shape in [(1, 8, 8), (3, 32, 32), (1, 8, 16, 16)]:
        assert not set(fitting(shape)) & set(SIGNAL_DESIGNS) and not set(starting(shape)) & set(SIGNAL_DESIGNS)


def test_the_fcn_is_wang_et_al_s_three_blocks_of_128_256_128_features_and_a_global_average_pool():
    from swarmcnn.designs import design

    spec = design("fcn")
    assert [(c.features, c.size) for c in spec.layers if isinstance(c, Conv)] == [(128, 8), (256, 5), (128, 3)]
    assert [s.spatial for s in spec.shapes((1, 150))][-2:] == [(150,), (1,)]  # 'same' padding, then one per map
    model = create_model("fcn", (1, 150), 2)
    assert sum(p.numel() for p in model.parameters()) == spec.num_params((1, 150), 2) == 264_962


def test_building_a_network_with_an_even_feature_size_silences_pytorchs_note_about_its_padding():
    import subprocess
    import sys

    code = ("import torch; from swarmcnn.model import create_model; "
            "create_model('fcn', (1, 32), 2)(torch.zeros(2, 1, 32))")
    result = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
