"""psoCNN (Fernandes Junior & Yen 2019): its rules on hand-made particles, and the swarm on a stand-in score.

No training here: the stand-in objective favours about four convolutions of 32 features and few fc layers.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest

from swarmcnn.search.space import SearchSpace
from swarmcnn.search.strategies import get_strategy
from swarmcnn.search.strategies.base import WORST
from swarmcnn.search.strategies.psocnn import (
    KEEP,
    REMOVE,
    Moves,
    PsoCNN,
    apply,
    decode,
    difference,
    max_pools,
    velocity,
)
from swarmcnn.spec import FC, BatchNorm, Conv, Pool, ReLU, Spec

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]
MAX, AVG = Pool("max", 3, 2), Pool("avg", 3, 2)


def objective(spec: Spec) -> float:
    convs = [layer for layer in spec.layers if isinstance(layer, Conv)]
    fcs = [layer for layer in spec.layers if isinstance(layer, FC)]
    width = sum(abs(math.log2(c.features / 32)) for c in convs) / max(len(convs), 1)
    return -abs(len(convs) - 4) - 0.5 * width - 0.25 * len(fcs)


def run(strategy: PsoCNN, generations: int, score=objective) -> list[list[str]]:
    asked = []
    for _ in range(generations):
        candidates = strategy.ask()
        asked.append([str(c.spec) for c in candidates])
        strategy.tell([score(c.spec) for c in candidates])
    return asked


class Draws:
    """A stand-in random generator that hands out the given numbers in order."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def random(self, n: int) -> np.ndarray:
        taken, self.values = self.values[:n], self.values[n:]
        return np.array(taken)


def test_the_registry_finds_psocnn_and_the_paper_training_settings():
    assert get_strategy("psocnn") is PsoCNN
    assert PsoCNN.paper_training == {"epochs": 1, "lr": 1e-3, "batch_size": 64, "final_epochs": 100}
    assert PsoCNN.swarm_size == 20


@pytest.mark.parametrize(("width", "pools"), [(4, 0), (5, 1), (8, 1), (28, 3), (32, 3), (64, 4)])
def test_pool_limit_counts_halvings_while_wider_than_4(width, pools):
    assert max_pools((1, width, width)) == pools


@pytest.mark.parametrize("shape", SHAPES)
def test_every_asked_spec_is_valid_for_the_input(shape):
    strategy = PsoCNN(SearchSpace(), shape, seed=3)
    noise = np.random.default_rng(0)
    for _ in range(6):
        candidates = strategy.ask()
        assert len(candidates) == PsoCNN.swarm_size
        assert [c.origin["particle"] for c in candidates] == list(range(PsoCNN.swarm_size))
        for candidate in candidates:
            spec = candidate.spec
            spec.shapes(shape)  # raises if a layer cannot fit
            assert isinstance(spec.layers[0], Conv)
            first_fc = next((i for i, layer in enumerate(spec.layers) if isinstance(layer, FC)), len(spec.layers))
            assert not any(isinstance(layer, (Conv, Pool)) for layer in spec.layers[first_fc:])
            assert sum(isinstance(layer, Pool) for layer in spec.layers) <= max_pools(shape)
            for i, layer in enumerate(spec.layers):
                if isinstance(layer, (Conv, FC)):
                    assert spec.layers[i + 1 : i + 3] == (BatchNorm(), ReLU())
        strategy.tell([objective(c.spec) + noise.normal(0, 0.5) for c in candidates])


def test_initial_depth_counting_the_classifier_is_uniform_over_3_to_19():
    strategy = PsoCNN(SearchSpace(), (1, 4096, 4096), seed=0)  # room for every pool the draws ask for
    depths = Counter(len(strategy.random_particle()) + 1 for _ in range(3000))
    assert sorted(depths) == list(range(3, 20))
    assert min(depths.values()) > 3000 / 17 / 2


