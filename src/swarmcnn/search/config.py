"""A search's settings: what the user asked for, checked where it enters, and the same again as the journal
gives it back (every value checked against its field's type) so that `--resume` continues exactly that search."""

from __future__ import annotations

import dataclasses
import numbers
import types
import typing
from dataclasses import asdict, dataclass, field, replace

from swarmcnn.data import DataConfig
from swarmcnn.errors import SwarmCNNError
from swarmcnn.hardware import resolve
from swarmcnn.search.budget import FITNESSES
from swarmcnn.search.evaluate import EvaluationConfig
from swarmcnn.search.journal import Journal
from swarmcnn.search.space import SearchSpace
from swarmcnn.search.strategies import get_strategy

DEFAULT_EVALUATIONS = 40  # with neither a budget nor a count


@dataclass(frozen=True)
class SearchConfig:
    source: str
    strategy: str = "pso"
    evaluations: int | None = None  # stop after this many candidates (rung 0)
    budget_seconds: float | None = None  # or after this much wall clock, final training included
    workers: int = 1
    seed: int = 0
    final_epochs: int | None = None  # None: as many as the budget holds, DEFAULT_FINAL_EPOCHS without a budget
    rungs: int = 2  # promotion rungs above rung 0, each on ETA times the images (0: the best of rung 0 wins)
    designs: bool = True  # the hand-designed networks (swarmcnn.designs) are the first candidates
    fitness: str = "auto"  # what the swarm is told: "supernet" or "training" (budget.py); auto: by the budget
    augment: bool = False  # random shifts in every training (candidates and final)
    flip: bool = False  # random horizontal flips in every training
    space: SearchSpace | None = None  # None: the default space for the data's shape (SearchSpace.default_for)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        get_strategy(self.strategy)  # an unknown name fails here, before anything runs
        if self.evaluations is not None and self.evaluations < 1:
            raise SwarmCNNError(f"--evaluations must be at least 1, got {self.evaluations}")
        if self.budget_seconds is not None and self.budget_seconds <= 0:
            raise SwarmCNNError(f"--budget must be positive, got {self.budget_seconds}s")
        if self.workers < 1:
            raise SwarmCNNError(f"--workers must be at least 1, got {self.workers}")
        if self.final_epochs is not None and self.final_epochs < 1:
            raise SwarmCNNError(f"--final-epochs must be at least 1, got {self.final_epochs}")
        if self.rungs < 0:
            raise SwarmCNNError(f"--rungs must not be negative, got {self.rungs}")
        seed = self.seed  # numpy's generators take no negative seed, torch's none of 2**64 or more
        if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or not 0 <= seed < 2**64:
            raise SwarmCNNError(f"--seed must be a whole number from 0 to 2**64 - 1, got {seed!r}")
        if self.data.val_fraction == 0:
            raise SwarmCNNError(
                "--val-fraction 0 leaves no validation split, and the search scores every candidate on it; "
                "give a share such as 0.15"
            )
        if self.fitness not in ("auto", *FITNESSES):
            raise SwarmCNNError(f"unknown fitness '{self.fitness}'; choose one of auto, {', '.join(FITNESSES)}")
        if self.fitness == "supernet" and self.budget_seconds is None:
            raise SwarmCNNError("--fitness supernet shares a budget's time between the supernet and the ladder; "
                                "give --budget, or use --fitness training with --evaluations")
        if self.evaluations is None and self.budget_seconds is None:
            object.__setattr__(self, "evaluations", DEFAULT_EVALUATIONS)

    @property
    def fitness_for_budget(self) -> str:
        """The fitness of a budgeted search: the supernet unless training is asked for (budget.py)."""
        return "supernet" if self.fitness == "auto" else self.fitness

    def on_this_machine(self) -> SearchConfig:
        """The config with its device and precision decided here ('auto' resolved), so that the journal records
        what the run uses and a resume keeps it."""
        hardware = resolve(self.evaluation.device, self.evaluation.precision)
        evaluation = replace(self.evaluation, device=str(hardware.device), precision=hardware.precision)
        return replace(self, evaluation=evaluation)

    def to_dict(self) -> dict:
        return {**asdict(self), "space": None if self.space is None else self.space.to_dict()}

    @classmethod
    def from_dict(cls, values: dict) -> SearchConfig:
        """The config of `to_dict`; a value of the wrong type (a file edited by hand) raises TypeError."""
        data = dict(_typed(DataConfig, values["data"]))
        if data.get("image_size") is not None:
            data["image_size"] = tuple(data["image_size"])
        return cls(
            **{
                **_typed(cls, values),
                "space": None if values.get("space") is None else SearchSpace.from_dict(values["space"]),
                "evaluation": EvaluationConfig(**_typed(EvaluationConfig, values["evaluation"])),
                "data": DataConfig(**data),
            }
        )

    @classmethod
    def from_journal(cls, journal: Journal) -> SearchConfig:
        """The run's settings as its journal holds them: settings that make no search name the journal damaged."""
        settings = journal.get("settings")
        if not isinstance(settings, dict):
            raise journal.damaged(f"its settings are {type(settings).__name__}, not a JSON object")
        try:
            return cls.from_dict(settings)
        except KeyError as error:
            raise journal.damaged(f"its settings lack {error}") from None
        except (SwarmCNNError, TypeError, ValueError, AttributeError) as error:
            raise journal.damaged(f"its settings make no search: {error}") from None


def _typed(kind: type, values: dict) -> dict:
    """values, each checked against its field's type in the dataclass `kind`; TypeError names the first wrong one."""
    if not isinstance(values, dict):
        raise TypeError(f"{kind.__name__} is {values!r}, not a JSON object")
    hints = typing.get_type_hints(kind)
    for name, value in values.items():
        if name in hints and not _is_a(value, hints[name]):
            raise TypeError(f"{name} is {value!r}, not of type {hints[name]}")
    return values


def _is_a(value, hint) -> bool:
    """isinstance for the types of config fields as JSON gives them back: an int is a float, a bool is not a number,
    a list is a tuple, a dataclass is a dict (checked on its own)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_is_a(value, option) for option in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return isinstance(value, (list, tuple)) and all(_is_a(v, typing.get_args(hint)[0]) for v in value)
    if hint in (int, float) and isinstance(value, bool):
        return False
    if hint is float:
        return isinstance(value, (int, float))
    if dataclasses.is_dataclass(hint):
        return isinstance(value, dict)
    return isinstance(value, hint) if isinstance(hint, type) else True
