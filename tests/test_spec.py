"""The spec grammar, its errors and shape checks; nothing here builds a torch module."""

import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from swarmcnn.errors import SpecError, SwarmCNNError
from swarmcnn.spec import FC, GELU, BatchNorm, Conv, Dropout, GlobalPool, Pool, ReLU, Shape, Spec, Whiten, format, parse

# Awkward but exactly representable dropout rates; repr() of each is what format() writes.
AWKWARD_P = [0.0, 0.1 + 0.2, 1e-4, 0.3, 0.5, 1 - 2**-53, 2**-10]

# Tiny rates would print in exponent form ('1e-05') if format() used repr(); '-' separates tokens.
any_p = st.sampled_from([*AWKWARD_P, 1e-05, 5e-324]) | st.floats(min_value=0, max_value=1, exclude_max=True)
formattable_p = any_p


def layer_strategies(p: st.SearchStrategy[float]):
    convs = st.builds(Conv, features=st.integers(1, 512), size=st.integers(1, 11), stride=st.integers(1, 4))
    pools = st.builds(
        Pool,
        kind=st.sampled_from(["max", "avg"]),
        window=st.integers(1, 6),
        stride=st.none() | st.integers(1, 4),
        time_window=st.none() | st.integers(1, 4),
    )
    globals_ = st.builds(GlobalPool, kind=st.sampled_from(["avg", "max"])) | st.builds(Whiten, size=st.integers(1, 5))
    others = st.just(ReLU()) | st.just(GELU()) | st.just(BatchNorm()) | st.builds(Dropout, p=p)
    fcs = st.builds(FC, neurons=st.integers(1, 4096))
    return convs | pools | globals_ | others, fcs, others


@st.composite
def specs(draw, p: st.SearchStrategy[float] = formattable_p) -> Spec:
    """Valid specs: convolution and pooling only before the first fc."""
    picture, fcs, others = layer_strategies(p)
    head = draw(st.lists(picture, max_size=6))
    tail = draw(st.lists(fcs | others, max_size=4))
    first_fc = draw(st.none() | fcs) if head else draw(fcs)
    return Spec(tuple(head) + (() if first_fc is None else (first_fc, *tail)))


# ---------------------------------------------------------------- grammar round trips


@settings(max_examples=100, deadline=None)
@given(specs())
def test_format_then_parse_gives_back_every_valid_spec(spec):
    assert parse(format(spec)) == spec


@settings(max_examples=100, deadline=None)
@given(specs())
def test_format_writes_the_canonical_text_which_parses_to_itself(spec):
    text = format(spec)
    assert format(parse(text)) == text
    assert text == text.strip().lower()


@settings(max_examples=100, deadline=None)
@given(specs(), st.data())
def test_any_mix_of_spaces_dashes_and_upper_case_parses_to_the_same_spec(spec, data):
    tokens = format(spec).split(" ")
    separators = st.sampled_from([" ", "-", "  ", " - ", "--", "\t", "\n"])
    text = data.draw(st.sampled_from(["", " ", "-", "\n "]), label="leading")
    for token in tokens:
        upper = data.draw(st.booleans(), label="upper")
        text += (token.upper() if upper else token) + data.draw(separators, label="separator")
    assert parse(text) == spec


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("conv8x3-relu-fc10", "conv8x3 relu fc10"),
        ("CONV8X3 ReLU MaxPool2 FC10", "conv8x3 relu maxpool2 fc10"),
        ("  conv08x3s1 -  maxpool2s2\tdropout.5\nfc010 ", "conv8x3 maxpool2s2 dropout0.5 fc10"),
        ("avgpool3t1s2 bn dropout0 dropout0.25", "avgpool3t1s2 bn dropout0.0 dropout0.25"),
        ("conv4x2s2-maxpool3s2-fc8-bn-relu", "conv4x2s2 maxpool3s2 fc8 bn relu"),
    ],
)
def test_text_to_spec_to_text_is_canonical_and_stable(text, canonical):
    assert format(parse(text)) == canonical
    assert format(parse(canonical)) == canonical


def test_parsed_layers_carry_the_numbers_written():
    spec = parse("conv32x5s2 maxpool3t1s2 avgpool2 relu bn dropout0.25 fc64")
    assert spec.layers == (
        Conv(32, 5, 2),
        Pool("max", 3, stride=2, time_window=1),
        Pool("avg", 2),
        ReLU(),
        BatchNorm(),
        Dropout(0.25),
        FC(64),
    )