@pytest.mark.parametrize("shape", SHAPES)
def test_initial_particles_start_with_a_conv_and_end_with_their_fc_layers(shape):
    strategy = PsoCNN(SearchSpace(), shape, seed=1)
    for _ in range(500):
        particle = strategy.random_particle()
        assert 1 <= len(particle) <= 18
        assert isinstance(particle[0], Conv)
        kinds = ["fc" if isinstance(layer, FC) else "conv/pool" for layer in particle]
        assert kinds == sorted(kinds, key=lambda kind: kind == "fc")
        for layer in particle:
            if isinstance(layer, Conv):
                assert 3 <= layer.features <= 255 and 3 <= layer.size <= 6
            elif isinstance(layer, FC):
                assert 1 <= layer.neurons <= 299
            else:
                assert layer in (MAX, AVG)


def test_difference_aligns_conv_and_pool_from_the_start_and_fc_from_the_end():
    p1 = (Conv(32, 3), MAX, Conv(64, 5), FC(100), FC(50))
    p2 = (Conv(16, 4), Conv(8, 3), FC(20))
    assert difference(p1, p2) == Moves(conv=(KEEP, MAX, Conv(64, 5)), fc=(FC(100), KEEP))
    assert difference(p2, p1) == Moves(conv=(KEEP, Conv(8, 3), REMOVE), fc=(REMOVE, KEEP))


def test_difference_compares_layer_types_so_features_and_sizes_stay():
    p1 = (Conv(256, 6), AVG, FC(7))
    p2 = (Conv(3, 3), MAX, FC(300))
    assert difference(p1, p2) == Moves(conv=(KEEP, AVG), fc=(KEEP,))
    assert difference(p1, p1) == Moves(conv=(KEEP, KEEP), fc=(KEEP,))


def test_velocity_takes_each_position_from_gbest_with_probability_cg_and_removes_what_it_lacks():
    particle = (Conv(32, 3), Conv(64, 3), FC(10))
    pbest = (Conv(16, 5), MAX, Conv(8, 3), FC(20), FC(30))
    gbest = (Conv(128, 4), FC(40))
    to_pbest, to_gbest = difference(pbest, particle), difference(gbest, particle)
    assert to_pbest == Moves(conv=(KEEP, MAX, Conv(8, 3)), fc=(FC(20), KEEP))
    assert to_gbest == Moves(conv=(KEEP, REMOVE), fc=(KEEP,))

    # conv part drawn from the first position, fc part from the last; u <= cg follows the global best
    moves = velocity(to_pbest, to_gbest, 0.5, Draws(0.2, 0.7, 0.5, 0.9, 0.1))
    assert moves == Moves(conv=(KEEP, MAX, REMOVE), fc=(REMOVE, KEEP))
    assert apply(particle, moves) == (Conv(32, 3), MAX, FC(10))

    towards_pbest = velocity(to_pbest, to_gbest, 0.5, Draws(*[0.6] * 5))
    assert towards_pbest == to_pbest
    assert apply(particle, towards_pbest) == (Conv(32, 3), MAX, Conv(8, 3), FC(20), FC(10))

    towards_gbest = velocity(to_pbest, to_gbest, 0.5, Draws(*[0.4] * 5))
    assert towards_gbest == Moves(conv=(KEEP, REMOVE, REMOVE), fc=(REMOVE, KEEP))
    assert apply(particle, towards_gbest) == (Conv(32, 3), FC(10))


def test_repair_keeps_a_conv_first_and_only_the_pools_that_are_allowed_and_fit():
    strategy = PsoCNN(SearchSpace(), (1, 28, 28), seed=0)
    assert strategy.repair((MAX, Conv(8, 3), MAX, AVG, MAX, MAX, FC(5))) == (Conv(8, 3), MAX, AVG, MAX, FC(5))
    conv_only = strategy.repair((MAX, FC(5)))
    assert isinstance(conv_only[0], Conv) and conv_only[1:] == (FC(5),)
    narrow = PsoCNN(SearchSpace(), (1, 28, 4), seed=0)  # the narrow side sets the limit
    assert narrow.max_pools == 0
    assert narrow.repair((Conv(8, 3), MAX, FC(5))) == (Conv(8, 3), FC(5))
    small = PsoCNN(SearchSpace(), (1, 8, 8), seed=0)
    small.max_pools = 5  # even where the count allows it, a pool that would not fit is dropped: 8 -> 3 -> 1
    assert small.repair((Conv(8, 3), MAX, AVG, MAX, FC(5))) == (Conv(8, 3), MAX, AVG, FC(5))


