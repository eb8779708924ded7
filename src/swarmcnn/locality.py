"""Is a CNN the right tool for this data? Measure whether nearby values mean something together.

A CNN pays off only where local patterns matter: "if the output stays the same after swapping columns, there
is no point using a CNN". `check` measures exactly that. The same small CNN is trained briefly on the data as
it is and on the data with one fixed random permutation of its pixel positions (the same permutation for every
sample, channel and frame: rows and columns scrambled everywhere alike, so no information is lost, only
locality), and a fully connected net of about the same size on the original. Where the permutation costs the
CNN clearly more than noise, the data has local structure and a CNN is advised; where it does not, a CNN
only adds cost (a fully connected net, or gradient boosting for a table, does as well).

For clips it also shuffles the order of the frames of each clip (a new order per clip, so that no order is
left to learn) to tell whether time matters: where it costs clearly more than noise, the motion carries the
class and a 3-D network is needed; where not, pictures of single frames would do.

For signals (C, L) the fixed permutation shuffles the time steps (every channel alike), the signal's scrambled
pixels, and the verdict says whether order matters: where it does not, what tells the classes apart survives
any order of the values (their level or spread, say) and features of their distribution do as well. The probe
matches local patterns wherever they are, by design: a class told only by *where* something happens, with the
same shape everywhere, is beyond it on either version of the data.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, replace

import torch

from swarmcnn.data import Dataset, Split
from swarmcnn.errors import DataError
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization, TrainConfig, build_seeded, fit, predict_logits

# Each training sees about this many images (epochs follow from the data's size, at least MIN_EPOCHS): brief,
# because a short training is where a CNN's locality shows most. Measured on digits split four ways: at 8,000
# images the scrambled-pixel drop was 1.75-2.1 times its noise in every split (at 16,000, 1.4-1.8 times; at
# 4,000 one split of four fell below); on the 1,257 training digits that is 7 epochs, the whole check ~5 s.
IMAGES_PER_TRAINING = 8_000
MIN_EPOCHS = 3
MAX_TRAIN = 5_000  # training samples used at most (the first ones per class order): the check is a probe
NOISE_SIGMAS = 2.0  # a drop counts when it exceeds twice its standard error


@dataclass(frozen=True)
class CheckResult:
    """Test accuracies per seed of the CNN on the original data, on pixel-permuted data, of a fully connected net
    of about the same size, and (clips) of the CNN on frame-shuffled clips; and the verdicts drawn from them."""

    cnn_spec: str
    mlp_spec: str
    test_samples: int
    accuracy_original: tuple[float, ...]
    accuracy_permuted: tuple[float, ...]
    accuracy_mlp: tuple[float, ...]
    accuracy_frames_shuffled: tuple[float, ...] | None = None
    # per variant, per seed: which test samples the network classified right (the test samples are the same
    # pictures in every variant, in the same order, so the variants are compared sample by sample)
    right: dict[str, tuple[tuple[bool, ...], ...]] = field(default_factory=dict, repr=False)
    signals: bool = False  # the data are signals: the permutation shuffled their time steps

    @property
    def scrambled(self) -> str:
        """What the permutation did, as the verdict and the table say it."""
        return "shuffling the time steps" if self.signals else "scrambling the pixel positions"

    @property
    def locality_drop(self) -> float:
        return _mean(self.accuracy_original) - _mean(self.accuracy_permuted)

    @property
    def cnn_advised(self) -> bool:
        return self.locality_drop > self.noise("permuted")

    @property
    def time_matters(self) -> bool | None:
        if self.signals:  # the permutation of a signal is one of its time steps
            return self.cnn_advised
        if self.accuracy_frames_shuffled is None:
            return None
        return _mean(self.accuracy_original) - _mean(self.accuracy_frames_shuffled) > self.noise("frames")

    def noise(self, variant: str) -> float:
        """The drop in mean accuracy from the original to `variant` that chance alone could make: NOISE_SIGMAS
        standard errors of a paired comparison on the same test samples (McNemar's: the samples one network
        got right and the other wrong, pooled over the seeds), at least one test sample."""
        discordant = sum(
            sum(a != b for a, b in zip(original, other))
            for original, other in zip(self.right["original"], self.right[variant])
        )
        runs = len(self.right["original"]) * self.test_samples
        return NOISE_SIGMAS * max(math.sqrt(discordant), 1.0) / runs

    @property
    def verdict(self) -> str:
        drop = 100 * self.locality_drop
        if self.signals:
            return self._signal_verdict(drop)
        if self.cnn_advised:
            text = f"a CNN is advised: scrambling the pixel positions costs it {drop:.1f} points, more than noise"
        else:
            text = (
                f"a CNN is not advised: scrambling the pixel positions costs it {drop:.1f} points, within noise; "
                "nearby values carry no pattern, so use a fully connected net (or gradient boosting for a table)"
            )
        if self.time_matters is not None:
            text += "; time matters: shuffled frames cost clearly more than noise (keep 3-D convolutions)" if (
                self.time_matters
            ) else "; time does not matter: shuffled frames cost no more than noise (single frames would do)"
        return text

    def _signal_verdict(self, drop: float) -> str:
        if self.cnn_advised:
            return (f"order matters: {self.scrambled} costs the CNN {drop:.1f} points, more than noise; a CNN is "
                    "advised")
        return (f"order does not matter: {self.scrambled} costs the CNN {drop:.1f} points, within noise; what tells "
                "the classes apart survives any order of the values (their level or spread, say), so a CNN is not "
                "advised: use features of their distribution with gradient boosting, or a fully connected net")

    def to_dict(self) -> dict:
        def summary(values):
            return None if values is None else {"mean": _mean(values), "std": _std(values), "runs": list(values)}

        return {
            "cnn_advised": self.cnn_advised,
            "time_matters": self.time_matters,
            "accuracy_original": _mean(self.accuracy_original),
            "accuracy_permuted": _mean(self.accuracy_permuted),
            "accuracy_mlp": _mean(self.accuracy_mlp),
            "accuracy_frames_shuffled": None if self.accuracy_frames_shuffled is None else _mean(
                self.accuracy_frames_shuffled
            ),
            "original": summary(self.accuracy_original),
            "permuted": summary(self.accuracy_permuted),
            "mlp": summary(self.accuracy_mlp),
            "frames_shuffled": summary(self.accuracy_frames_shuffled),
            "noise": self.noise("permuted"),
            "test_samples": self.test_samples,
            "cnn_spec": self.cnn_spec,
            "mlp_spec": self.mlp_spec,
            "verdict": self.verdict,
        }


def check(data: Dataset, seeds: int = 3, device: str = "auto", precision: str = "auto") -> CheckResult:
    """Train the probe networks on data (its training split, at most MAX_TRAIN samples) `seeds` times each and
    test them on its test split. "Clearly more than noise" is a drop in mean accuracy above two standard errors
    of the paired difference on the same test samples (`CheckResult.noise`): it grows with the disagreement
    between the seeds' networks and shrinks with the test set's size, so no threshold is tuned to one data set."""
    if seeds < 1:
        raise DataError(f"seeds must be at least 1, got {seeds}")
    if len(data.test) == 0:
        raise DataError(f"data '{data.source}' has no test split to measure on; give it a test fraction above 0")
    data = _probe(data)
    cnn, mlp = cnn_spec(data.input_shape), mlp_spec(data.input_shape, len(data.class_names))
    epochs = max(MIN_EPOCHS, math.ceil(IMAGES_PER_TRAINING / max(len(data.train), 1)))
    config = TrainConfig(epochs=epochs, device=device, precision=precision)
    generator = torch.Generator().manual_seed(0)
    scrambled = permute_pixels(data, torch.randperm(math.prod(_positions(data.input_shape)), generator=generator))
    right: dict[str, list[tuple[bool, ...]]] = {}
    variants = {"original": (cnn, data), "permuted": (cnn, scrambled), "mlp": (mlp, data)}
    if len(data.input_shape) == 4:
        variants["frames"] = (cnn, shuffle_frames(data, generator))
    for seed in range(seeds):
        for name, (spec, variant) in variants.items():
            right.setdefault(name, []).append(_test_right(spec, variant, replace(config, seed=seed)))
    accuracy = {name: tuple(sum(r) / len(r) for r in runs) for name, runs in right.items()}
    return CheckResult(
        str(cnn), str(mlp), len(data.test), accuracy["original"], accuracy["permuted"], accuracy["mlp"],
        accuracy.get("frames"), right={name: tuple(runs) for name, runs in right.items()},
        signals=len(data.input_shape) == 2,
    )


def _positions(input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The axes the permutation scrambles: a signal's instants (L), a picture's or every frame's pixels (H, W)."""
    return input_shape[1:] if len(input_shape) == 2 else input_shape[-2:]


