"""swarmcnn's particle swarm: continuous positions decoded to variable-length architectures.

Each particle is a point of the unit cube; `SearchSpace.decode` turns it into a spec (number of blocks and
fc layers, features, sizes, pooling ... each read off one coordinate), so the classic PSO update of
Kennedy & Eberhart applies unchanged, with the refinements of Shi & Eberhart (1998): inertia that decays
from exploration to exploitation, and a velocity clamp. Two additions suit an expensive, discrete objective:
- a particle that decodes to a spec already scored is nudged until it proposes something new, so that the
  budget is spent on new networks (the loop never retrains a spec either);
- a particle whose personal best has not improved for `stagnation` generations is re-seeded, half of the
  time near the global best and half of the time anywhere, which keeps the swarm from collapsing.
"""

from __future__ import annotations

import numpy as np

from swarmcnn.search.strategies.base import WORST, Candidate, Strategy, score_from_json, score_to_json
from swarmcnn.spec import Spec


class ParticleSwarm(Strategy):
    name = "pso"
    swarm_size = 8
    inertia = (0.9, 0.4)  # from, to: halves its distance to the end every `inertia_half_life` generations
    inertia_half_life = 3
    cognitive = 1.5  # pull towards the particle's own best
    social = 1.5  # pull towards the swarm's best
    max_velocity = 0.25  # per coordinate, in units of the cube's side
    stagnation = 3  # generations without a better personal best before a particle is re-seeded
    nudges = 8  # attempts to move a particle off an already scored spec

    def __init__(self, space, input_shape, seed: int = 0) -> None:
        super().__init__(space, input_shape, seed)
        d = space.dimensions
        self.position = self.rng.random((self.swarm_size, d))
        self.velocity = self.rng.uniform(-self.max_velocity, self.max_velocity, (self.swarm_size, d)) / 2
        self.best_position = self.position.copy()
        self.best_scores = np.full(self.swarm_size, WORST)
        self.stale = np.zeros(self.swarm_size, dtype=int)
        self.global_position: np.ndarray | None = None
        self.scored: dict[str, float] = {}

    def _propose(self) -> list[Candidate]:
        if self.generation > 0:
            self._move()
        specs, fresh = [], set()
        for i in range(self.swarm_size):
            spec = self._fresh_spec(i, fresh)
            fresh.add(str(spec))
            specs.append(Candidate(spec, {"particle": i}))
        return specs

    def _move(self) -> None:
        w_start, w_end = self.inertia
        w = w_end + (w_start - w_end) * 0.5 ** ((self.generation - 1) / self.inertia_half_life)
        r1, r2 = self.rng.random(self.position.shape), self.rng.random(self.position.shape)
        self.velocity = (
            w * self.velocity
            + self.cognitive * r1 * (self.best_position - self.position)
            + self.social * r2 * (self.global_position - self.position)
        )
        np.clip(self.velocity, -self.max_velocity, self.max_velocity, out=self.velocity)
        self.position = self.position + self.velocity
        self._reflect()
        for i in np.flatnonzero(self.stale >= self.stagnation):
            self._reseed(i)

    def _reflect(self) -> None:
        """Bounce off the cube's faces, reversing the velocity there (keeps particles inside, unbiased)."""
        low, high = self.position < 0, self.position >= 1
        self.position[low] = -self.position[low]
        self.position[high] = 2 - self.position[high] - 1e-9
        self.velocity[low | high] *= -1
        np.clip(self.position, 0, 1 - 1e-9, out=self.position)

    def _reseed(self, i: int) -> None:
        if self.rng.random() < 0.5:
            self.position[i] = self.rng.random(self.space.dimensions)
        else:
            noise = self.rng.normal(0, self.max_velocity, self.space.dimensions)
            self.position[i] = np.clip(self.global_position + noise, 0, 1 - 1e-9)
        self.velocity[i] = self.rng.uniform(-self.max_velocity, self.max_velocity, self.space.dimensions) / 2
        self.stale[i] = 0

    def _fresh_spec(self, i: int, taken: set[str]) -> Spec:
        spec = self.space.decode(self.position[i], self.input_shape)
        for attempt in range(self.nudges):
            if str(spec) not in self.scored and str(spec) not in taken:
                break
            scale = self.max_velocity * (attempt + 1) / self.nudges
            self.position[i] = np.clip(self.position[i] + self.rng.normal(0, scale, self.space.dimensions), 0, 1 - 1e-9)
            spec = self.space.decode(self.position[i], self.input_shape)
        return spec

    def _learn(self, candidates: list[Candidate], scores: list[float]) -> None:
        for candidate, score in zip(candidates, scores):
            i = candidate.origin["particle"]
            self.scored[str(candidate.spec)] = score
            if score > self.best_scores[i]:
                self.best_scores[i], self.best_position[i], self.stale[i] = score, self.position[i].copy(), 0
            else:
                self.stale[i] += 1
        best = int(np.argmax(self.best_scores))
        self.global_position = self.best_position[best].copy()

    def state_dict(self) -> dict:
        return {
            **super().state_dict(),
            "position": self.position.tolist(),
            "velocity": self.velocity.tolist(),
            "best_position": self.best_position.tolist(),
            "best_scores": [score_to_json(s) for s in self.best_scores],
            "stale": self.stale.tolist(),
            "global_position": None if self.global_position is None else self.global_position.tolist(),
            "scored": {k: score_to_json(v) for k, v in self.scored.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.position = np.array(state["position"])
        self.velocity = np.array(state["velocity"])
        self.best_position = np.array(state["best_position"])
        self.best_scores = np.array([score_from_json(s) for s in state["best_scores"]])
        self.stale = np.array(state["stale"], dtype=int)
        self.global_position = None if state["global_position"] is None else np.array(state["global_position"])
        self.scored = {k: score_from_json(v) for k, v in state["scored"].items()}
