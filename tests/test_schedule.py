"""The learning rate's shape over a training, and the lookahead average."""

import pytest
import torch

from swarmcnn.data import load_data
from swarmcnn.errors import SwarmCNNError
from swarmcnn.model import create_model
from swarmcnn.schedule import SCHEDULES, WARMUP_START
from swarmcnn.steps import Lookahead
from swarmcnn.train import Normalization, TrainConfig, fit


@pytest.mark.parametrize("name", SCHEDULES)
def test_every_schedule_warms_up_peaks_and_ends_at_zero(name):
    rate = SCHEDULES[name]
    assert rate(0.0, 0.2) == pytest.approx(WARMUP_START)
    assert rate(0.2, 0.2) == pytest.approx(1.0)
    values = [rate(p / 100, 0.2) for p in range(20, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))  # never rises after the peak
    assert rate(1.0, 0.2) == 0.0


def test_the_linear_schedule_is_halfway_down_halfway_through_the_decay():
    assert SCHEDULES["linear"](0.6, 0.2) == pytest.approx(0.5)


def test_an_unknown_schedule_is_refused_naming_the_choices():
    with pytest.raises(SwarmCNNError, match="unknown schedule 'cosine'; choose one of one-cycle, linear"):
        TrainConfig(schedule="cosine")


def test_lookahead_copies_its_average_into_the_network_and_ends_with_it():
    model = torch.nn.Linear(2, 1)
    lookahead = Lookahead(model)
    with torch.no_grad():
        for step in range(1, 4 * Lookahead.EVERY + 1):
            model.weight += 1.0  # the optimizer's move
            before = model.weight.clone()
            lookahead.step(progress=1.0)
            if step % Lookahead.EVERY == 0 and step > Lookahead.EVERY:
                assert (model.weight < before).all()  # pulled back towards the average
    lookahead.copy_back()
    assert torch.equal(model.weight, lookahead.average["weight"])


def test_a_training_with_lookahead_and_the_linear_schedule_learns_digits():
    data = load_data("digits")
    model = create_model("conv32x3 bn relu maxpool2 conv32x3 bn relu gap", data.input_shape, 10)
    config = TrainConfig(epochs=4, schedule="linear", lookahead=True, optimizer="sgd")
    result = fit(model, data, Normalization.of(data.train.x), config)
    assert result.status == "completed" and result.best_val_accuracy > 0.9
