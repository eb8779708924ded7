"""Uniform sampling from the search space: the baseline every search method must beat."""

from __future__ import annotations

from swarmcnn.search.strategies.base import Candidate, Strategy


class RandomSearch(Strategy):
    name = "random"
    batch = 8  # candidates per ask; the order of specs does not depend on it

    def _propose(self) -> list[Candidate]:
        return [Candidate(self.space.sample(self.rng, self.input_shape)) for _ in range(self.batch)]

    def _learn(self, candidates: list[Candidate], scores: list[float]) -> None:
        """Random search learns nothing; the base class keeps the best."""
