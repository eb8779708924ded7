import json

import pytest
import torch
from safetensors.torch import load_file

import swarmcnn
from swarmcnn.checkpoint import MODEL_FILE, WEIGHTS_FILE, TrainedModel, load
from swarmcnn.errors import CheckpointError
from swarmcnn.spec import parse
from swarmcnn.train import Normalization, TrainConfig, build_seeded, fit


@pytest.fixture(scope="module")
def trained(digits):
    spec = parse("conv8x3 bn relu maxpool2 fc16 bn relu dropout0.1")
    module = build_seeded(spec, digits.input_shape, 10, 0)
    normalization = Normalization.of(digits.train.x)
    fit(module, digits, normalization, TrainConfig(epochs=2))
    return TrainedModel(module, spec, digits.input_shape, digits.class_names, normalization, metrics={"x": 1.0})


def test_loaded_model_predicts_bit_for_bit_the_same(trained, digits, tmp_path):
    trained.save(tmp_path / "m")
    loaded = swarmcnn.load(tmp_path / "m")
    assert torch.equal(trained.predict_proba(digits.test.x), loaded.predict_proba(digits.test.x))
    assert loaded.spec == trained.spec and loaded.class_names == trained.class_names


def test_model_directory_holds_plain_json_and_safetensors(trained, tmp_path):
    trained.save(tmp_path / "m")
    description = json.loads((tmp_path / "m" / MODEL_FILE).read_text())
    assert description["spec"] == str(trained.spec)
    assert description["input_shape"] == [1, 8, 8]
    assert description["class_names"] == list(trained.class_names)
    assert set(description["normalization"]) == {"mean", "std"}
    assert description["versions"]["torch"] == torch.__version__
    assert description["parameters"] == sum(p.numel() for p in trained.module.parameters())
    tensors = load_file(str(tmp_path / "m" / WEIGHTS_FILE))  # safetensors holds raw tensors only
    assert set(tensors) == set(trained.module.state_dict())


def test_loading_a_missing_directory_names_it(tmp_path):
    with pytest.raises(CheckpointError, match="nowhere"):
        load(tmp_path / "nowhere")


def test_loading_without_weights_names_the_missing_file(trained, tmp_path):
    trained.save(tmp_path / "m")
    (tmp_path / "m" / WEIGHTS_FILE).unlink()
    with pytest.raises(CheckpointError, match=WEIGHTS_FILE):
        load(tmp_path / "m")


def test_garbled_model_json_is_refused(trained, tmp_path):
    trained.save(tmp_path / "m")
    (tmp_path / "m" / MODEL_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load(tmp_path / "m")


def test_truncated_weights_are_refused(trained, tmp_path):
    trained.save(tmp_path / "m")
    weights = tmp_path / "m" / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="cannot load weights"):
        load(tmp_path / "m")


def test_weights_of_another_architecture_are_refused(trained, tmp_path):
    trained.save(tmp_path / "m")
    description = json.loads((tmp_path / "m" / MODEL_FILE).read_text())
    description["layers"] = parse("conv4x3 relu fc8").to_list()
    (tmp_path / "m" / MODEL_FILE).write_text(json.dumps(description))
    with pytest.raises(CheckpointError, match="cannot load weights"):
        load(tmp_path / "m")
