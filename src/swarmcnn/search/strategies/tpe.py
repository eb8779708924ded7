"""Optuna's Tree-structured Parzen Estimator over swarmcnn's space, through the same ask/tell as the swarms.

TPE (Bergstra et al., "Algorithms for hyper-parameter optimization", NeurIPS 2011) models the good and the
bad positions of the unit cube `SearchSpace.decode` reads, and asks where their density ratio is highest.
Optuna does the modelling (`pip install 'swarmcnn[tpe]'`); this file only maps its trials to specs.

The sampler is rebuilt at every ask from everything told so far, with a seed drawn from the strategy's own
generator: its state is then the told history plus that generator, which round-trips through JSON exactly
(Optuna's own sampler state does not). Candidates that failed are told FAILED_VALUE, below any score, so
that TPE learns to avoid their region (Optuna's failed trials would be ignored instead).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from swarmcnn.errors import SwarmCNNError
from swarmcnn.search.strategies.base import Candidate, Strategy

FAILED_VALUE = -1.0  # scores are accuracies (0..1), less at most 0.07 for size with objective accuracy-params


class TreeParzen(Strategy):
    name = "tpe"
    batch = 8  # candidates per ask, as the swarm's size
    startup = 10  # random trials before TPE models anything (Optuna's default)

    def __init__(self, space, input_shape, seed: int = 0) -> None:
        super().__init__(space, input_shape, seed)
        _optuna()  # a missing extra fails when the search is configured, not after data is loaded
        self.history: list[tuple[list[float], float]] = []  # (position, told value), in order

    def _propose(self) -> list[Candidate]:
        optuna = _optuna()
        unit = optuna.distributions.FloatDistribution(0.0, 1.0)
        distributions = {f"u{i}": unit for i in range(self.space.dimensions)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(
                seed=int(self.rng.integers(2**31)),
                n_startup_trials=self.startup,
                multivariate=True,  # the genes of a block act together
                constant_liar=True,  # a batch asked before any tell spreads out instead of repeating itself
            )
        study = optuna.create_study(direction="maximize", sampler=sampler)
        for position, value in self.history:
            params = {f"u{i}": p for i, p in enumerate(position)}
            study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=value))
        self._trials = [study.ask(distributions) for _ in range(self.batch)]
        positions = [np.array([t.params[f"u{i}"] for i in range(self.space.dimensions)]) for t in self._trials]
        return [
            Candidate(self.space.decode(p, self.input_shape), {"trial": len(self.history) + i})
            for i, p in enumerate(positions)
        ]

    def _learn(self, candidates: list[Candidate], scores: list[float]) -> None:
        for trial, score in zip(self._trials, scores):
            position = [trial.params[f"u{i}"] for i in range(self.space.dimensions)]
            self.history.append((position, float(score) if math.isfinite(score) else FAILED_VALUE))

    def state_dict(self) -> dict:
        return {**super().state_dict(), "history": [[position, value] for position, value in self.history]}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.history = [(list(position), float(value)) for position, value in state["history"]]


def _optuna():
    try:
        import optuna
    except ImportError:
        raise SwarmCNNError("strategy 'tpe' needs Optuna: pip install 'swarmcnn[tpe]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per trial on the user's terminal
    return optuna