@settings(max_examples=100, deadline=None)
@given(specs(any_p))
@example(Spec((Dropout(1e-05), Dropout(0.1 + 0.2), Pool("avg", 2, None, None))))
def test_to_list_and_from_list_give_back_every_spec(spec):
    assert Spec.from_list(spec.to_list()) == spec


@settings(max_examples=100, deadline=None)
@given(specs(any_p))
@example(Spec((Dropout(1e-05), Dropout(0.1 + 0.2), Pool("avg", 2, None, None))))
def test_json_round_trip_gives_back_every_spec_exactly(spec):
    text = spec.to_json()
    assert json.loads(text) == spec.to_list()
    assert Spec.from_json(text) == spec


@pytest.mark.parametrize("p", [1e-05, 5e-05, 1e-10, 5e-324])
def test_dropout_below_1e_4_survives_format_and_parse(p):
    spec = Spec((Conv(8, 3), Dropout(p), FC(10)))
    assert parse(format(spec)) == spec


@pytest.mark.parametrize("text", ['[{"type": "Conv", "features": 8}]', '[{"type": "Softmax"}]'])
def test_malformed_spec_data_raises_spec_error(text):
    with pytest.raises(SpecError, match="malformed spec data"):
        Spec.from_json(text)


# ---------------------------------------------------------------- parse errors


def test_spec_error_is_the_project_error_type():
    assert issubclass(SpecError, SwarmCNNError)
    with pytest.raises(SwarmCNNError):
        parse("conv8x3 fc0")


def test_misspelt_layer_names_the_token_its_position_and_the_close_match():
    with pytest.raises(SpecError) as info:
        parse("conv8x3 relu maxpol2 fc10")
    assert str(info.value) == "unknown layer 'maxpol2' at position 3; did you mean 'maxpool2'?"


def test_unknown_layer_without_close_match_lists_examples():
    with pytest.raises(SpecError, match=r"unknown layer 'banana' at position 2; expected e\.g\. conv32x3"):
        parse("relu banana")


@pytest.mark.parametrize(
    "text, token, position, complaint",
    [
        ("conv0x3", "conv0x3", 1, "the number of features must be at least 1, got 0"),
        ("relu conv8x0", "conv8x0", 2, "the feature size must be at least 1, got 0"),
        ("conv8x3s0", "conv8x3s0", 1, "the stride must be at least 1, got 0"),
        ("relu relu maxpool0", "maxpool0", 3, "the window must be at least 1, got 0"),
        ("avgpool2t0", "avgpool2t0", 1, "the time window must be at least 1, got 0"),
        ("conv8x3 fc0", "fc0", 2, "the number of neurons must be at least 1, got 0"),
        ("conv8x3 fc10 dropout1.0", "dropout1.0", 3, r"dropout must be in \[0, 1\), got 1\.0"),
        ("conv8x3 DROPOUT1", "dropout1", 2, r"dropout must be in \[0, 1\), got 1\.0"),
    ],
)
def test_out_of_range_number_names_the_token_and_its_1_based_position(text, token, position, complaint):
    with pytest.raises(SpecError, match=rf"^layer '{token}' at position {position}: {complaint}$"):
        parse(text)


@pytest.mark.parametrize("text", ["", "   ", " - ", "\n\t--"])
def test_empty_spec_is_rejected_with_an_example(text):
    with pytest.raises(SpecError, match="empty architecture spec; expected e.g. 'conv32x3"):
        parse(text)


@pytest.mark.parametrize(
    "text, late, late_position, fc, fc_position",
    [
        ("conv8x3 fc10 conv8x3", "conv8x3", 3, "fc10", 2),
        ("fc16 relu fc8 maxpool2", "maxpool2", 4, "fc16", 1),
        ("conv4x3 fc32 bn avgpool3t1s2", "avgpool3t1s2", 4, "fc32", 2),
    ],
)
def test_convolution_or_pooling_after_fc_names_both_layers(text, late, late_position, fc, fc_position):
    with pytest.raises(SpecError) as info:
        parse(text)
    message = str(info.value)
    assert f"'{late}' at position {late_position}" in message
    assert f"'{fc}' at position {fc_position}" in message


def test_spec_built_in_code_with_conv_after_fc_is_rejected_by_shapes():
    with pytest.raises(SpecError, match="'conv8x3' at position 2 comes after fully connected layer 'fc10'"):
        Spec((FC(10), Conv(8, 3))).shapes((1, 8, 8))


# ---------------------------------------------------------------- shape checks without torch


