"""What the swarm may propose: ranges for blocks, features, pooling and fully connected layers.

A candidate is a stem, conv blocks, a head and fully connected layers:
- the stem: nothing, or a fixed patch-whitening layer (`whiten2` and the activation, as airbench begins);
- a block: one or more `conv bn? act`, and an optional pool either after the last of them (VGG) or right after
  the first (airbench: `conv pool bn act conv bn act`, so that the block's later convolutions run on the
  pooled maps at a quarter of the cost), then an optional dropout;
- the head: the maps flattened (`fc` layers see every position), or pooled globally (`gap`, `gmp`: one value
  per feature map, as the fully convolutional designs do);
- then up to `fc_layers` of `fc bn? act dropout?`.
Every candidate is a valid spec for the input shape: pools that would shrink the picture below 1x1 are
dropped, and a stem too wide for the input too (repair, never crash). The defaults hold LeNet-5, the VGG-style
designs and an airbench-style network (swarmcnn.designs) as points of the space.

`SearchSpace.default_for(input_shape)` is the space a search explores where the user gives none: the defaults
above for pictures and clips; for signals (C, L) the same with feature sizes that suit a signal's length, odd
sizes from 3 up to a quarter of it (SIGNAL_FEATURE_SIZES): the 3 and 5 that suit a picture's 3x3 patches see a
few instants of a series whose telling shapes (a hand raised, a leaf's outline, a slow potential of the cortex)
last tens to hundreds of them. The FCN's 8/5/3 (swarmcnn.designs) is one instant off a point of it: the space
keeps sizes odd, so that 'same' padding is symmetric. The whitening stem stays, as it did not measure worse:
trained alone for fixed epochs on the ucr-dev sets (seeds 0 and 1, tested on their own splits), `whiten2 relu`
before `lenet1d` (40 epochs) gave 81.5% on the mean of GunPoint, ArrowHead, BasicMotions and OSULeaf against
80.9% without it, and before the FCN (30 epochs) 98.7 and 99.3% on GunPoint against 78.0 and 64.7%, with
BasicMotions at 100 and 97.5% against 100 and 100%.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from swarmcnn.errors import SwarmCNNError, did_you_mean
from swarmcnn.spec import FC, GELU, BatchNorm, Conv, Dropout, GlobalPool, Layer, Pool, ReLU, Spec, Whiten

HEADS = ("flatten", "gap", "gmp")
STEMS = ("none", "whiten2")
ACTIVATIONS = ("relu", "gelu")
POOL_PLACES = ("last", "first")  # a block pools after its last convolution (VGG) or its first (airbench)
# Feature sizes for signals: 3 to 9 as the FCN's (3-8, Wang et al. 2017) and ROCKET's (7-11, Dempster et al.
# 2020), then about 1.6 times apart (as a log grid spaces features) up to InceptionTime's longest, 40 (Ismail
# Fawaz et al. 2020). Capped at a quarter of the length: a longer feature matches a quarter of every series at
# once, which the pools of later blocks reach at a fraction of the cost.
SIGNAL_FEATURE_SIZES = (3, 5, 7, 9, 15, 25, 41)
SIGNAL_SIZE_SHARE = 4  # feature sizes up to the length over this


@dataclass(frozen=True)
class SearchSpace:
    """Ranges are inclusive (low, high); features and neurons are drawn on a log scale.

    The defaults suit 8×8 digits and 32×32 colour images alike: up to 4 blocks of up to 2 convolutions of up to
    256 features.
    """

    blocks: tuple[int, int] = (1, 4)
    convs_per_block: tuple[int, int] = (1, 2)
    features: tuple[int, int] = (8, 256)
    feature_sizes: tuple[int, ...] = (3, 5)
    pool_kinds: tuple[str, ...] = ("max", "avg")
    pool_windows: tuple[int, ...] = (2, 3)
    pool_strides: tuple[int, ...] = (2,)
    pool_places: tuple[str, ...] = POOL_PLACES
    heads: tuple[str, ...] = HEADS
    stems: tuple[str, ...] = STEMS
    activations: tuple[str, ...] = ACTIVATIONS
    fc_layers: tuple[int, int] = (0, 2)
    neurons: tuple[int, int] = (16, 256)
    batchnorm: bool = True
    dropout: bool = True
    max_dropout: float = 0.5

    def __post_init__(self) -> None:
        for name in ("blocks", "convs_per_block", "features", "fc_layers", "neurons"):
            value = getattr(self, name)
            minimum = 0 if name == "fc_layers" else 1
            if not (_is_int_list(value) and len(value) == 2 and minimum <= value[0] <= value[1]):
                raise SwarmCNNError(
                    f"search space '{name}' must be a range [low, high] of integers with "
                    f"{minimum} <= low <= high, got {_shown(value)}"
                )
        for name in ("feature_sizes", "pool_windows", "pool_strides"):
            value = getattr(self, name)
            if not (_is_int_list(value) and value and min(value) >= 1):
                raise SwarmCNNError(f"search space '{name}' must list positive integers, got {_shown(value)}")
        for name, allowed in (("pool_kinds", ("max", "avg")), ("pool_places", POOL_PLACES), ("heads", HEADS),
                              ("stems", STEMS), ("activations", ACTIVATIONS)):
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or not value or set(value) - set(allowed):
                choices = " and/or ".join(f"'{a}'" for a in allowed)
                raise SwarmCNNError(f"search space '{name}' must list {choices}, got {_shown(value)}")
        for name in ("batchnorm", "dropout"):
            if not isinstance(getattr(self, name), bool):
                raise SwarmCNNError(f"search space '{name}' must be true or false, got {_shown(getattr(self, name))}")
        if (
            isinstance(self.max_dropout, bool)
            or not isinstance(self.max_dropout, (int, float))
            or not (0 <= self.max_dropout < 1)
        ):
            raise SwarmCNNError(
                f"search space 'max_dropout' must be a number in [0, 1), got {_shown(self.max_dropout)}"
            )

    @classmethod
    def default_for(cls, input_shape: tuple[int, ...]) -> SearchSpace:
        """The space a search explores where the user gives none: the defaults for pictures and clips, and for
        signals (C, L) odd feature sizes up to a quarter of the length (SIGNAL_FEATURE_SIZES; 3 at least)."""
        if len(input_shape) != 2:
            return cls()
        return cls(feature_sizes=signal_feature_sizes(input_shape[-1]))

    @classmethod
    def from_toml(cls, path: str | Path) -> SearchSpace:
        """Read `[space]` (or top-level) keys of a TOML file; errors name the file and the key."""
        import tomllib

        path = Path(path)
        try:
            table = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise SwarmCNNError(f"search space file '{path}' does not exist") from None
        except OSError as error:
            raise SwarmCNNError(f"cannot read search space file '{path}': {error.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise SwarmCNNError(f"search space file '{path}' is not valid TOML: {error}") from None
        return cls.from_dict(table.get("space", table), f"search space file '{path}'")

    @classmethod
    def from_dict(cls, values: dict, origin: str = "search space") -> SearchSpace:
        known = [f.name for f in fields(cls)]
        for key in values:
            if key not in known:
                raise SwarmCNNError(
                    f"{origin}: unknown key '{key}'{did_you_mean(key, known)}; known keys: {', '.join(known)}"
                )
        converted = {name: tuple(value) if isinstance(value, list) else value for name, value in values.items()}
        try:
            return cls(**converted)
        except SwarmCNNError as error:
            raise SwarmCNNError(f"{origin}: {error}") from None

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def sample(self, rng: np.random.Generator, input_shape: tuple[int, ...]) -> Spec:
        """A uniformly drawn candidate (the random baseline and the swarm's starting points)."""
        return self.decode(rng.random(self.dimensions), input_shape)

    def typical(self, input_shape: tuple[int, ...], draws: int = 15) -> Spec:
        """The candidate of median FLOPs among a few drawn with a fixed seed: whose pace a budget plans with."""
        rng = np.random.default_rng(0)
        specs = sorted((self.sample(rng, input_shape) for _ in range(draws)), key=lambda s: s.flops(input_shape, 2))
        return specs[draws // 2]

    @property
    def max_blocks(self) -> int:
        return self.blocks[1]

    @property
    def max_fc(self) -> int:
        return self.fc_layers[1]

    @property
    def dimensions(self) -> int:
        """Length of the continuous encoding: 5 choices, 9 genes per possible block, 4 per possible fc layer."""
        return HEAD_GENES + BLOCK_GENES * self.max_blocks + FC_GENES * self.max_fc

    def decode(self, position: np.ndarray, input_shape: tuple[int, ...]) -> Spec:
        """Map a point of the unit cube [0, 1)^dimensions to a valid spec for input_shape.

        Genes: [#blocks, #fc, head, stem, activation, then per block: features, size, #convs, pool?, pool kind,
        window, stride, dropout, pool place, then per fc: neurons, dropout, bn, unused]. Each gene picks its
        value by its quantile, so every value of a range is equally likely under uniform sampling.
        """
        u = np.clip(np.asarray(position, dtype=float), 0.0, 1.0 - 1e-9)
        blocks, fcs = _pick_int(u[0], self.blocks), _pick_int(u[1], self.fc_layers)
        head, stem, activation = _pick(u[2], self.heads), _pick(u[3], self.stems), _pick(u[4], self.activations)
        act = GELU() if activation == "gelu" else ReLU()
        layers: list[Layer] = []
        spatial = list(input_shape[1:])
        if stem == "whiten2" and min(spatial) >= 2:
            layers += [Whiten(2), act]
            spatial = [n - 1 for n in spatial]
        for b in range(blocks):
            g = u[HEAD_GENES + BLOCK_GENES * b : HEAD_GENES + BLOCK_GENES * (b + 1)]
            block, spatial = self._block(g, spatial, act)
            layers += block
        if head != "flatten":
            layers.append(GlobalPool("avg" if head == "gap" else "max"))
        base = HEAD_GENES + BLOCK_GENES * self.max_blocks
        for f in range(fcs):
            g = u[base + FC_GENES * f : base + FC_GENES * (f + 1)]
            layers += [FC(_pick_log(g[0], self.neurons)), *([BatchNorm()] if self.batchnorm and g[2] < 0.5 else [])]
            layers.append(act)
            if self.dropout and g[1] < 0.5:
                layers.append(Dropout(_dropout(g[1] * 2, self.max_dropout)))
        spec = Spec(tuple(layers))
        spec.shapes(input_shape)  # decoding keeps every pool inside the picture: this cannot raise
        return spec

    def _block(self, g: np.ndarray, spatial: list[int], act: Layer) -> tuple[list[Layer], list[int]]:
        """One block's layers from its genes, and the spatial size after it."""
        features, size = _pick_log(g[0], self.features), _pick(g[1], self.feature_sizes)
        norm = [BatchNorm()] if self.batchnorm else []
        pool = None
        if g[3] < 0.5:
            window, stride = _pick(g[5], self.pool_windows), _pick(g[6], self.pool_strides)
            candidate = Pool(_pick(g[4], self.pool_kinds), window, None if stride == window else stride)
            if _fits(candidate, spatial):
                pool, spatial = candidate, _pooled(candidate, spatial)
        layers: list[Layer] = []
        for i in range(_pick_int(g[2], self.convs_per_block)):
            if i == 0 and pool is not None and _pick(g[8], self.pool_places) == "first":
                layers += [Conv(features, size), pool, *norm, act]
                pool = None
            else:
                layers += [Conv(features, size), *norm, act]
        if pool is not None:
            layers.append(pool)
        if self.dropout and g[7] < 0.5:
            layers.append(Dropout(_dropout(g[7] * 2, self.max_dropout)))
        return layers, spatial


HEAD_GENES = 5
BLOCK_GENES = 9
FC_GENES = 4


def signal_feature_sizes(length: int) -> tuple[int, ...]:
    """The odd feature sizes of SIGNAL_FEATURE_SIZES up to length / SIGNAL_SIZE_SHARE, and 3 for the shortest
    signals (a feature of 3 is the smallest that sees a change of slope)."""
    cap = length // SIGNAL_SIZE_SHARE
    return tuple(size for size in SIGNAL_FEATURE_SIZES if size <= cap) or SIGNAL_FEATURE_SIZES[:1]


def _pick(u: float, choices: tuple):
    return choices[min(int(u * len(choices)), len(choices) - 1)]


def _pick_int(u: float, bounds: tuple[int, int]) -> int:
    low, high = bounds
    return low + min(int(u * (high - low + 1)), high - low)


def _pick_log(u: float, bounds: tuple[int, int]) -> int:
    """A value of the half-octave grid low, 1.5 low, 2 low, 3 low ... (8..128: 8, 12, 16, 24, ..., 128).

    A grid rather than every integer: conv37 and conv38 are the same network for the search's purpose,
    and identical specs are trained once.
    """
    return _pick(u, _log_grid(*bounds))


@functools.cache
def _log_grid(low: int, high: int) -> tuple[int, ...]:
    grid, k = [], 0
    while (value := round(low * 2 ** (k // 2) * (1.5 if k % 2 else 1))) < high:
        grid.append(value)
        k += 1
    return tuple(dict.fromkeys([*grid, high]))


def _dropout(u: float, maximum: float) -> float:
    """Dropout rates on a 0.05 grid, so that the swarm does not invent endless near-identical specs."""
    return min(round((0.05 + u * maximum) * 20), math.floor(maximum * 20)) / 20


def _is_int_list(value) -> bool:
    return isinstance(value, (tuple, list)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


def _shown(value) -> str:
    return repr(list(value) if isinstance(value, tuple) else value)


def _fits(pool: Pool, spatial: list[int]) -> bool:
    return all(n >= pool.window for n in spatial[-2:]) and (len(spatial) < 3 or spatial[0] >= pool.window)


def _pooled(pool: Pool, spatial: list[int]) -> list[int]:
    return [(n - pool.window) // pool.step + 1 for n in spatial]
