"""The interface every search strategy shares: ask for a batch of specs, tell their scores.

A strategy proposes and learns; it never trains, writes files or prints (the loop does), so that the
same strategy runs on one CPU, in worker processes or on a Ray cluster, and can be tested without training.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from swarmcnn.search.space import SearchSpace
from swarmcnn.spec import Spec

WORST = -math.inf  # the score of a candidate that failed (diverged, too large, raised)


@dataclass(frozen=True)
class Candidate:
    """One proposal: the spec to score and where it came from (for the journal)."""

    spec: Spec
    origin: dict = field(default_factory=dict)  # JSON-able, e.g. {"particle": 3}


class Strategy(abc.ABC):
    """Ask/tell over generations: `ask()` gives a batch, `tell(scores)` gives back one score per candidate.

    Scores are "higher is better" (validation accuracy, or a size-penalised variant); a failed candidate
    scores WORST. The state (positions, bests, random generator) round-trips through JSON, so that a killed
    search resumes exactly where its last finished generation left it.
    """

    name: ClassVar[str]

    def __init__(self, space: SearchSpace, input_shape: tuple[int, ...], seed: int = 0) -> None:
        self.space = space
        self.input_shape = tuple(input_shape)
        self.rng = np.random.default_rng(seed)
        self.generation = 0
        self.best_spec: Spec | None = None
        self.best_score = WORST

    def ask(self) -> list[Candidate]:
        """The next generation of candidates (never empty)."""
        self._asked = self._propose()
        return list(self._asked)

    def tell(self, scores: list[float]) -> None:
        """Learn from the scores of the last `ask()`, in the same order."""
        asked = getattr(self, "_asked", [])
        if len(scores) != len(asked):
            raise ValueError(f"told {len(scores)} scores for {len(asked)} candidates")
        for candidate, score in zip(asked, scores):
            if score > self.best_score:
                self.best_spec, self.best_score = candidate.spec, score
        self._learn(asked, scores)
        self.generation += 1
        self._asked = []

    @abc.abstractmethod
    def _propose(self) -> list[Candidate]: ...

    @abc.abstractmethod
    def _learn(self, candidates: list[Candidate], scores: list[float]) -> None: ...

    def state_dict(self) -> dict:
        """Everything needed to continue: JSON-able."""
        return {
            "generation": self.generation,
            "rng": self.rng.bit_generator.state,
            "best_spec": str(self.best_spec) if self.best_spec is not None else None,
            "best_score": score_to_json(self.best_score),
        }

    def load_state_dict(self, state: dict) -> None:
        self.generation = state["generation"]
        self.rng.bit_generator.state = state["rng"]
        self.best_spec = Spec.parse(state["best_spec"]) if state["best_spec"] else None
        self.best_score = score_from_json(state["best_score"])


def score_to_json(value: float) -> float | None:
    """JSON has no -inf: the worst score is stored as null."""
    return None if value == WORST else float(value)


def score_from_json(value: float | None) -> float:
    return WORST if value is None else float(value)
