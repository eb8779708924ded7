import dataclasses
import math

import pytest
import torch

from swarmcnn.data import Dataset, Split
from swarmcnn.errors import SwarmCNNError
from swarmcnn.spec import parse
from swarmcnn.steps import WarmingEMA
from swarmcnn.train import (
    WARMUP_START,
    Normalization,
    Schedule,
    TrainConfig,
    TrainReporter,
    augment,
    build_seeded,
    default_batch_size,
    evaluate,
    fit,
    one_cycle,
    predict_logits,
)

REFERENCE = "conv32x3 bn relu maxpool2 fc64 relu"


def _train(data, text=REFERENCE, **config):
    spec = parse(text)
    model = build_seeded(spec, data.input_shape, len(data.class_names), config.get("seed", 0))
    normalization = Normalization.of(data.train.x)
    result = fit(model, data, normalization, TrainConfig(**config))
    return model, normalization, result


def test_reference_network_reaches_97_percent_test_accuracy_on_digits(digits):
    model, normalization, result = _train(digits, epochs=10)
    assert result.status == "completed"
    assert evaluate(model, digits.test, normalization).accuracy >= 0.97


def test_same_seed_gives_identical_weights_on_cpu(digits):
    first, _, _ = _train(digits, "conv8x3 bn relu maxpool2 fc16 relu dropout0.2", epochs=2, augment=True)
    second, _, _ = _train(digits, "conv8x3 bn relu maxpool2 fc16 relu dropout0.2", epochs=2, augment=True)
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)


def test_training_leaves_the_global_random_state_alone(digits):
    before = torch.random.get_rng_state()
    _train(digits, "conv4x3 relu fc8 dropout0.5", epochs=1)
    assert torch.equal(before, torch.random.get_rng_state())


def test_exploding_learning_rate_ends_with_diverged_status_not_a_crash(digits):
    _, _, result = _train(digits, "conv16x3 relu fc64 relu", epochs=3, optimizer="sgd", lr=1e6)
    assert result.status == "diverged"
    assert not result.ok
    assert "loss" in result.reason


def test_nan_inputs_end_with_diverged_status(digits):
    x = digits.train.x.float()
    x[0, 0, 0, 0] = math.nan
    poisoned = Dataset(
        Split(x, digits.train.y), digits.val, digits.test, digits.class_names, digits.input_shape, "poisoned"
    )
    model = build_seeded(parse("conv4x3 relu fc8"), digits.input_shape, 10, 0)
    result = fit(model, poisoned, Normalization.of(digits.train.x), TrainConfig(epochs=2))
    assert result.status == "diverged"


def test_early_stopping_stops_when_validation_loss_stalls(digits):
    _, _, result = _train(digits, "conv16x3 relu fc64 relu", epochs=60, patience=1, lr=2e-2)
    assert result.status == "early-stopped"
    assert len(result.epochs) < 60


def test_one_cycle_warms_up_to_its_peak_then_anneals_to_zero():
    shares = [one_cycle(p / 100, warmup=0.2) for p in range(101)]
    assert shares[0] == pytest.approx(WARMUP_START) and shares[20] == pytest.approx(1.0)
    assert shares[:21] == sorted(shares[:21]) and shares[20:] == sorted(shares[20:], reverse=True)
    assert shares[-1] == 0.0 and shares[99] < 1e-3


class FakeClock:
    """Seconds that pass by `tick` at every read: a machine of any speed, the same run after run."""

    def __init__(self, tick: float) -> None:
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


RECIPES = [{}, {"schedule": "linear", "lookahead": True, "optimizer": "sgd", "label_smoothing": 0.2}]


@pytest.mark.parametrize("recipe", RECIPES, ids=["one-cycle", "linear-lookahead-sgd"])
@pytest.mark.parametrize("tick", [0.001, 0.02])  # a fast machine and one twenty times slower
def test_a_time_limit_ends_the_schedule_with_the_rate_annealed_whatever_the_pace(digits, tick, recipe):
    model = build_seeded(parse("conv4x3 relu fc8"), digits.input_shape, 10, seed=0)
    config = TrainConfig(epochs=1000, max_seconds=2.0, lr=1e-2, **recipe)
    result = fit(model, digits, Normalization.of(digits.train.x), config, clock=FakeClock(tick))
    assert result.status == "completed" and result.cut_by_time
    assert result.images < result.planned_images and "time limit of 2s" in result.reason
    assert result.epochs[-1].lr < 1e-2 * 0.03  # the last step ran in the last 2% of the schedule, not mid-way
    assert result.seconds == pytest.approx(2.0, abs=30 * tick)  # it ended when the time was up


