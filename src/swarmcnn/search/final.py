"""The end of a search: the chosen spec trained longer on train+val, then tested once on the test split.

Kept apart from the loop so that anything that picks a spec (the loop, or a benchmark's baseline that runs
no swarm) gets exactly the same final training.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from swarmcnn.checkpoint import TrainedModel
from swarmcnn.data import DataConfig, Dataset, Split
from swarmcnn.ensemble import member_seed
from swarmcnn.package import averaged, train_model
from swarmcnn.search.evaluate import EvaluationConfig
from swarmcnn.search.journal import EvaluationRecord
from swarmcnn.spec import Spec
from swarmcnn.train import Evaluation, TrainConfig, TrainReporter, TrainResult

# A final training that diverged is trained again, twice at most: a model of NaN would be all the search had to
# show for itself. Seen in CI on moving-digits: vgg-3block after one bf16 epoch held NaN in its first layer's
# bias at 4e-3, 1e-3 and 2.5e-4 alike, in a test process that had run others first, and never when run alone:
# not the rate but a kernel (oneDNN's bf16 convolutions have given wrong results, pytorch/pytorch#169688). So a
# bf16 training is tried again in fp32 at the same rate first; an fp32 one at a quarter of its rate (default_lr's
# 4e-3 to Adam's customary 1e-3).
RETRIES_AFTER_DIVERGING = 2
RATE_AFTER_DIVERGING = 0.25


@dataclass
class FinalModel:
    """The packaged model, and how training and the test went."""

    trained: TrainedModel
    data: Dataset  # train+val as its training split
    config: TrainConfig  # the settings of the training that made the model (a retry's lower rate included)
    result: TrainResult
    test: Evaluation
    retries: int = 0  # trainings that diverged before it
    member_results: tuple[TrainResult, ...] = ()  # of each member of an ensemble, `result` the first's

    @property
    def results(self) -> tuple[TrainResult, ...]:
        """The trainings the model is made of: its members', or its one."""
        return self.member_results or (self.result,)


def train_plus_val(data: Dataset) -> Dataset:
    """The final model learns from everything but the test split (the search already chose it on val).

    Its validation split is empty: the validation images are training images now.
    """
    train = Split(torch.cat([data.train.x, data.val.x]), torch.cat([data.train.y, data.val.y]))
    return replace(data, train=train, val=Split(data.val.x[:0], data.val.y[:0]))


def final_config(
    evaluation: EvaluationConfig,
    epochs: int,
    seed: int,
    augment: bool = False,
    flip: bool = False,
    max_seconds: float | None = None,
) -> TrainConfig:
    """The final training's settings: the candidates' batch size and learning rate, longer, with augmentation."""
    return TrainConfig(
        epochs=epochs,
        batch_size=evaluation.batch_size,
        lr=evaluation.lr,
        augment=augment,
        flip=flip,
        seed=seed,
        max_seconds=None if max_seconds is None else max(0.0, max_seconds),
        device=evaluation.device,
        precision=evaluation.precision,
    )


def train_final(
    spec: Spec,
    data: Dataset,
    config: TrainConfig,
    reporter: TrainReporter | None = None,
    data_config: DataConfig | None = None,
    members: int = 1,
) -> FinalModel:
    """Train spec on train+val as config says, then test it once (data_config: the split settings it records,
    with the fingerprint of data as they split it).

    members: trainings of config each (their seeds `member_seed`), whose probabilities the model averages
    (swarmcnn.ensemble); a member that diverged for good is left out of the average, and the model of the first
    is returned when all did.
    """
    whole = train_plus_val(data)
    trainings = [
        _train_member(spec, whole, replace(config, seed=member_seed(config.seed, k)), reporter, data_config,
                      data.fingerprint)
        for k in range(members)
    ]
    learned = [training for training in trainings if training.result.ok]
    if members == 1 or len(learned) < 2:
        return learned[0] if learned else trainings[0]
    return _averaged(learned, whole)


def _train_member(spec, whole, config, reporter, data_config, fingerprint) -> FinalModel:
    """One training, tried again should it diverge.

    A training that diverges is trained again in fp32 or at a lower rate (RETRIES_AFTER_DIVERGING); a retry gets
    what is left of max_seconds, but no less than half of it: a training blows up early, at the warm-up's peak, and a
    network trained in a sliver of its time would be worth less than the overrun. The last try is returned
    whatever its status: the caller decides what a diverged model is worth.
    """
    allotted, spent = config.max_seconds, 0.0
    for retries in range(RETRIES_AFTER_DIVERGING + 1):
        trained, result, test = train_model(spec, whole, config, reporter, data_config, fingerprint)
        if result.ok or retries == RETRIES_AFTER_DIVERGING:
            break
        spent += result.seconds
        left = None if allotted is None else max(allotted - spent, allotted / 2)
        bf16 = result.precision == "bf16"  # a kernel's NaN: the same rate in fp32 first
        lr = result.peak_lr * (1.0 if bf16 else RATE_AFTER_DIVERGING)
        config = replace(config, precision="fp32" if bf16 else config.precision, lr=lr, max_seconds=left)
    return FinalModel(trained, whole, config, result, test, retries)


def _averaged(trainings: list[FinalModel], whole: Dataset) -> FinalModel:
    """One model of the members' trainings (package.averaged), tested once as one."""
    results = [training.result for training in trainings]
    trained, test = averaged([training.trained for training in trainings], results, whole.test)
    return replace(trainings[0], trained=trained, test=test, retries=sum(t.retries for t in trainings),
                   member_results=tuple(results))


def final_summary(best: EvaluationRecord, final: FinalModel, epochs: int, max_seconds: float | None,
                  found: dict) -> dict:
    """What the journal keeps of the final training (journal_checks.FINAL_FIELDS reads it back): the network, where
    it came from, its test, and how its training went."""
    result, results = final.result, final.results
    return {
        "best_spec": best.spec,
        "best_val_accuracy": best.val_accuracy,
        "best_rung": best.rung,
        "test_accuracy": final.test.accuracy if len(final.data.test) else None,
        "final_epochs": epochs,
        "final_members": len(results),
        "final_epochs_trained": round(result.images / max(len(final.data.train), 1), 2),  # each member's
        "final_status": result.status,
        "final_cut_by_time": any(r.cut_by_time for r in results),
        "final_seconds": sum(r.seconds for r in results),
        "final_allotted_seconds": max_seconds,
        "final_not_learning": result.not_learning,
        "final_retries": final.retries,
        "provenance": found,
    }
