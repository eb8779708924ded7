"""The contract every registered strategy satisfies, as Optuna tests all its samplers with one suite.

A strategy added to the registry inherits every check here: valid specs for images, video and signals, determinism,
an exact resume through JSON, a monotone best, surviving failed generations. No training: the scores are
stand-ins computed from the spec.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from swarmcnn.errors import SwarmCNNError
from swarmcnn.search.space import SearchSpace
from swarmcnn.search.strategies import WORST, Strategy, get_strategy, list_strategies
from swarmcnn.search.strategies.psocnn import decode as psocnn_decode
from swarmcnn.spec import FC, Conv, GlobalPool, Pool, Spec, Whiten

STRATEGIES = list_strategies()
SWARMS = ["pso", "psocnn"]
SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 8, 16, 16), (2, 96), (1, 8)]  # pictures, a clip, signals
LANDSCAPE_SHAPE = (1, 28, 28)


def make(name: str, shape: tuple[int, ...] = (1, 28, 28), seed: int = 0) -> Strategy:
    return get_strategy(name)(SearchSpace.default_for(shape), shape, seed=seed)  # as the search makes them


def toy(spec: Spec, shape: tuple[int, ...] = LANDSCAPE_SHAPE) -> float:
    """A stand-in for accuracy, 0 at best: four convolutions of 32 features (log2 distance) in at most
    40k parameters (for inputs of `shape`), half a point lost per doubling beyond. The peak needs depth, width,
    kernel size and pooling right at once, and both search spaces reach it (see the test of the landscape itself)."""
    convs = [layer for layer in spec.layers if isinstance(layer, Conv)]
    width = sum(abs(math.log2(c.features / 32)) for c in convs) / max(len(convs), 1)
    params = spec.num_params(shape, 10)
    return -abs(len(convs) - 4) - width - 0.5 * max(0.0, math.log2(params / 40_000))


def flaky(spec: Spec) -> float:
    """The toy score, but about a third of the candidates fail, as diverged ones do in the loop."""
    return WORST if len(str(spec)) % 3 == 0 else toy(spec)


def run(strategy: Strategy, generations: int, score=toy) -> list[list[str]]:
    asked = []
    for _ in range(generations):
        candidates = strategy.ask()
        asked.append([str(c.spec) for c in candidates])
        strategy.tell([score(c.spec) for c in candidates])
    return asked


def assert_valid(spec: Spec, shape: tuple[int, ...]) -> None:
    spec.shapes(shape)  # raises if a layer cannot fit
    assert isinstance(spec.layers[0], (Conv, Whiten)), spec  # a convolution, or a whitening stem before one
    assert any(isinstance(layer, Conv) for layer in spec.layers), spec
    first_fc = next((i for i, layer in enumerate(spec.layers) if isinstance(layer, FC)), len(spec.layers))
    assert not any(isinstance(layer, (Conv, Pool, GlobalPool)) for layer in spec.layers[first_fc:]), spec
    assert Spec.parse(str(spec)) == spec  # the journal and the state keep specs as text


# --- the registry ---------------------------------------------------------------------------------------


def test_the_registry_lists_the_three_strategies():
    assert set(STRATEGIES) >= {"pso", "psocnn", "random"}


@pytest.mark.parametrize("name", STRATEGIES)
def test_each_registered_strategy_is_found_under_its_own_name(name):
    strategy = get_strategy(name)
    assert issubclass(strategy, Strategy)
    assert strategy.name == name


def test_an_unknown_strategy_raises_with_a_did_you_mean_hint():
    with pytest.raises(SwarmCNNError, match=r"unknown strategy 'psocn'.*did you mean 'psocnn'\?"):
        get_strategy("psocn")
    with pytest.raises(SwarmCNNError, match="unknown strategy 'annealing'; choose one of pso, psocnn, random"):
        get_strategy("annealing")


# --- the contract ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", STRATEGIES)
def test_every_asked_candidate_is_a_valid_spec_for_the_input(name, shape):
    strategy = make(name, shape, seed=3)
    noise = np.random.default_rng(0)
    for _ in range(6):
        candidates = strategy.ask()
        assert candidates, "ask() gave no candidates"
        for candidate in candidates:
            assert_valid(candidate.spec, shape)
            json.dumps(candidate.origin)  # the journal stores where a candidate came from
        strategy.tell([toy(c.spec, shape) + noise.normal(0, 0.5) for c in candidates])


@pytest.mark.parametrize("name", STRATEGIES)
def test_telling_the_wrong_number_of_scores_raises_and_changes_nothing(name):
    strategy = make(name)
    candidates = strategy.ask()
    with pytest.raises(ValueError, match="scores"):
        strategy.tell([0.5] * (len(candidates) - 1))
    with pytest.raises(ValueError, match="scores"):
        strategy.tell([0.5] * (len(candidates) + 1))
    assert strategy.generation == 0 and strategy.best_score == WORST
    strategy.tell([0.5] * len(candidates))  # the right number is still accepted
    assert strategy.generation == 1
    with pytest.raises(ValueError, match="scores"):  # one ask, one tell
        strategy.tell([0.5] * len(candidates))


@pytest.mark.parametrize("name", STRATEGIES)
def test_same_seed_and_scores_give_the_same_asks_and_other_seeds_differ(name):
    first = run(make(name, seed=11), 4, flaky)
    assert run(make(name, seed=11), 4, flaky) == first
    assert make(name, seed=12).ask() != make(name, seed=11).ask()
    assert run(make(name, seed=12), 1)[0] != first[0]


@pytest.mark.parametrize("name", STRATEGIES)
def test_state_round_trip_through_json_continues_with_exactly_the_same_asks(name):
    shape = (3, 32, 32)
    original = make(name, shape, seed=7)
    run(original, 3, flaky)
    state = json.loads(json.dumps(original.state_dict(), allow_nan=False))  # -inf is not JSON
    resumed = make(name, shape, seed=7)
    resumed.load_state_dict(state)
    assert resumed.generation == 3
    assert resumed.best_score == original.best_score and resumed.best_spec == original.best_spec
    assert run(resumed, 4, flaky) == run(original, 4, flaky)
    assert resumed.state_dict() == original.state_dict()


@pytest.mark.parametrize("name", STRATEGIES)
def test_state_round_trip_after_only_failures_continues_identically(name):
    original = make(name, seed=8)
    run(original, 2, lambda spec: WORST)
    assert original.best_spec is None and original.best_score == WORST
    resumed = make(name, seed=8)
    resumed.load_state_dict(json.loads(json.dumps(original.state_dict(), allow_nan=False)))
    assert resumed.best_spec is None and resumed.best_score == WORST
    assert run(resumed, 3, flaky) == run(original, 3, flaky)


@pytest.mark.parametrize("name", STRATEGIES)
def test_best_score_never_decreases_and_best_spec_is_the_first_argmax_of_all_told(name):
    strategy = make(name, (1, 8, 8), seed=5)
    noise = np.random.default_rng(1)
    told: list[tuple[Spec, float]] = []
    previous = WORST
    for _ in range(6):
        candidates = strategy.ask()
        scores = [flaky(c.spec) + noise.normal(0, 0.3) for c in candidates]
        strategy.tell(scores)
        told += [(c.spec, s) for c, s in zip(candidates, scores)]
        assert strategy.best_score >= previous
        best_spec, best_score = max(told, key=lambda pair: pair[1])  # max keeps the first of equals
        assert strategy.best_score == best_score
        assert strategy.best_spec == best_spec
        previous = strategy.best_score


@pytest.mark.parametrize("name", STRATEGIES)
def test_generations_that_all_fail_are_survived(name):
    shape = (1, 8, 8)
    strategy = make(name, shape, seed=2)
    for generation in range(6):
        candidates = strategy.ask()
        assert candidates
        for candidate in candidates:
            assert_valid(candidate.spec, shape)
        failed = generation in (0, 1, 4)
        strategy.tell([WORST if failed else toy(c.spec) for c in candidates])
        if generation < 2:
            assert strategy.best_spec is None and strategy.best_score == WORST
    assert strategy.best_score > WORST


# --- search quality -------------------------------------------------------------------------------------


def test_the_toy_landscape_peaks_in_both_search_spaces():
    """Fairness of the comparison below: the peak is reachable by pso's space and by psocnn's layers."""
    peak = "conv32x3 bn relu maxpool2 conv32x3 bn relu maxpool2 conv32x3 bn relu conv32x3 bn relu maxpool2"
    assert toy(Spec.parse(peak)) == 0
    pool = Pool("max", 3, 2)
    particle = (Conv(32, 3), pool, Conv(32, 3), pool, Conv(32, 3), Conv(32, 3), pool)
    assert toy(psocnn_decode(particle)) == 0
    assert toy(Spec.parse("conv32x5 bn relu conv32x5 bn relu conv32x5 bn relu conv32x5 bn relu")) < -1


def best_after(name: str, evaluations: int, seed: int) -> float:
    strategy = make(name, LANDSCAPE_SHAPE, seed=seed)
    told = 0
    while told < evaluations:
        candidates = strategy.ask()
        strategy.tell([toy(c.spec) for c in candidates])
        told += len(candidates)
    assert told == evaluations  # same budget for both sides
    return strategy.best_score


def test_psocnn_beats_random_draws_from_its_own_space_with_the_same_number_of_evaluations():
    """psoCNN draws particles from its own wide ranges (up to 18 layers, 3-255 features), far from pso's space:
    against random search over pso's space it loses (mean best -2.2 vs -0.7 here), so the fair baseline for
    its swarm mechanics is random sampling of its own initial distribution."""
    evaluations, seeds = 10 * get_strategy("psocnn").swarm_size, range(5)
    swarm = np.mean([best_after("psocnn", evaluations, seed) for seed in seeds])
    draws = []
    for seed in seeds:
        sampler = make("psocnn", LANDSCAPE_SHAPE, seed=100 + seed)
        draws.append(max(toy(psocnn_decode(sampler.random_particle())) for _ in range(evaluations)))
    assert swarm > np.mean(draws), f"psocnn {swarm:.3f} vs its own random draws {np.mean(draws):.3f}"


@pytest.mark.parametrize("name", ["pso"])
def test_the_swarm_beats_random_search_with_the_same_number_of_evaluations(name):
    evaluations = 10 * get_strategy(name).swarm_size
    seeds = range(5)
    swarm = np.mean([best_after(name, evaluations, seed) for seed in seeds])
    random = np.mean([best_after("random", evaluations, seed) for seed in seeds])
    assert random < -0.3, "the peak is hit by random sampling: the landscape is too easy"
    assert swarm > random, f"{name} {swarm:.3f} vs random {random:.3f}"


def test_pso_does_not_ask_again_for_specs_already_scored():
    asked, repeats = 0, 0
    for seed in range(3):
        strategy = make("pso", (1, 8, 8), seed=seed)  # a small input: few pools fit, repeats come easily
        scored: set[str] = set()
        for _ in range(15):
            candidates = strategy.ask()
            texts = [str(c.spec) for c in candidates]
            repeats += sum(text in scored for text in texts) + len(texts) - len(set(texts))
            asked += len(texts)
            strategy.tell([toy(c.spec) for c in candidates])
            scored.update(texts)
    # without its nudges pso repeats about 7% of these asks; with them, none so far
    assert repeats <= 0.02 * asked, f"{repeats} of {asked} asks repeat a scored spec"
