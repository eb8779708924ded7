"""The image stack shrinking: feature maps per layer, the first layer's match view, the votes, and index.html."""

import re

import pytest
import torch

from swarmcnn import load
from swarmcnn.cli import main
from swarmcnn.stack import layer_views, match_map, plus_minus_one, votes, write_stack

X_FEATURE = torch.tensor([[1.0, -1, 1], [-1, 1, -1], [1, -1, 1]])[None]  # an X of +-1, as the seed draws it


def test_a_feature_matches_a_picture_made_of_it_with_1_at_its_position():
    picture = -torch.ones(1, 9, 9)
    picture[:, 2:5, 5:8] = X_FEATURE  # the feature, centred at row 3, column 6
    matches = match_map(picture, X_FEATURE)
    assert matches.shape == (9, 9)
    assert matches[3, 6] == pytest.approx(1.0)
    assert matches.flatten().argmax() == 3 * 9 + 6  # nowhere else as well
    assert match_map(-picture, X_FEATURE)[3, 6] == pytest.approx(-1.0)  # its negative: a perfect mismatch
    assert match_map(picture, 0.5 * X_FEATURE)[3, 6] == pytest.approx(1.0)  # the feature's scale does not matter


def test_a_patch_of_a_learned_features_signs_reads_exactly_1_and_nothing_reads_more():
    feature = torch.tensor([[0.9, -0.2, 0.05], [-0.6, 1.3, -0.1], [0.3, -0.7, 0.4]])[None]  # uneven weights
    picture = torch.zeros(1, 7, 7)
    picture[:, 1:4, 2:5] = feature.sign()  # centred at row 2, column 3
    assert match_map(picture, feature)[2, 3] == pytest.approx(1.0)
    noise = torch.rand(200, 1, 7, 7, generator=torch.Generator().manual_seed(0)) * 2 - 1  # any picture of -1..1
    assert max(float(match_map(x, feature).abs().max()) for x in noise) < 1.0


def test_the_x_feature_lights_up_on_the_x_pictures_of_shapes():
    from swarmcnn.data import load_data

    test = load_data("shapes").test
    best = torch.stack([match_map(plus_minus_one(x), X_FEATURE).max() for x in test.x])
    on_x, on_o = best[test.y == 1], best[test.y == 0]  # classes ("O", "X")
    assert float(on_x.mean()) > float(on_o.mean()) + 0.05  # about 0.26 against 0.16


def test_stored_pictures_are_scaled_to_plus_minus_one():
    assert plus_minus_one(torch.tensor([0, 255], dtype=torch.uint8)).tolist() == [-1.0, 1.0]
    assert plus_minus_one(torch.tensor([2.0, 4.0, 6.0])).tolist() == [-1.0, 0.0, 1.0]


@pytest.fixture(scope="module")
def shapes_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("stack") / "model"
    spec = "conv8x3 relu maxpool2 conv16x3 relu maxpool2 fc32 relu"
    assert main(["train", "shapes", "--arch", spec, "--epochs", "2", "--out", str(out), "--quiet"]) == 0
    return load(out)


def test_the_stack_shrinks_layer_by_layer(shapes_model):
    from swarmcnn.data import load_data

    x = load_data("shapes").test.x[0]
    views = layer_views(shapes_model, x)
    assert [v.kind for v in views] == ["convolution", "ReLU", "pooling", "convolution", "ReLU", "pooling"]
    assert [v.name for v in views] == ["conv8x3", "relu", "maxpool2", "conv16x3", "relu", "maxpool2"]
    side = x.shape[-1]
    assert [v.shape for v in views] == [
        (8, side, side), (8, side, side), (8, side // 2, side // 2),
        (16, side // 2, side // 2), (16, side // 2, side // 2), (16, side // 4, side // 4),
    ]
    assert all(tuple(v.maps.shape) == v.shape for v in views)
    assert all(float(v.maps.min()) >= 0 for v in views if v.kind == "ReLU")  # negatives became 0
    result = votes(shapes_model, x)
    assert sum(result.probabilities) == pytest.approx(1.0)
    assert len(result.scores) == len(shapes_model.class_names)


def test_the_page_shows_every_picture_in_order_and_every_link_exists(shapes_model, tmp_path):
    from swarmcnn.data import load_data

    files = write_stack(shapes_model, load_data("shapes").test.x[1], tmp_path, "an <X> picture")
    page = (tmp_path / "index.html").read_text()
    linked = re.findall(r'<img src="([^"]+)"', page)
    expected = [files["input"], *(layer["picture"] for layer in files["layers"]), files["match"], files["votes"]]
    assert linked == expected
    assert all((tmp_path / name).is_file() for name in linked)
    assert "&lt;X&gt;" in page and "<X>" not in page  # names are escaped
    assert page.count("<figcaption>") == len(linked)
    for layer in files["layers"]:  # each layer's picture is named in its caption with its output shape
        shape = "×".join(map(str, layer["shape"]))
        assert re.search(rf'src="{layer["picture"]}".*?<figcaption>Layer {layer["layer"] + 1}, {layer["name"]}\. '
                         rf'[^<]*{shape}', page)
    assert sum(files["votes_probabilities"].values()) == pytest.approx(1.0)


def test_explain_writes_the_stack_of_a_video_model(tmp_path, capsys):
    model = tmp_path / "video"
    spec = "conv4x3 relu maxpool2 fc8"
    assert main(["train", "moving-digits", "--arch", spec, "--epochs", "1", "--out", str(model), "--quiet"]) == 0
    out = tmp_path / "why"
    args = ["explain", str(model), "--data", "moving-digits", "--samples", "1", "--out", str(out), "--json"]
    assert main(args) == 0
    import json

    stack = json.loads(capsys.readouterr().out)["stack"]
    assert [layer["kind"] for layer in stack["layers"]] == ["convolution", "ReLU", "pooling"]
    assert len(stack["layers"][0]["shape"]) == 4  # (C, T, H, W): the pictures show the middle frame
    assert (out / "stack" / "index.html").is_file() and (out / "stack" / stack["match"]).is_file()
