import numpy as np
import pytest
import torch

from swarmcnn.checkpoint import TrainedModel
from swarmcnn.data import load_data
from swarmcnn.errors import SwarmCNNError
from swarmcnn.explain import METHODS, explain, first_conv_weight, last_conv_activation
from swarmcnn.spec import parse
from swarmcnn.train import Normalization, TrainConfig, build_seeded, fit

pytest.importorskip("captum", reason="explaining needs the explain extra (Captum)")

SIZE = 12


def _trained(data, arch: str, epochs: int) -> TrainedModel:
    spec = parse(arch)
    model = build_seeded(spec, data.input_shape, len(data.class_names), seed=0)
    normalization = Normalization.of(data.train.x)
    fit(model, data, normalization, TrainConfig(epochs=epochs, seed=0))
    return TrainedModel(model.eval(), spec, data.input_shape, data.class_names, normalization)


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    """Noise pictures where class 'blob' has a bright 3x3 square somewhere and class 'none' has not: the
    evidence for 'blob' is known to lie on the square."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 80, (600, SIZE, SIZE), dtype=np.uint8)
    y = np.arange(600) % 2
    corners = rng.integers(0, SIZE - 3, (600, 2))
    for picture, label, (row, col) in zip(x, y, corners):
        if label == 1:
            picture[row : row + 3, col : col + 3] = 255
    path = tmp_path_factory.mktemp("blobs") / "blobs.npz"
    np.savez(path, x=x, y=y, classes=np.array(["none", "blob"]))
    data = load_data(str(path))
    return data, _trained(data, "conv8x3 bn relu conv8x3 bn relu maxpool2 fc16 relu", epochs=8)


@pytest.fixture(scope="module")
def digits_model(digits):
    return _trained(digits, "conv16x3 bn relu maxpool2 conv16x3 bn relu fc32 relu", epochs=6)


@pytest.mark.parametrize("method", METHODS)
def test_the_evidence_for_a_class_lies_where_the_class_is_drawn(blobs, method):
    data, trained = blobs
    positives = data.test.x[data.test.y == 1][:20]
    found = explain(trained, positives, method)
    hits = 0
    for picture, explanation in zip(positives, found):
        assert explanation.label == "blob"
        rows, cols = torch.nonzero(picture[0] == 255, as_tuple=True)
        row, col = explanation.peak
        hits += bool(rows.min() - 1 <= row <= rows.max() + 1 and cols.min() - 1 <= col <= cols.max() + 1)
    assert hits >= 18, f"{method}: the peak fell on the square in {hits} of 20 pictures"


@pytest.mark.parametrize("method", ["integrated-gradients", "occlusion"])
def test_hiding_the_strongest_evidence_costs_more_than_hiding_the_weakest(digits_model, digits, method):
    """A deletion check: blacking out the quarter of the pixels the map ranks highest lowers the probability
    of the class more than blacking out the quarter it ranks lowest."""
    x = digits.test.x[:30]
    found = explain(digits_model, x, method)
    drops = {"strongest": [], "weakest": []}
    for picture, explanation in zip(x, found):
        order = explanation.heatmap.flatten().argsort(descending=True)
        quarter = len(order) // 4
        for name, hidden in (("strongest", order[:quarter]), ("weakest", order[-quarter:])):
            masked = picture.clone().flatten()
            masked[hidden] = 0
            target = digits_model.class_names.index(explanation.target)
            after = digits_model.predict_proba(masked.view(1, *picture.shape))[0, target]
            drops[name].append(explanation.target_probability - float(after))
    assert np.mean(drops["strongest"]) > np.mean(drops["weakest"]) + 0.2, drops


def test_maps_are_scaled_to_one_and_match_the_prediction(digits_model, digits):
    x = digits.test.x[:5]
    probabilities = digits_model.predict_proba(x)
    for method in METHODS:
        for row, explanation in zip(probabilities, explain(digits_model, x, method)):
            assert explanation.heatmap.shape == (8, 8)
            assert explanation.heatmap.min() >= 0 and explanation.heatmap.max() == pytest.approx(1.0)
            assert explanation.label == digits_model.class_names[int(row.argmax())]
            assert explanation.probability == pytest.approx(float(row.max()), abs=1e-5)
            assert explanation.frame_importance is None


def test_a_target_class_maps_the_evidence_for_that_class(digits_model, digits):
    x = digits.test.x[:3]
    probabilities = digits_model.predict_proba(x)
    for row, explanation in zip(probabilities, explain(digits_model, x, "gradcam", target="4")):
        assert explanation.target == "4"
        assert explanation.target_probability == pytest.approx(float(row[4]), abs=1e-5)


def test_explaining_leaves_the_model_as_it_was(digits_model, digits):
    before = {k: v.clone() for k, v in digits_model.module.state_dict().items()}
    explain(digits_model, digits.test.x[:4], "integrated-gradients")
    assert not digits_model.module.training
    assert all(torch.equal(v, before[k]) for k, v in digits_model.module.state_dict().items())


def test_a_video_gets_a_map_per_frame_and_each_frame_a_share():
    data = load_data("moving-digits")
    trained = _trained(data, "conv8x3 relu maxpool2 fc16 relu", epochs=1)
    found = explain(trained, data.test.x[:2], "gradcam")
    for explanation in found:
        assert explanation.heatmap.shape == data.input_shape[1:]
        assert len(explanation.peak) == 3
        assert sum(explanation.frame_importance) == pytest.approx(1.0)
    assert first_conv_weight(trained.module).shape == (8, 1, 3, 3, 3)


def test_gradcam_uses_the_rectified_maps_of_the_last_convolution(digits_model):
    layer = last_conv_activation(digits_model.module)
    layers = list(digits_model.module)
    assert isinstance(layer, torch.nn.ReLU) and isinstance(layers[layers.index(layer) - 2], torch.nn.Conv2d)


def test_without_a_convolution_gradcam_is_refused_and_occlusion_still_works(digits):
    trained = _trained(digits, "fc32 relu", epochs=1)
    with pytest.raises(SwarmCNNError, match="occlusion"):
        explain(trained, digits.test.x[:2], "gradcam")
    assert len(explain(trained, digits.test.x[:2], "occlusion")) == 2
    assert first_conv_weight(trained.module) is None


@pytest.mark.parametrize(
    "kwargs, words",
    [({"method": "gradcams"}, ["gradcams", "did you mean 'gradcam'"]), ({"target": "eleven"}, ["eleven", "classes"])],
)
def test_a_bad_method_or_target_is_named(digits_model, digits, kwargs, words):
    with pytest.raises(SwarmCNNError) as error:
        explain(digits_model, digits.test.x[:1], **kwargs)
    assert all(word in str(error.value) for word in words)