def test_a_schedule_ends_with_its_images_when_the_time_suffices(digits):
    model = build_seeded(parse("conv4x3 relu fc8"), digits.input_shape, 10, seed=0)
    config = TrainConfig(epochs=3, max_seconds=1e6)
    result = fit(model, digits, Normalization.of(digits.train.x), config)
    assert not result.cut_by_time and result.images == result.planned_images == 3 * len(digits.train)
    assert len(result.epochs) == 3 and result.reason == "trained 3 epochs"


def test_schedule_progress_is_the_larger_of_images_seen_and_time_used():
    clock = FakeClock(1.0)
    schedule = Schedule(images=1000, max_seconds=100.0, clock=clock)  # started at 1.0
    schedule.seen = 500
    assert schedule.progress() == pytest.approx(0.5)  # 1 second of 100 used, half the images seen
    clock.now = 90.0
    assert schedule.progress() == pytest.approx(0.9)  # now the time decides
    clock.now = 500.0
    assert schedule.progress() == 1.0 and schedule.ended


def test_with_early_stopping_the_model_ends_with_the_weights_of_its_best_validation_loss(digits):
    # fp32: the check compares the validation loss fit recorded with one computed again here, to the last digits
    model, normalization, result = _train(
        digits, "conv8x3 relu fc32 relu", epochs=6, lr=5e-2, patience=10, precision="fp32"
    )
    best = min(result.epochs, key=lambda e: e.val_loss)
    assert evaluate(model, digits.val, normalization).loss == pytest.approx(best.val_loss, rel=1e-5)


def test_without_early_stopping_the_model_keeps_its_last_weights_validated_once(digits):
    model, normalization, result = _train(digits, "conv8x3 relu fc32 relu", epochs=4, precision="fp32")
    assert [math.isnan(e.val_loss) for e in result.epochs] == [True, True, True, False]  # nobody read the others
    assert evaluate(model, digits.val, normalization).loss == pytest.approx(result.best_val_loss, rel=1e-5)


@pytest.mark.parametrize("lr", [10.0, 1.0])
def test_a_network_that_cannot_learn_is_told_by_its_loss_at_the_chance_level(digits, lr):
    _, _, result = _train(digits, "conv8x3 relu maxpool2 fc32 relu", epochs=4, lr=lr)
    assert result.status == "completed" and result.not_learning is not None
    assert result.chance_loss == pytest.approx(math.log(10), rel=0.01)  # digits' classes are near balanced


def test_a_network_that_learns_is_not_told_it_does_not(digits):
    _, _, result = _train(digits, REFERENCE, epochs=4)
    assert result.not_learning is None


def test_train_fraction_trains_on_part_of_the_split(digits):
    _, _, result = _train(digits, "conv4x3 relu fc8", epochs=1, train_fraction=0.25)
    assert result.epochs[0].images_per_second > 0
    assert result.ok


def test_sgd_with_momentum_learns_digits(digits):
    model, normalization, _ = _train(digits, REFERENCE, epochs=5, optimizer="sgd")
    assert evaluate(model, digits.test, normalization).accuracy > 0.9