def cnn_spec(input_shape: tuple[int, ...]) -> Spec:
    """The probe CNN: two 3x3 convolutions (of 7 and 5 instants for signals) with batch norm, pooled while the
    input is large enough, then an average over all positions before the class layer.

    The average makes it a network of local patterns alone (it cannot learn a weight per position, as its
    fully connected layer could): on data whose nearby values mean something it does well, on the same data
    with its positions scrambled it loses what it had. Small on purpose: it learns fast where there is
    anything local to learn.
    """
    side = min(_positions(input_shape))
    first, second = (7, 5) if len(input_shape) == 2 else (3, 3)  # a signal's patterns span more instants
    layers = [f"conv16x{first} bn relu"]
    if side >= 8:
        layers.append("maxpool2")
        side //= 2
    layers.append(f"conv32x{second} bn relu")
    if side >= 8:
        layers.append("maxpool2")
        side //= 2
    left = Spec.parse(" ".join(layers)).shapes(input_shape)[-1].spatial  # (H, W) or (T, H, W) still there
    window, frames = min(left[-2:]), (f"t{left[0]}" if len(left) == 3 else "")
    if window > 1 or frames:
        layers.append(f"avgpool{window}{frames}")
    return Spec.parse(" ".join(layers))


def mlp_spec(input_shape: tuple[int, ...], classes: int) -> Spec:
    """A fully connected net with about the parameters of the probe CNN (two hidden layers)."""
    target = cnn_spec(input_shape).num_params(input_shape, classes)
    inputs = math.prod(input_shape)
    hidden = max(16, round((target - 64 * classes) / (inputs + 65)))  # inputs*h + h*64 + 64*classes ≈ target
    return Spec.parse(f"fc{hidden} relu fc64 relu")


