"""Several trainings of one network as one model: the math, the rule, the final training, and every command's
view of it (saved and loaded, exported, explained, drawn layer by layer)."""

import copy
import json
import math

import pytest
import torch
from torch import nn

from swarmcnn.checkpoint import MODEL_FILE, load
from swarmcnn.ensemble import MAX_MEMBERS, MEMBER_EPOCHS, MEMBER_STEPS, Ensemble, first_member, members_for, members_of
from swarmcnn.errors import CheckpointError
from swarmcnn.search.budget import final_members
from swarmcnn.search.final import final_summary, train_final
from swarmcnn.search.journal import EvaluationRecord
from swarmcnn.search.journal_checks import checked_final
from swarmcnn.train import TrainConfig, batches_per_epoch, evaluate

SMALL = "conv8x3 relu maxpool2 fc32 relu"


@pytest.fixture(scope="module")
def pair(digits):
    """The final training of SMALL on digits as two members, and as one."""
    config = TrainConfig(epochs=2, seed=3)
    return train_final(SMALL, digits, config, members=2), train_final(SMALL, digits, config)


def test_the_ensemble_scores_are_the_log_of_its_members_mean_probability():
    torch.manual_seed(0)
    members = [nn.Sequential(nn.Flatten(), nn.Linear(6, 4)) for _ in range(3)]
    x = torch.randn(5, 2, 3)
    mean = torch.stack([m(x).softmax(1) for m in members]).mean(0)
    scores = Ensemble(members)(x)
    assert torch.allclose(scores.softmax(1), mean, atol=1e-6) and torch.allclose(scores.exp(), mean, atol=1e-6)
    assert members_of(Ensemble(members)) == members and members_of(members[0]) == [members[0]]
    with pytest.raises(ValueError, match="two members"):
        Ensemble(members[:1])


def test_each_member_gets_the_fewest_steps_and_epochs_up_to_the_most_members():
    assert members_for(2 * MEMBER_STEPS, 1) == 2 and members_for(2 * MEMBER_STEPS - 1, 1) == 1
    assert members_for(3 * MEMBER_EPOCHS, MEMBER_STEPS) == 3  # steps to spare: the epochs decide
    assert members_for(3 * MEMBER_EPOCHS - 1, MEMBER_STEPS) == 2
    assert members_for(100 * MEMBER_STEPS, 1) == MAX_MEMBERS


def test_the_final_training_counts_its_steps_on_train_plus_val(digits):
    steps = batches_per_epoch(len(digits.train) + len(digits.val))  # 1,527 images: batches of 32
    assert steps == math.ceil((len(digits.train) + len(digits.val)) / 32)
    epochs = max(3 * MEMBER_EPOCHS, math.ceil(3 * MEMBER_STEPS / steps))
    assert final_members(epochs, 90.0, digits) == (3, epochs // 3, 30.0)
    assert final_members(epochs, 90.0, digits, batch_size=4 * 32)[0] == 1  # a quarter of the steps
    assert final_members(epochs, None, digits) == (1, epochs, None)  # the user's epochs: one training


def test_the_first_member_is_the_plain_training_and_the_test_is_the_averages(pair, digits):
    ensemble, single = pair
    assert isinstance(ensemble.trained.module, Ensemble) and ensemble.trained.members == 2
    first = first_member(ensemble.trained.module).state_dict()
    assert all(torch.equal(first[k], v) for k, v in single.trained.module.state_dict().items())
    test = evaluate(ensemble.trained.module, digits.test, ensemble.trained.normalization)
    assert ensemble.test.accuracy == test.accuracy == ensemble.trained.metrics["test_accuracy"]
    members = ensemble.trained.metrics["member_test_accuracies"]
    assert len(members) == 2 and members[0] == single.test.accuracy
    assert len(ensemble.results) == 2 and len(single.results) == 1


def test_the_journal_keeps_the_members_and_their_time(pair):
    ensemble, _ = pair
    best = EvaluationRecord(SMALL, "ok", "", 0.5, 0.5, 1.0, 100, 1000, 1, 1.0)
    summary = checked_final(final_summary(best, ensemble, 2, None, {"found_by": "design"}))
    assert summary["final_members"] == 2
    assert summary["final_seconds"] == pytest.approx(sum(r.seconds for r in ensemble.results))


def test_an_ensemble_saves_and_loads_to_the_same_probabilities(pair, digits, tmp_path):
    trained = pair[0].trained
    trained.save(tmp_path / "model")
    described = json.loads((tmp_path / "model" / MODEL_FILE).read_text())
    assert described["members"] == 2
    assert described["parameters"] == 2 * pair[1].trained.spec.num_params(trained.input_shape, 10)
    again = load(tmp_path / "model")
    assert isinstance(again.module, Ensemble)
    assert torch.equal(again.predict_proba(digits.test.x), trained.predict_proba(digits.test.x))


@pytest.mark.parametrize("members", [0, 6, 2.5, True, "2"])
def test_a_model_json_with_a_wrong_count_of_members_is_refused_naming_the_field(pair, tmp_path, members):
    pair[0].trained.save(tmp_path / "model")
    path = tmp_path / "model" / MODEL_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), "members": members}))
    with pytest.raises(CheckpointError, match="members"):
        load(tmp_path / "model")