def test_normalization_gives_zero_mean_unit_std_per_channel():
    x = (torch.rand(64, 3, 5, 5) * 255).to(torch.uint8)
    z = Normalization.of(x)(x)
    assert z.mean(dim=(0, 2, 3)).abs().max() < 1e-4
    assert (z.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-3


def test_augment_keeps_shape_and_moves_pixels():
    x = torch.arange(2 * 16 * 16, dtype=torch.float32).view(2, 1, 16, 16)
    out = augment(x.clone(), torch.Generator().manual_seed(3), shift=True, flip=True)
    assert out.shape == x.shape
    assert not torch.equal(out, x)


def test_shifted_stored_pictures_bring_in_black_and_keep_their_pixels():
    x = torch.full((64, 1, 16, 16), 200, dtype=torch.uint8)
    out = augment(x, torch.Generator().manual_seed(0), shift=True)
    assert out.dtype == torch.uint8
    assert set(out.unique().tolist()) == {0, 200}  # the border is black, the picture unchanged
    assert (out == 0).flatten(1).any(1).float().mean() > 0.5  # most of the batch moved


def test_evaluation_confusion_matrix_counts_every_image(digits):
    model, normalization, _ = _train(digits, "conv4x3 relu fc8", epochs=1)
    result = evaluate(model, digits.test, normalization)
    confusion = torch.tensor(result.confusion)
    assert confusion.sum() == len(digits.test)
    assert confusion.diag().sum() / len(digits.test) == pytest.approx(result.accuracy)


@pytest.mark.parametrize(
    "bad",
    [
        {"epochs": 0},
        {"optimizer": "adam"},
        {"train_fraction": 0},
        {"lr": -1.0},
        {"weight_decay": -5},
        {"warmup": 1.0},
        {"label_smoothing": -0.1},
        {"patience": -3},
    ],
)
def test_bad_training_settings_are_refused(bad):
    with pytest.raises(SwarmCNNError):
        TrainConfig(**bad)


def test_training_without_a_validation_split_runs_every_epoch_and_keeps_the_last_weights(digits):
    empty_val = dataclasses.replace(digits, val=Split(digits.val.x[:0], digits.val.y[:0]))
    model = build_seeded(parse("conv4x3 relu fc8"), digits.input_shape, 10, seed=0)

    class LastWeights(TrainReporter):
        def epoch_end(self, stats) -> None:
            self.state = {k: v.clone() for k, v in model.state_dict().items()}

    last = LastWeights()
    result = fit(model, empty_val, Normalization.of(digits.train.x), TrainConfig(epochs=3, patience=1), last)
    assert result.status == "completed" and len(result.epochs) == 3
    assert all(math.isnan(stats.val_accuracy) for stats in result.epochs)
    assert all(torch.equal(v, last.state[k]) for k, v in model.state_dict().items())


def test_the_default_batch_shrinks_for_small_data_so_an_epoch_has_steps():
    assert default_batch_size(100_000) == 128 and default_batch_size(3_400) == 64
    assert default_batch_size(1_257) == 32 and default_batch_size(50) == 32


def test_with_a_weight_average_the_model_ends_with_the_average_and_still_learns(digits):
    averaged, normalization, _ = _train(digits, REFERENCE, epochs=6, ema=0.99)
    plain, _, _ = _train(digits, REFERENCE, epochs=6)
    assert evaluate(averaged, digits.test, normalization).accuracy >= 0.95
    assert any(not torch.equal(a, b) for a, b in zip(averaged.state_dict().values(), plain.state_dict().values()))


def test_a_weight_average_of_a_short_training_is_not_the_random_start(digits):
    # two epochs of 1,257 digits are 80 steps: at a fixed decay of 0.999 the average would be 92% the initial
    # weights; warmed up, it follows the network
    averaged, normalization, _ = _train(digits, REFERENCE, epochs=2, ema=0.999)
    plain, _, _ = _train(digits, REFERENCE, epochs=2)
    plain_accuracy = evaluate(plain, digits.test, normalization).accuracy
    assert evaluate(averaged, digits.test, normalization).accuracy >= plain_accuracy - 0.03


def test_the_average_s_decay_warms_up_to_the_one_asked_for():
    ema = WarmingEMA(0.999)
    rates = []
    for _ in range(10_000):  # (1 + n) / (10 + n) reaches 0.999 at n = 8,991
        ema.updates += 1
        rates.append(ema.rate)
    assert rates[0] == pytest.approx(2 / 11) and rates == sorted(rates) and rates[-1] == 0.999


def test_flip_test_time_augmentation_averages_the_scores_of_a_picture_and_its_mirror(digits):
    model, normalization, _ = _train(digits, "conv4x3 relu fc8", epochs=1)
    x = digits.test.x[:16]
    both = predict_logits(model, x, normalization, flip=True)
    expected = (predict_logits(model, x, normalization) + predict_logits(model, x.flip(-1), normalization)) / 2
    assert torch.allclose(both, expected, atol=1e-5)
