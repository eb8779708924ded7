"""`check`: a CNN is advised where scrambling pixel positions costs it, and time matters where frame order does."""

import json

import numpy as np
import pytest
import torch

import swarmcnn
from swarmcnn.cli import main
from swarmcnn.data import from_arrays, load_data
from swarmcnn.locality import CheckResult, check, permute_pixels, shuffle_frames


def test_handwritten_digits_are_a_job_for_a_cnn(digits):
    result = check(digits)
    assert result.cnn_advised, result.to_dict()
    assert result.time_matters is None


def test_a_table_laid_out_as_a_picture_is_not():
    """scikit-learn's breast-cancer measurements (30 columns) padded into a 6x6 square: neighbours mean nothing."""
    from sklearn.datasets import load_breast_cancer

    table = load_breast_cancer()
    scaled = (table.data - table.data.min(0)) / np.ptp(table.data, axis=0)
    pictures = np.pad(scaled, ((0, 0), (0, 6))).reshape(-1, 6, 6).astype(np.float32)
    result = check(from_arrays(pictures, table.target))
    assert not result.cnn_advised, result.to_dict()
    assert "not advised" in result.verdict and "fully connected" in result.verdict


def test_clips_whose_class_is_their_motion_need_their_frame_order():
    result = check(load_data("moving-digits"), seeds=1)  # one seed: 100% against 53% on shuffled frames
    assert result.time_matters, result.to_dict()


def test_pixels_are_scrambled_by_one_permutation_for_every_sample_and_frame(digits):
    permutation = torch.randperm(64, generator=torch.Generator().manual_seed(0))
    scrambled = permute_pixels(digits, permutation)
    flat, moved = digits.test.x.reshape(len(digits.test), -1), scrambled.test.x.reshape(len(digits.test), -1)
    assert torch.equal(moved, flat[:, permutation])  # nothing lost, the same order for all
    clips = load_data("moving-digits")
    frames = clips.test.x.shape[2]
    shuffled = shuffle_frames(clips, torch.Generator().manual_seed(0))
    for clip, mixed in zip(clips.test.x[:5], shuffled.test.x[:5]):  # each clip: its own frames, in another order
        originals = {bytes(frame.numpy()) for frame in clip.unbind(1)}
        assert {bytes(frame.numpy()) for frame in mixed.unbind(1)} == originals
        assert mixed.shape[1] == frames


def test_the_cli_prints_the_verdict_as_json(capsys):
    assert main(["check", "digits", "--seeds", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("cnn_advised", "accuracy_original", "accuracy_permuted", "accuracy_mlp", "verdict", "noise"):
        assert key in report
    assert isinstance(report["cnn_advised"], bool) and report["time_matters"] is None


@pytest.mark.parametrize("argv", [["check", "no-such-folder"], ["check", "digits", "--seeds", "0"]])
def test_bad_input_is_one_line(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse refuses an option value itself
        code = stop.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and err and "\n" not in err and "Traceback" not in err


def test_the_public_function_stays_the_function_once_its_module_is_imported():
    # a submodule named check would replace swarmcnn.check by itself as soon as anything imported it
    assert swarmcnn.check is check and swarmcnn.CheckResult is CheckResult
