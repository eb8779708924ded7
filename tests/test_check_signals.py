"""`swarmcnn check` on signals: shuffling the time steps with one fixed permutation tells a set whose order carries
the class (ramps up or down, at any place) from one whose order does not (the class is the mean level)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from swarmcnn.cli import main
from swarmcnn.data import from_arrays
from swarmcnn.data.builtin import bumps
from swarmcnn.locality import check, cnn_spec, permute_pixels

LENGTH = 32


def _ramps(count: int = 360) -> tuple[np.ndarray, np.ndarray]:
    """The built-in bumps, shorter: a slow rise and sudden drop, the reverse, or an even rise and fall, somewhere in
    the noise; the same values in every class, only their order differs."""
    arrays = bumps(count, LENGTH)
    return arrays.x, arrays.y


def _levels(count: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Noise whose mean tells the class: any order of the values says as much."""
    rng = np.random.default_rng(1)
    y = np.arange(count) % 2
    return rng.normal(0, 1, (count, LENGTH)) + 0.6 * y[:, None], y


def test_order_matters_for_ramps_up_or_down_at_any_place():
    result = check(from_arrays(*_ramps(), layout="NCL"), seeds=1, device="cpu", precision="fp32")
    assert result.signals and result.cnn_advised and result.time_matters
    assert result.accuracy_original[0] >= 0.6 and result.accuracy_permuted[0] <= 0.5, result  # chance: 0.33
    assert result.verdict.startswith("order matters: shuffling the time steps")


def test_order_does_not_matter_where_the_mean_level_tells_the_class():
    result = check(from_arrays(*_levels()), seeds=1, device="cpu", precision="fp32")
    assert result.accuracy_original[0] >= 0.7, result  # there is something to learn
    assert not result.cnn_advised and result.time_matters is False
    assert result.verdict.startswith("order does not matter") and "distribution" in result.verdict


def test_the_permutation_shuffles_time_steps_alike_in_every_channel_and_case():
    x = np.tile(np.arange(LENGTH, dtype=np.float64), (20, 3, 1)) + np.arange(3)[None, :, None] * 100
    data = from_arrays(x, np.arange(20) % 2, layout="NCL")
    order = torch.randperm(LENGTH, generator=torch.Generator().manual_seed(0))
    shuffled = permute_pixels(data, order).train.x
    assert torch.equal(shuffled, data.train.x[..., order])
    assert str(cnn_spec((3, LENGTH))).startswith("conv16x7 bn relu")


@pytest.mark.parametrize("seeds", ["1"])
def test_check_on_a_signal_file_says_it_in_the_table_and_json(tmp_path, capsys, seeds):
    x, y = _ramps()
    np.savez(tmp_path / "ramps.npz", x=x[:, 0], y=y)  # (N, L): one channel of signals
    assert main(["check", str(tmp_path / "ramps.npz"), "--seeds", seeds, "--threads", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["cnn_advised"] is True and report["time_matters"] is True
    assert "time steps" in report["verdict"]
