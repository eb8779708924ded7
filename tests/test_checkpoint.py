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
    assert set(description["normalization"]) == {"mean", "std", "series"} and not description["normalization"]["series"]
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


def test_loading_a_model_imports_no_training_or_data_code(trained, tmp_path):
    import subprocess
    import sys

    trained.save(tmp_path / "m")
    code = (
        "import sys; from swarmcnn.checkpoint import load; load(sys.argv[1]).predict_proba(__import__('torch')"
        ".zeros(2, 1, 8, 8)); print(sorted(m for m in sys.modules if m.split('.')[1:2] in (['train'], ['data'], "
        "['search'], ['package']) and m.startswith('swarmcnn')))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_model_as_bytes_comes_back_predicting_the_same_and_checked_as_a_directory_is(trained, digits):
    from swarmcnn.checkpoint import from_bytes

    description, weights = trained.to_bytes()
    back = from_bytes(description, weights, "test model")
    assert torch.equal(back.predict_proba(digits.test.x), trained.predict_proba(digits.test.x))
    assert back.metrics == trained.metrics and back.normalization == trained.normalization
    with pytest.raises(CheckpointError, match="cannot load the weights of test model"):
        from_bytes(description, weights[:-10], "test model")
    fewer = json.loads(description)
    fewer["class_names"] = fewer["class_names"][:-1]
    with pytest.raises(CheckpointError, match="test model.*do not match|test model.*parameters"):
        from_bytes(json.dumps(fewer), weights, "test model")
    with pytest.raises(CheckpointError, match="test model: its description is not valid JSON"):
        from_bytes("{", weights, "test model")
