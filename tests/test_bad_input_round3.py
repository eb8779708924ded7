"""Hostile input, third round (issue 27): memory limits and allocator failures, exports that changed their input,
outputs that overwrite inputs, full disks, hangs, and results that were silently wrong.

The CLI cases are a table as in test_bad_input.py: (id, argv, setup, words), where argv may name "{model}" (a copy
of a good uint8 model), "{float}" (a copy of a model trained on float data) and "{tmp}" (the case's folder); each
ends in one line holding every word, exit code 2, and leaves both models byte for byte as they were.
"""

from __future__ import annotations

import errno
import json
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import swarmcnn
from swarmcnn import memory
from swarmcnn.checkpoint import MODEL_FILE, WEIGHTS_FILE, TrainedModel, load, write_model_files
from swarmcnn.cli import main
from swarmcnn.errors import CheckpointError, SwarmCNNError
from swarmcnn.search.evaluate import EvaluationConfig, evaluate_candidate
from swarmcnn.search.ray_executor import check_reachable, check_trial_resources
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization, evaluate

ARCH = "conv4x3 relu fc8"
TRAIN = ["train", "--arch", ARCH, "--epochs", "1", "--threads", "1", "--quiet"]
CPU_ALLOCATOR = "DefaultCPUAllocator: can't allocate memory: you tried to allocate 6912000000 bytes. Error code 12"


def _digits_arrays(digits):
    x = torch.cat([digits.train.x, digits.val.x, digits.test.x]).numpy()
    y = torch.cat([digits.train.y, digits.val.y, digits.test.y]).numpy()
    return x, y


@pytest.fixture(scope="module")
def models(tmp_path_factory, digits) -> dict[str, Path]:
    """A model of uint8 pictures (digits), one of float pictures in 0..1 (an .npz), and that .npz."""
    root = tmp_path_factory.mktemp("models")
    x, y = _digits_arrays(digits)
    np.savez(root / "float01.npz", x=x.astype(np.float32) / 255, y=y)
    assert main(["train", "digits", *TRAIN[1:], "--out", str(root / "uint8")]) == 0
    assert main(["train", str(root / "float01.npz"), *TRAIN[1:], "--out", str(root / "float")]) == 0
    return {"uint8": root / "uint8", "float": root / "float", "float01": root / "float01.npz"}


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as stop:  # argparse refuses an option by exiting
        return stop.code


def _one_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert "Traceback" not in captured.err + captured.out
    assert len(lines) == 1, captured.err
    return lines[0]


# -- setups ---------------------------------------------------------------------------------------------------------


def _a_file(name: str):
    def setup(tmp: Path) -> None:
        (tmp / name).write_text("already here")

    return setup


def _a_run_folder(tmp: Path) -> None:
    (tmp / "run").mkdir()
    (tmp / "run" / "journal.sqlite").write_bytes(b"")


def _old_leftover(tmp: Path) -> None:
    """A save of {tmp}/m killed between its renames: the previous model renamed away, by a process now gone."""
    shutil.copytree(tmp / "model", tmp / f".m.old.{_dead_pid()}")


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _explained_before(tmp: Path) -> None:
    (tmp / "why").mkdir()
    (tmp / "why" / "features.png").write_bytes(b"an earlier explain")


CASES = [
    # 3. a model trained on floats exports floats; uint8 would round its inputs, and is refused with the reason
    ("export-float-model-as-uint8", ["export", "{float}", "--out", "{tmp}/m.onnx", "--input-dtype", "uint8"], None,
     ["--input-dtype uint8", "float32", "round"]),
    # 5., 7. an --out inside what the command reads; an existing file replaced only with --force
    ("export-into-its-model", ["export", "{model}", "--format", "torchscript", "--out", "{model}/weights.safetensors",
                               "--force"], None, ["inside the model directory"]),
    ("report-into-its-journal", ["report", "{tmp}/run", "--out", "{tmp}/run/journal.sqlite"], _a_run_folder,
     ["inside the run folder"]),
    ("report-into-its-best-model", ["report", "{tmp}/run", "--out", "{tmp}/run/best/model.json", "--force"],
     _a_run_folder, ["inside the run folder"]),
    ("report-over-a-file", ["report", "{tmp}/run", "--out", "{tmp}/old.html"], _a_file("old.html"),
     ["already exists", "--force"]),
    ("explain-into-its-model", ["explain", "{model}", "--data", "digits", "--out", "{model}/why"], None,
     ["inside the model directory"]),
    ("explain-over-pictures", ["explain", "{model}", "--data", "digits", "--samples", "1", "--out", "{tmp}/why"],
     _explained_before, ["features.png", "--force"]),
    ("train-into-its-data-folder", ["train", "{tmp}", *TRAIN[1:], "--out", "{tmp}/m"], None,
     ["inside the data source"]),
    ("search-into-its-data-folder", ["search", "{tmp}", "--out", "{tmp}/run", "--quiet"], None,
     ["inside the data source"]),
    # 8. hangs: rungs without end
    ("rungs-fifty", ["search", "digits", "--rungs", "50", "--out", "{tmp}/run", "--quiet"], None,
     ["--rungs 50", "epochs of the training split", "at most --rungs"]),
    # 9. counts that crash PyTorch or the machine
    ("threads-100000", ["train", "digits", *TRAIN[1:], "--threads", "100000", "--out", "{tmp}/m"], None,
     ["--threads", "100000", "per core"]),
    ("workers-100000", ["search", "digits", "--workers", "100000", "--out", "{tmp}/run"], None,
     ["--workers", "per core"]),
    # 10. silently wrong results
    ("evaluate-empty-val", ["evaluate", "{tmp}/v0", "digits", "--split", "val"], None,
     ["the val split of 'digits' is empty"]),
    ("train-over-a-restorable-model", ["train", "digits", *TRAIN[1:], "--out", "{tmp}/m"], _old_leftover,
     ["killed between its two renames", "--force"]),
]