def test_a_model_json_that_claims_one_member_for_two_members_weights_is_refused(pair, tmp_path):
    pair[0].trained.save(tmp_path / "model")
    path = tmp_path / "model" / MODEL_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), "members": 1}))
    with pytest.raises(CheckpointError, match="do not match"):
        load(tmp_path / "model")


@pytest.mark.parametrize("format", ["torchscript", "onnx"])
def test_an_ensemble_exports_equal_to_pytorch(pair, digits, tmp_path, format):
    from swarmcnn.export import export_model

    if format == "onnx":
        pytest.importorskip("onnxruntime")
    exported = export_model(pair[0].trained, format, tmp_path / f"model.{format}", digits.test.x[:32])
    assert exported.max_difference <= 1e-4
    if format == "torchscript":
        from swarmcnn.export import torchscript_metadata

        assert torchscript_metadata(exported.path)["members"] == "2"


def test_grad_cam_of_an_ensemble_is_its_members_mean(pair, digits):
    pytest.importorskip("captum")
    from swarmcnn.explain import explain

    single = pair[1].trained
    twins = copy.copy(single)
    twins.module = Ensemble([single.module, copy.deepcopy(single.module)])
    x = digits.test.x[:3]
    for a, b in zip(explain(single, x, "gradcam"), explain(twins, x, "gradcam")):  # two of one: the one's map
        assert torch.allclose(a.heatmap, b.heatmap, atol=1e-5) and a.label == b.label
    for method in ("gradcam", "integrated-gradients", "occlusion"):
        explained = explain(pair[0].trained, x, method)
        assert len(explained) == 3 and explained[0].heatmap.shape == x.shape[2:]  # (1, 8, 8): a map of 8x8


def test_the_stack_of_an_ensemble_shows_its_first_member_and_says_so(pair, digits, tmp_path):
    from swarmcnn.stack import write_stack

    files = write_stack(pair[0].trained, digits.test.x[0], tmp_path, "digit 0")
    page = (tmp_path / files["index"]).read_text()
    assert "averages the votes of 2 trainings" in page and all((tmp_path / f["picture"]).exists()
                                                                for f in files["layers"])


def test_train_members_saves_one_model_of_the_trainings_averaged(tmp_path, capsys):
    from swarmcnn.cli import main

    out = tmp_path / "model"
    assert main(["train", "digits", "--arch", SMALL, "--epochs", "1", "--members", "2", "--out", str(out)]) == 0
    assert "2 trainings averaged" in " ".join(capsys.readouterr().out.split())  # as rich wraps it
    trained = load(out)
    assert trained.members == 2 and len(trained.metrics["member_test_accuracies"]) == 2


def test_train_refuses_more_members_than_a_model_holds_in_one_line(tmp_path, capsys):
    from swarmcnn.cli import main

    code = main(["train", "digits", "--arch", SMALL, "--members", str(MAX_MEMBERS + 1), "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2 and f"--members {MAX_MEMBERS + 1}" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()


def test_the_classifier_averages_its_members_and_refuses_a_count_a_model_cannot_hold(digits):
    from swarmcnn import SwarmCNNClassifier
    from swarmcnn.errors import SwarmCNNError

    x, y = digits.train.x[:300, 0].numpy(), digits.train.y[:300].numpy()  # (N, 8, 8) pictures
    classifier = SwarmCNNClassifier(SMALL, epochs=1, members=2, device="cpu").fit(x, y)
    assert classifier.model_.members == 2 and classifier.predict_proba(x).shape == (300, 10)
    with pytest.raises(SwarmCNNError, match=r"members=2\.5"):
        SwarmCNNClassifier(SMALL, epochs=1, members=2.5).fit(x, y)
    with pytest.raises(SwarmCNNError, match="a search .* decides"):  # refused before any search starts
        SwarmCNNClassifier(members=3, evaluations=1).fit(x, y)


def test_train_members_stops_at_the_first_training_that_did_not_learn(digits):
    from swarmcnn.package import learned, train_members

    _, results, _ = train_members(SMALL, digits, TrainConfig(epochs=2, lr=1e9, seed=0), 3)
    assert len(results) == 1 and not learned(results[0]) and results[0].status == "diverged"
