"""psoCNN, the published method: a swarm of variable-length layer lists moved by layer-wise differences.

F. E. Fernandes Junior and G. G. Yen, "Particle swarm optimization of deep neural networks architectures
for image classification", Swarm and Evolutionary Computation 49 (2019) 62-74; public code feferna/psoCNN.
Here it is re-implemented over swarmcnn's specs, as the baseline our own `pso` strategy is compared with.

A particle is the list of hidden layers (conv, pool, fc; fc last); the classifier is implicit in swarmcnn,
where the original keeps it as the particle's last fc. Each generation every particle moves towards its
personal best and the global best: the difference of two particles marks, position by position, what to
keep, replace, add or remove; the velocity takes each position from the difference to the global best with
probability Cg, otherwise from the difference to the personal best; the particle applies it and is repaired.

Where this differs from the paper and its code (each choice explained where it is made):
- Scores: the paper scores a candidate by its training accuracy after one epoch; swarmcnn scores every
  strategy on the validation split. The loop decides the score; the strategy only receives it.
- Training: the paper trains each candidate 1 epoch with Adam (lr 1e-3), batch 64, and the best for 100
  epochs at the end (the public main.py uses batch 32). Training belongs to the loop: `paper_training`
  states these settings for the benchmark.
- Updates are synchronous: all particles move, then all are scored (ask/tell), where the original scores
  each particle right after it moves, so that later particles of the same iteration follow a newer gBest.
- A personal or global best changes only on a strictly better score (the original takes ties, `>=`).
- The pool limit is `max_pools(input_shape)` after every move too; the original's `validate` keeps one
  pool fewer than its initialisation allows (`>=` against the limit), which on 8x8 inputs removes every pool.
- Not expressible in a spec, left to the model builder: batch norm after the classifier and the L2 penalty
  (0.01) on hidden fc weights of the original.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import zip_longest
from typing import ClassVar

import numpy as np

from swarmcnn.search.strategies.base import WORST, Candidate, Strategy, score_from_json, score_to_json
from swarmcnn.spec import FC, BatchNorm, Conv, Dropout, Layer, Pool, ReLU, Spec, pool_geometry

KEEP = "keep"  # the position keeps the particle's own layer
REMOVE = "remove"  # the position is dropped from the particle

Hidden = Conv | Pool | FC  # what a particle holds; bn, relu and dropout are added by `decode`
Particle = tuple[Hidden, ...]
Step = Hidden | str  # a layer to put at the position, KEEP or REMOVE


@dataclass(frozen=True)
class Moves:
    """A difference of two particles, or a velocity: one step per position of each part.

    The conv/pool part is aligned from the first layer and the fc part from the last one, as the original's
    `differenceConvPool` and `differenceFC` (utils.py) align them; keeping the parts apart replaces its
    `keep_fc`/`remove_fc` markers, which only served to find where the fc part starts.
    """

    conv: tuple[Step, ...]
    fc: tuple[Step, ...]


def split(particle: Particle) -> tuple[Particle, Particle]:
    """The conv/pool part and the fc part."""
    first_fc = next((i for i, layer in enumerate(particle) if isinstance(layer, FC)), len(particle))
    return particle[:first_fc], particle[first_fc:]


def _kind(layer: Hidden) -> str:
    """The type the original compares: max and average pooling differ, conv sizes and features do not."""
    if isinstance(layer, Pool):
        return f"{layer.kind}pool"
    return type(layer).__name__


def difference(p1: Particle, p2: Particle) -> Moves:
    """p1 - p2: the steps that turn p2 into (the layer types of) p1; `computeDifference` in utils.py."""
    conv1, fc1 = split(p1)
    conv2, fc2 = split(p2)
    conv = []
    for a, b in zip_longest(conv1, conv2):
        if a is None:
            conv.append(REMOVE)
        elif b is None or _kind(a) != _kind(b):
            conv.append(a)
        else:
            conv.append(KEEP)
    # fc layers are all of one type: where both particles have one, the original keeps p2's neurons
    fc = [REMOVE if a is None else a if b is None else KEEP for a, b in zip_longest(fc1[::-1], fc2[::-1])]
    return Moves(tuple(conv), tuple(fc[::-1]))


def velocity(to_pbest: Moves, to_gbest: Moves, cg: float, rng: np.random.Generator) -> Moves:
    """Each position from the difference to the global best with probability cg, else from the one to the
    personal best; a position the chosen difference lacks is removed (`computeVelocity` in utils.py)."""
    conv = _choose(to_pbest.conv, to_gbest.conv, cg, rng)
    fc = _choose(to_pbest.fc[::-1], to_gbest.fc[::-1], cg, rng)[::-1]
    return Moves(conv, fc)


def _choose(pbest: tuple[Step, ...], gbest: tuple[Step, ...], cg: float, rng) -> tuple[Step, ...]:
    draws = rng.random(max(len(pbest), len(gbest)))
    steps = []
    for i, u in enumerate(draws):
        source = gbest if u <= cg else pbest
        steps.append(source[i] if i < len(source) else REMOVE)
    return tuple(steps)


def apply(particle: Particle, moves: Moves) -> Particle:
    """The particle after a velocity (`updateParticle` in utils.py); validity is restored by `repair`."""
    conv, fc = split(particle)
    return (*_apply_part(conv, moves.conv), *_apply_part(fc[::-1], moves.fc[::-1])[::-1])


def _apply_part(layers: Particle, steps: tuple[Step, ...]) -> Particle:
    out = []
    # Velocities are never shorter than the particle; the original would crash if one were, here the
    # missing steps keep the layer.
    for layer, step in zip_longest(layers, steps):
        if step is None or step == KEEP:
            if layer is not None:
                out.append(layer)
        elif step != REMOVE:
            out.append(step)
    return tuple(out)


def max_pools(input_shape: tuple[int, ...]) -> int:
    """How often the input halves while wider than 4 (`Population.__init__` in population.py).

    The original counts on the width of square pictures; the smallest axis does the same for any input: a clip's
    frames or side, a signal's length (GunPoint's 150 instants: 6 pools, JapaneseVowels' 29: 3).
    """
    width, count = min(input_shape[1:]), 0
    while width > 4:
        count, width = count + 1, width / 2
    return count


def decode(particle: Particle, dropout: float = 0.5) -> Spec:
    """The network `Particle.model_compile` (particle.py) builds: conv bn relu, dropout before every conv
    but the first and before every fc, fc bn relu; the last dropout is the one before the classifier."""
    layers: list[Layer] = []
    for i, layer in enumerate(particle):
        if isinstance(layer, Pool):
            layers.append(layer)
            continue
        if i > 0 or isinstance(layer, FC):
            layers.append(Dropout(dropout))
        layers += [layer, BatchNorm(), ReLU()]
    layers.append(Dropout(dropout))
    return Spec(tuple(layers))


class PsoCNN(Strategy):
    """The swarm of psoCNN; psoCNN's own ranges replace the search space, which is not used. On signals they stay
    the paper's (features of 3-6 instants, pools while the length exceeds 4): the published method, not adapted."""

    name = "psocnn"
    swarm_size = 20
    cg = 0.5  # probability of following the global best rather than the personal best, per position
    dropout = 0.5
    # Ranges are inclusive and read off the original's np.random.randint calls, whose upper bound is
    # exclusive: randint(3, 20) layers, randint(3, 256) features, randint(3, 7) sizes, randint(1, 300) neurons.
    depth = (3, 19)  # counting the classifier, which replaces the last drawn layer as in the original
    features = (3, 255)
    sizes = (3, 6)
    neurons = (1, 299)
    conv_probability = 0.6  # of each new layer after the first; pool 0.3, fc the rest
    pool_probability = 0.3
    paper_training: ClassVar[dict] = {"epochs": 1, "lr": 1e-3, "batch_size": 64, "final_epochs": 100}

    def __init__(self, space, input_shape: tuple[int, ...], seed: int = 0) -> None:
        super().__init__(space, input_shape, seed)
        self.max_pools = max_pools(self.input_shape)
        self.positions: list[Particle] = [self.random_particle() for _ in range(self.swarm_size)]
        self.pbest: list[Particle] = list(self.positions)
        self.pbest_scores: list[float] = [WORST] * self.swarm_size
        self.gbest: Particle | None = None
        self.gbest_score = WORST

    def random_particle(self) -> Particle:
        """A new particle as `Particle.initialization` (particle.py) draws one, then repaired."""
        depth = int(self.rng.integers(self.depth[0], self.depth[1] + 1))
        layers: list[Hidden] = [self._random_conv()]
        pools = 0
        for _ in range(1, depth):
            u = 1.0 if isinstance(layers[-1], FC) else self.rng.random()
            if u < self.conv_probability:
                layers.append(self._random_conv())
            elif u <= self.conv_probability + self.pool_probability:
                if pools < self.max_pools:  # over the limit the original adds nothing: the particle is shorter
                    pools += 1
                    layers.append(Pool("max" if self.rng.random() < 0.5 else "avg", 3, 2))
            else:
                layers.append(FC(int(self.rng.integers(self.neurons[0], self.neurons[1] + 1))))
        # The original overwrites the last layer with the output layer; swarmcnn's classifier is implicit.
        return self.repair(tuple(layers[:-1]))

    def _random_conv(self) -> Conv:
        features = int(self.rng.integers(self.features[0], self.features[1] + 1))
        return Conv(features, int(self.rng.integers(self.sizes[0], self.sizes[1] + 1)))

    def repair(self, particle: Particle) -> Particle:
        """A particle valid for the input: conv first, fc last, at most `max_pools` pools, none too small.

        The original's `Particle.validate` (particle.py) only limits the pools; moves keep a conv first
        and fc last on their own, so the other repairs are guards that the swarm's moves never need.
        """
        layers = [layer for layer in particle if not isinstance(layer, FC)]
        fcs = [layer for layer in particle if isinstance(layer, FC)]
        while layers and not isinstance(layers[0], Conv):
            layers.pop(0)
        if not layers:
            layers.append(self._random_conv())
        kept, pools, spatial = [], 0, self.input_shape[1:]
        for layer in layers:
            if isinstance(layer, Pool):
                windows, steps = pool_geometry(layer, len(spatial))
                if pools >= self.max_pools or any(n < w for n, w in zip(spatial, windows)):
                    continue  # the original drops pools over the limit; too small a picture drops them too
                pools += 1
                spatial = tuple((n - w) // s + 1 for n, w, s in zip(spatial, windows, steps))
            kept.append(layer)
        return (*kept, *fcs)

    def _propose(self) -> list[Candidate]:
        if self.generation > 0:
            self.positions = [self._move(i) for i in range(self.swarm_size)]
        return [Candidate(decode(p, self.dropout), {"particle": i}) for i, p in enumerate(self.positions)]

    def _move(self, i: int) -> Particle:
        """`Particle.velocity` then `Particle.update` (particle.py)."""
        position = self.positions[i]
        moves = velocity(difference(self.pbest[i], position), difference(self.gbest, position), self.cg, self.rng)
        return self.repair(apply(position, moves))

    def _learn(self, candidates: list[Candidate], scores: list[float]) -> None:
        """Personal bests, then the global best, in particle order as the original's loop keeps them."""
        for candidate, score in zip(candidates, scores):
            i = candidate.origin["particle"]
            score = WORST if math.isnan(score) else score
            if self.generation == 0 or score > self.pbest_scores[i]:  # generation 0: the particle itself
                self.pbest[i], self.pbest_scores[i] = self.positions[i], score
            if self.gbest is None or self.pbest_scores[i] > self.gbest_score:
                self.gbest, self.gbest_score = self.pbest[i], self.pbest_scores[i]

    def state_dict(self) -> dict:
        return {
            **super().state_dict(),
            "positions": [_text(p) for p in self.positions],
            "pbest": [_text(p) for p in self.pbest],
            "pbest_scores": [score_to_json(s) for s in self.pbest_scores],
            "gbest": None if self.gbest is None else _text(self.gbest),
            "gbest_score": score_to_json(self.gbest_score),
        }

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.positions = [_particle(text) for text in state["positions"]]
        self.pbest = [_particle(text) for text in state["pbest"]]
        self.pbest_scores = [score_from_json(s) for s in state["pbest_scores"]]
        self.gbest = None if state["gbest"] is None else _particle(state["gbest"])
        self.gbest_score = score_from_json(state["gbest_score"])


def _text(particle: Particle) -> str:
    return str(Spec(particle))


def _particle(text: str) -> Particle:
    return Spec.parse(text).layers
