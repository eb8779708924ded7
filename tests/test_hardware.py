"""Device and precision: bf16 trains as well as fp32, saves fp32, and bad devices are one clear line."""

import json

import pytest
import torch

from swarmcnn import load
from swarmcnn.cli import main
from swarmcnn.errors import SwarmCNNError
from swarmcnn.hardware import Hardware, fast_bf16, resolve, resolve_device, resolve_precision
from swarmcnn.spec import parse
from swarmcnn.train import Normalization, TrainConfig, build_seeded, evaluate, fit

REFERENCE = "conv16x3 bn relu maxpool2 conv32x3 bn relu fc64 relu"
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")


def _test_accuracy(digits, precision: str) -> float:
    model = build_seeded(parse(REFERENCE), digits.input_shape, len(digits.class_names), 0)
    normalization = Normalization.of(digits.train.x)
    result = fit(model, digits, normalization, TrainConfig(epochs=8, precision=precision))
    assert result.precision == precision
    return evaluate(model, digits.test, normalization).accuracy


def test_bf16_training_reaches_the_fp32_accuracy_within_one_point(digits):
    fp32, bf16 = _test_accuracy(digits, "fp32"), _test_accuracy(digits, "bf16")
    assert fp32 > 0.95
    assert bf16 >= fp32 - 0.01


def test_a_model_trained_in_bf16_saves_fp32_weights_that_predict_the_same_classes_in_fp32(tmp_path, digits):
    out = tmp_path / "model"
    args = ["train", "digits", "--arch", REFERENCE, "--epochs", "3", "--precision", "bf16", "--out", str(out)]
    assert main([*args, "--quiet"]) == 0
    recorded = json.loads((out / "model.json").read_text())["training"]
    assert recorded["precision"] == "bf16" and recorded["threads"] >= 1
    assert recorded["device"] == str(resolve_device("auto"))
    trained = load(out)
    assert all(p.dtype == torch.float32 for p in trained.module.state_dict().values() if p.is_floating_point())
    in_fp32 = trained.predict_proba(digits.test.x).argmax(1)
    in_bf16 = trained.predict_proba(digits.test.x, resolve("cpu", "bf16")).argmax(1)
    assert (in_fp32 == in_bf16).float().mean() >= 0.99  # bf16 rounding may flip a near tie, no more


def test_auto_takes_bf16_only_where_the_cpu_has_bf16_units():
    cpu = torch.device("cpu")
    assert fast_bf16(cpu, cpu_flags=frozenset({"avx2", "avx512_bf16"}))
    assert fast_bf16(cpu, cpu_flags=frozenset({"amx_bf16"}))
    assert not fast_bf16(cpu, cpu_flags=frozenset({"avx2", "avx512f"}))
    assert resolve_precision("auto", cpu) == ("bf16" if fast_bf16(cpu) else "fp32")
    assert resolve_precision("FP32", cpu) == "fp32"


def test_bf16_runs_on_any_cpu_through_autocast(digits):
    """Asked for explicitly, bf16 runs whatever the CPU (emulated where it has no bf16 units)."""
    model = build_seeded(parse("conv4x3 relu fc8"), digits.input_shape, len(digits.class_names), 0)
    hardware = Hardware(torch.device("cpu"), "bf16")
    config = TrainConfig(epochs=1, precision="bf16", device="cpu")
    result = fit(model, digits, Normalization.of(digits.train.x), config)
    assert result.ok
    with hardware.autocast():
        assert model(torch.zeros(2, *digits.input_shape)).dtype == torch.bfloat16


@pytest.mark.parametrize("name", ["banana", "cuda:x", "cpu:1", "tpu"])
def test_a_device_name_that_is_not_one_is_refused_naming_it(name):
    with pytest.raises(SwarmCNNError, match=f"'{name}'"):
        resolve_device(name)


def test_a_precision_that_is_not_one_is_refused_with_the_choices():
    with pytest.raises(SwarmCNNError, match="'fp16'.*auto, fp32, bf16"):
        resolve_precision("fp16", torch.device("cpu"))


@NO_CUDA
@pytest.mark.parametrize("device", ["cuda", "cuda:7"])
def test_cuda_without_cuda_is_one_clear_line_before_any_work(tmp_path, capsys, device):
    code = main(["train", "digits", "--arch", "conv4x3 relu fc8", "--device", device, "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "no CUDA GPU" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_auto_is_cuda_where_there_is_one():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_a_search_keeps_the_device_and_precision_it_started_with(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["search", "digits", "--evaluations", "2", "--candidate-epochs", "1", "--no-designs", "--rungs", "0"]
    assert main([*args, "--final-epochs", "1", "--precision", "fp32", "--out", str(run), "--quiet"]) == 0
    from swarmcnn.search.journal import Journal

    settings = Journal.open(run).get("settings")["evaluation"]
    assert settings["device"] == str(resolve_device("auto")) and settings["precision"] == "fp32"  # kept as begun
    trained = json.loads((run / "best" / "model.json").read_text())["training"]
    assert trained["precision"] == "fp32"
    assert main(["search", "--resume", str(run), "--quiet"]) == 0  # the defaults of the options do not trip it
    assert main(["search", "--resume", str(run), "--precision", "bf16", "--quiet"]) == 2
    assert "--precision" in capsys.readouterr().err