def test_pooling_below_1x1_names_the_layer_position_and_the_shape():
    spec = parse("conv8x3 maxpool2 maxpool2 maxpool2 maxpool2")
    with pytest.raises(SpecError) as info:
        spec.shapes((1, 8, 8))
    message = str(info.value)
    assert "'maxpool2' at position 5" in message
    assert "8×1×1" in message
    assert "below 1×1" in message


def test_pooling_that_still_fits_reaches_exactly_1x1():
    shapes = parse("conv8x3 maxpool2 maxpool2 maxpool2").shapes((1, 8, 8))
    assert shapes == [Shape(8, (8, 8)), Shape(8, (4, 4)), Shape(8, (2, 2)), Shape(8, (1, 1))]


def test_pooling_too_few_frames_names_the_layer():
    with pytest.raises(SpecError, match="'maxpool2t3' at position 2 cannot pool a 4×2×8×8 input"):
        parse("conv4x3 maxpool2t3").shapes((1, 2, 8, 8))


@pytest.mark.parametrize("text, position", [("maxpool2t1", 1), ("conv8x3 relu avgpool2t2s1", 3)])
def test_time_window_on_an_image_input_is_rejected(text, position):
    with pytest.raises(SpecError, match=rf"at position {position}: a time window needs a video input"):
        parse(text).shapes((3, 16, 16))


@pytest.mark.parametrize("shape", [(8,), (1, 2, 3, 4, 5), (0, 8, 8), (1, 8, 0), (0, 8)])
def test_input_shape_of_the_wrong_rank_or_empty_is_rejected(shape):
    with pytest.raises(SpecError, match=r"must be \(C, L\), \(C, H, W\) or \(C, T, H, W\)"):
        parse("conv8x3").shapes(shape)


@pytest.mark.parametrize(
    "text, input_shape, expected",
    [
        ("conv8x3s2", (3, 9, 9), [Shape(8, (5, 5))]),
        ("conv8x4s2", (3, 9, 9), [Shape(8, (4, 4))]),
        ("maxpool3s2 avgpool2s1", (1, 9, 9), [Shape(1, (4, 4)), Shape(1, (3, 3))]),
        ("maxpool2t1 maxpool2", (2, 5, 8, 8), [Shape(2, (5, 4, 4)), Shape(2, (2, 2, 2))]),
        ("conv4x3 fc10 bn", (1, 4, 4), [Shape(4, (4, 4)), Shape(10, ()), Shape(10, ())]),
    ],
)
def test_shapes_follow_the_pytorch_output_size_rules(text, input_shape, expected):
    assert parse(text).shapes(input_shape) == expected


@pytest.mark.parametrize(
    "text, input_shape",
    [
        ("conv8x3 maxpool2 maxpool2 maxpool2 conv8x2s2", (1, 8, 8)),
        ("conv4x4s2", (1, 1, 1)),
        ("conv2x2s2", (1, 1, 8, 8)),
    ],
)
def test_strided_even_conv_on_a_one_wide_axis_is_rejected(text, input_shape):
    with pytest.raises(SpecError):
        parse(text).shapes(input_shape)


# ---------------------------------------------------------------- global pooling, whitening, GELU


def test_global_pooling_leaves_one_value_per_feature_map_at_any_input_size():
    for shape in ((3, 32, 32), (3, 9, 7), (2, 4, 6, 6)):
        assert parse("conv8x3 gap").shapes(shape)[-1] == Shape(8, (1,) * (len(shape) - 1))
    assert parse("conv8x3 gmp fc4").feature_size((1, 5, 5)) == 4


def test_whitening_makes_two_features_per_patch_value_and_loses_its_size_less_one():
    assert parse("whiten2").shapes((3, 32, 32)) == [Shape(24, (31, 31))]
    assert parse("whiten3").shapes((1, 8, 8)) == [Shape(18, (6, 6))]
    assert parse("whiten2").shapes((3, 8, 16, 16)) == [Shape(48, (7, 15, 15))]


def test_whitening_wider_than_the_input_names_the_layer():
    with pytest.raises(SpecError, match="'whiten5' at position 2.*do not fit a 4×4×4 input"):
        parse("conv4x3 whiten5").shapes((1, 4, 4))


@pytest.mark.parametrize("text, late", [("fc8 gap", "gap"), ("fc8 whiten2", "whiten2")])
def test_global_pooling_or_whitening_after_fc_is_refused(text, late):
    with pytest.raises(SpecError, match=f"'{late}' at position 2 comes after fully connected layer 'fc8'"):
        parse(text)


def test_the_new_tokens_are_suggested_for_close_misspellings():
    with pytest.raises(SpecError, match="did you mean 'gelu'"):
        parse("conv8x3 gelo")