@pytest.mark.parametrize("case_id, argv, setup, words", [pytest.param(*c, id=c[0]) for c in CASES])
def test_round3_bad_input_ends_in_one_line_and_exit_2_leaving_the_models_intact(
    case_id, argv, setup, words, models, tmp_path, capsys
):
    model, floats = tmp_path / "model", tmp_path / "float"
    shutil.copytree(models["uint8"], model)
    shutil.copytree(models["float"], floats)
    if case_id == "evaluate-empty-val":
        assert main(["train", "digits", *TRAIN[1:], "--val-fraction", "0", "--out", str(tmp_path / "v0")]) == 0
    if setup is not None:
        setup(tmp_path)
    before = {p: p.read_bytes() for folder in (model, floats) for p in folder.iterdir()}
    filled = [a.replace("{model}", str(model)).replace("{float}", str(floats)).replace("{tmp}", str(tmp_path))
              for a in argv]
    capsys.readouterr()
    assert _run(filled) == 2
    line = _one_line(capsys)
    for word in words:
        assert word in line, line
    assert {p: p.read_bytes() for folder in (model, floats) for p in folder.iterdir()} == before


# -- 3. export follows the data the model was trained on -----------------------------------------------------------


def test_a_float_trained_model_records_float32_and_exports_float_inputs_checked_on_floats(models, tmp_path, capsys):
    assert load(models["float"]).input_dtype == "float32" and load(models["uint8"]).input_dtype == "uint8"
    out = tmp_path / "m.onnx"
    assert main(["export", str(models["float"]), "--out", str(out), "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["input_dtype"] == "float32" and exported["max_difference"] <= 1e-4
    import onnxruntime

    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(float)"
    x = np.load(models["float01"])["x"][:8]  # the values the model was trained on, 0..1
    expected = load(models["float"]).predict_proba(x).numpy()
    assert np.abs(session.run(None, {"pixels": x})[0] - expected).max() < 1e-4


def test_a_model_json_without_input_dtype_is_a_uint8_model(models, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(models["uint8"], old)
    description = json.loads((old / MODEL_FILE).read_text())
    del description["input_dtype"]
    (old / MODEL_FILE).write_text(json.dumps(description))
    assert load(old).input_dtype == "uint8"


# -- 4. every channel of an array is kept ----------------------------------------------------------------------------


@pytest.mark.parametrize("channels, layout", [(4, None), (2, "NHWC"), (7, "NHWC"), (5, "NCHW")])
def test_arrays_keep_every_channel(channels, layout):
    rng = np.random.default_rng(0)
    shape = (40, 6, 6, channels) if layout != "NCHW" else (40, channels, 6, 6)
    x = rng.integers(0, 255, shape, dtype=np.uint8)
    data = swarmcnn.from_arrays(x, np.arange(40) % 2, layout=layout)
    assert data.input_shape == (channels, 6, 6)
    stored = torch.cat([data.train.x, data.val.x, data.test.x])
    assert int(stored[:, -1].sum()) > 0  # the last channel is there, not dropped


def test_an_npz_of_four_channels_trains_a_four_channel_model(tmp_path):
    x = np.random.default_rng(1).integers(0, 255, (40, 8, 8, 4), dtype=np.uint8)
    np.savez(tmp_path / "nir.npz", x=x, y=np.arange(40) % 2)
    assert main(["train", str(tmp_path / "nir.npz"), *TRAIN[1:], "--out", str(tmp_path / "m")]) == 0
    assert load(tmp_path / "m").input_shape == (4, 8, 8)


# -- 2. memory: what this process may have, and an allocator's failure in one line ----------------------------------


def test_the_address_space_limit_lowers_what_is_available():
    assert memory.address_space_left(limit=6 * 10**9, mapped=2 * 10**9) == 4 * 10**9
    assert memory.address_space_left(limit=10**9, mapped=5 * 10**9) == 1  # over it already: nothing to allocate
    assert memory.cuda_free_bytes("cpu") is None and memory.cuda_free_bytes(None) is None


def test_a_network_too_large_for_rlimit_as_is_refused_before_training(tmp_path):
    limit = 6_000_000_000

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    done = subprocess.run(
        [sys.executable, "-m", "swarmcnn", "train", "digits", "--arch", "conv100000x3", "--epochs", "1", "--quiet",
         "--out", str(tmp_path / "m")],
        preexec_fn=limited, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "needs" in done.stderr and "of memory but only" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "message, size",
    [(CPU_ALLOCATOR, "6.9 GB"), ("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total", "2.1 GB"),
     ("Unable to allocate 6.44 GiB for an array with shape (1,)", "6.9 GB")],
)
def test_allocator_messages_give_the_size_asked_for(message, size):
    failure = memory.allocation_failure(RuntimeError(message), "training")
    assert failure is not None and f"out of memory while training: an allocation of {size} failed" in str(failure)
    assert memory.allocation_failure(RuntimeError("mat1 and mat2 shapes cannot be multiplied")) is None


class RefusesMemory(nn.Module):
    """A network whose forward fails as PyTorch's allocator does (the real message), allocating nothing."""

    def __init__(self, error: type[BaseException] = RuntimeError) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 10)
        self.error = error

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise self.error(CPU_ALLOCATOR)


@pytest.mark.parametrize("error", [RuntimeError, MemoryError, torch.OutOfMemoryError])
def test_an_allocation_failing_in_predict_evaluate_or_explain_is_one_line_with_its_size(digits, error):
    from swarmcnn.explain import explain

    normalization = Normalization.of(digits.train.x)
    trained = TrainedModel(RefusesMemory(error), Spec.parse("fc10"), (1, 8, 8), digits.class_names, normalization)
    with pytest.raises(SwarmCNNError, match="out of memory while predicting: an allocation of 6.9 GB failed"):
        trained.predict_proba(digits.test.x[:4])
    with pytest.raises(SwarmCNNError, match="an allocation of 6.9 GB failed"):
        from swarmcnn.memory import allocating

        with allocating("evaluating"):
            evaluate(trained.module, digits.test, normalization)
    pytest.importorskip("captum")
    with pytest.raises(SwarmCNNError, match="out of memory while explaining"):
        explain(trained, digits.test.x[:2])


def test_a_candidate_whose_allocation_fails_is_out_of_memory_and_the_search_goes_on(digits):
    def build(spec, input_shape, classes, seed):
        return RefusesMemory()

    record = evaluate_candidate(Spec.parse("conv8x3 relu"), digits, Normalization.of(digits.train.x),
                                EvaluationConfig(epochs=1, train_fraction=0.1), build=build)
    assert record.status == "out-of-memory" and "6.9 GB" in record.reason and record.score == -np.inf


# -- 6. a full disk: one line naming the file, nothing already saved removed ---------------------------------------


@pytest.mark.parametrize("library", ["oserror", "safetensors"])
def test_a_save_on_a_full_disk_says_so_and_keeps_the_model_already_there(models, tmp_path, library):
    from safetensors import SafetensorError

    target = tmp_path / "m"
    shutil.copytree(models["uint8"], target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def full(folder: Path, state: dict, description: str) -> None:
        (folder / WEIGHTS_FILE).write_bytes(b"half")
        if library == "oserror":
            raise OSError(errno.ENOSPC, "No space left on device", str(folder / WEIGHTS_FILE))
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    with pytest.raises(CheckpointError, match="no space left on device") as refused:
        load(target).save(target, write=full)
    assert str(target) in str(refused.value) and "unchanged" in str(refused.value)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no staging folder left


def test_model_files_written_by_the_default_writer_load_back(models, tmp_path):
    trained = load(models["uint8"])
    trained.save(tmp_path / "copy", write=write_model_files)
    assert torch.equal(load(tmp_path / "copy").module[-1].weight, trained.module[-1].weight)


# -- 8. Ray: an address that leads nowhere, and trials larger than the cluster --------------------------------------


def test_an_address_where_nothing_answers_is_refused_in_bounded_time():
    def unknown(address, timeout):
        import socket

        raise socket.gaierror(-2, "Name or service not known")

    def silent(address, timeout):
        raise TimeoutError("timed out")

    with pytest.raises(SwarmCNNError, match="no host 'bogus.invalid' is known"):
        check_reachable("bogus.invalid:1234", connect=unknown)
    with pytest.raises(SwarmCNNError, match=r"nothing answered at head:10001 in 10 s"):
        check_reachable("ray://head", connect=silent)
    with pytest.raises(SwarmCNNError, match="not host:port"):
        check_reachable("head:port", connect=silent)
    check_reachable("auto", connect=silent)  # no address to try: Ray finds the cluster
    with pytest.raises(SwarmCNNError, match="Connection refused"):
        check_reachable("127.0.0.1:1", timeout=2)  # a real closed port on this machine


def test_trials_larger_than_the_cluster_are_refused_with_the_numbers():
    with pytest.raises(SwarmCNNError, match="--cpus-per-trial 64 is more than the 2 CPUs"):
        check_trial_resources(64, 0, {"CPU": 2.0})
    with pytest.raises(SwarmCNNError, match="--gpus-per-trial 1 is more than the 0 GPUs"):
        check_trial_resources(1, 1, {"CPU": 2.0})
    check_trial_resources(2, 0.5, {"CPU": 2.0, "GPU": 1.0})


# -- 9., 10. NumPy in, a class without images, data changed, a save killed between renames ---------------------------


def test_predict_proba_takes_numpy_arrays_as_the_readme_shows(models):
    trained = swarmcnn.load(models["uint8"])
    probabilities = trained.predict_proba(np.zeros((2, 1, 8, 8), np.uint8))
    assert probabilities.shape == (2, 10) and torch.allclose(probabilities.sum(1), torch.ones(2))
    assert torch.equal(probabilities, trained.predict_proba(torch.zeros((2, 1, 8, 8), dtype=torch.uint8)))
    with pytest.raises(SwarmCNNError, match="dtype"):
        trained.predict_proba(np.array([["a"]]))


def test_a_class_absent_from_the_test_split_has_no_accuracy_not_zero(tmp_path, capsys):
    from PIL import Image

    for split, classes in (("train", "abc"), ("test", "ab")):
        for name in classes:
            (tmp_path / "d" / split / name).mkdir(parents=True)
            for i in range(6):
                Image.fromarray(np.full((8, 8), 30 * i + 5 * "abc".index(name), np.uint8)).save(
                    tmp_path / "d" / split / name / f"{i}.png")
    assert main(["train", str(tmp_path / "d"), *TRAIN[1:], "--out", str(tmp_path / "m")]) == 0
    assert main(["evaluate", str(tmp_path / "m"), str(tmp_path / "d"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["per_class_accuracy"]["c"] is None
    assert main(["evaluate", str(tmp_path / "m"), str(tmp_path / "d")]) == 0
    assert "no images" in capsys.readouterr().out


def test_evaluate_on_data_changed_since_training_warns(models, tmp_path, capsys):
    source = tmp_path / "f.npz"
    shutil.copy(models["float01"], source)
    assert main(["train", str(source), *TRAIN[1:], "--out", str(tmp_path / "m")]) == 0
    assert main(["evaluate", str(tmp_path / "m"), str(source)]) == 0
    assert "warning" not in capsys.readouterr().err
    arrays = dict(np.load(source))
    arrays["y"][[0, 1]] = arrays["y"][[1, 0]] if arrays["y"][0] != arrays["y"][1] else (arrays["y"][0] + 1) % 10
    np.savez(source, **arrays)
    assert main(["evaluate", str(tmp_path / "m"), str(source)]) == 0
    assert "is not the data the model was trained on" in capsys.readouterr().err


def test_a_model_renamed_away_by_a_killed_save_is_found_by_predict_and_load(models, tmp_path, capsys):
    shutil.copytree(models["uint8"], tmp_path / f".m.old.{_dead_pid()}")
    from PIL import Image

    Image.fromarray(np.full((8, 8), 128, np.uint8), "L").save(tmp_path / "x.png")
    assert load(tmp_path / "m").spec == load(models["uint8"]).spec
    assert main(["predict", str(tmp_path / "m"), str(tmp_path / "x.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["label"] in load(models["uint8"]).class_names
    assert not (tmp_path / "m").exists()  # a reader changes nothing; the next save puts it back
    assert main(["train", "digits", *TRAIN[1:], "--seed", "1", "--force", "--out", str(tmp_path / "m")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "x.png"]