def permute_pixels(data: Dataset, permutation: torch.Tensor) -> Dataset:
    """Every split with its pixel positions (row and column together), or a signal's instants, put in one fixed
    other order."""
    axes = len(_positions(data.input_shape))

    def scramble(split: Split) -> Split:
        flat = split.x.reshape(*split.x.shape[:-axes], permutation.numel())
        return Split(flat[..., permutation].reshape(split.x.shape).contiguous(), split.y)

    return replace(data, train=scramble(data.train), val=scramble(data.val), test=scramble(data.test))


def shuffle_frames(data: Dataset, generator: torch.Generator) -> Dataset:
    """Every clip (N, C, T, H, W) with its frames in a random order of its own: no order is left to learn."""

    def shuffle(split: Split) -> Split:
        frames = split.x.shape[2]
        order = torch.argsort(torch.rand(len(split.x), frames, generator=generator), dim=1)
        index = order[:, None, :, None, None].expand_as(split.x)
        return Split(torch.gather(split.x, 2, index).contiguous(), split.y)

    return replace(data, train=shuffle(data.train), val=shuffle(data.val), test=shuffle(data.test))


def _probe(data: Dataset) -> Dataset:
    """At most MAX_TRAIN training samples (the splits are already shuffled), and no validation: the probes train
    for a fixed schedule and are judged on the test split."""
    train = Split(data.train.x[:MAX_TRAIN], data.train.y[:MAX_TRAIN])
    return replace(data, train=train, val=Split(data.val.x[:0], data.val.y[:0]))


def _test_right(spec: Spec, data: Dataset, config: TrainConfig) -> tuple[bool, ...]:
    """Train spec on data's training split; which test samples it then classifies right."""
    model = build_seeded(spec, data.input_shape, len(data.class_names), config.seed)
    normalization = Normalization.of(data.train.x, series=data.normalize == "series")
    fit(model, data, normalization, config)
    guesses = predict_logits(model, data.test.x, normalization).argmax(1).cpu()
    return tuple((guesses == data.test.y).tolist())


def _mean(values) -> float:
    return statistics.fmean(values)


def _std(values) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0