def test_decode_adds_batch_norm_relu_and_dropout_as_the_original_model():
    particle = (Conv(32, 3), MAX, Conv(64, 5), FC(100), FC(50))
    assert str(decode(particle)) == (
        "conv32x3 bn relu maxpool3s2 dropout0.5 conv64x5 bn relu "
        "dropout0.5 fc100 bn relu dropout0.5 fc50 bn relu dropout0.5"
    )


def test_personal_best_changes_only_on_a_strictly_better_score():
    strategy = PsoCNN(SearchSpace(), (1, 8, 8), seed=0)
    strategy.ask()
    strategy.tell([0.5] * strategy.swarm_size)
    first_bests, first_gbest = list(strategy.pbest), strategy.gbest
    assert first_gbest == strategy.positions[0]  # ties keep the earlier particle
    strategy.ask()
    strategy.tell([0.5] * strategy.swarm_size)
    assert strategy.pbest == first_bests and strategy.gbest == first_gbest
    strategy.ask()
    strategy.tell([0.6] + [0.4] * (strategy.swarm_size - 1))
    assert strategy.pbest[0] == strategy.positions[0] and strategy.pbest[1:] == first_bests[1:]
    assert strategy.gbest == strategy.positions[0] and strategy.gbest_score == 0.6


@pytest.mark.parametrize("shape", SHAPES)
def test_personal_and_global_best_scores_never_decrease(shape):
    strategy = PsoCNN(SearchSpace(), shape, seed=5)
    noise = np.random.default_rng(1)
    previous, previous_g = [WORST] * strategy.swarm_size, WORST
    for _ in range(8):
        candidates = strategy.ask()
        strategy.tell([objective(c.spec) + noise.normal(0, 1.0) for c in candidates])
        assert all(now >= before for now, before in zip(strategy.pbest_scores, previous))
        assert strategy.gbest_score >= previous_g
        assert strategy.gbest_score == max(strategy.pbest_scores) == strategy.best_score
        previous, previous_g = list(strategy.pbest_scores), strategy.gbest_score


def test_same_seed_and_scores_give_the_same_asks():
    first = run(PsoCNN(SearchSpace(), (1, 28, 28), seed=11), 5)
    again = run(PsoCNN(SearchSpace(), (1, 28, 28), seed=11), 5)
    other = run(PsoCNN(SearchSpace(), (1, 28, 28), seed=12), 5)
    assert first == again
    assert first != other


def test_state_round_trip_through_json_continues_identically():
    def score(spec: Spec) -> float:  # some candidates fail, as diverged ones do in the loop
        return WORST if len(spec.layers) > 40 else objective(spec)

    original = PsoCNN(SearchSpace(), (3, 32, 32), seed=7)
    run(original, 3, score)
    state = json.loads(json.dumps(original.state_dict(), allow_nan=False))
    resumed = PsoCNN(SearchSpace(), (3, 32, 32), seed=99)
    resumed.load_state_dict(state)
    assert resumed.generation == 3
    assert run(resumed, 4, score) == run(original, 4, score)
    assert resumed.state_dict() == original.state_dict()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_swarm_beats_its_first_generation_on_a_stand_in_objective(seed):
    strategy = PsoCNN(SearchSpace(), (1, 28, 28), seed=seed)
    asked = run(strategy, 9)
    first = max(objective(Spec.parse(text)) for text in asked[0])
    assert strategy.gbest_score > first
