"""The search loop: ask the strategy, evaluate what is new, journal it, tell; promote the finalists; train the best.

Resuming is the same loop: the strategy's state comes back from the journal's last finished generation,
and every spec it asks again that the journal already scored is told from the journal, not retrained.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from swarmcnn.checkpoint import TrainedModel
from swarmcnn.data import DataConfig, Dataset, load_data
from swarmcnn.errors import SwarmCNNError
from swarmcnn.search.budget import (
    candidate_seconds_limit,
    choose_final,
    final_plan,
    search_seconds_left,
    too_slow,
)
from swarmcnn.search.evaluate import EvaluationConfig
from swarmcnn.search.executors import InProcess, WorkerProcesses, available_cores
from swarmcnn.search.final import train_final
from swarmcnn.search.journal import EvaluationRecord, Journal, ranked
from swarmcnn.search.promotion import finalists, promotion_config
from swarmcnn.search.space import SearchSpace
from swarmcnn.search.strategies import get_strategy
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization, TrainReporter

DEFAULT_EVALUATIONS = 40  # with neither a budget nor a count: about two minutes on digits, 2 CPU cores
BEST_DIR = "best"
IDLE_GENERATIONS = 25  # generations in a row that propose nothing new: the space is exhausted


@dataclass(frozen=True)
class SearchConfig:
    source: str
    strategy: str = "pso"
    evaluations: int | None = None  # stop after this many trainings
    budget_seconds: float | None = None  # or after this much wall clock, final training included
    workers: int = 1
    seed: int = 0
    final_epochs: int = 30
    promote: int = 3  # the best this many candidates train again, longer, before the final choice
    augment: bool = False  # random shifts in the final training (candidates train without, to rank quickly)
    flip: bool = False  # random horizontal flips in the final training
    space: SearchSpace = field(default_factory=SearchSpace)
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
        if self.final_epochs < 1:
            raise SwarmCNNError(f"--final-epochs must be at least 1, got {self.final_epochs}")
        if self.promote < 0:
            raise SwarmCNNError(f"--promote must not be negative, got {self.promote}")
        if self.evaluations is None and self.budget_seconds is None:
            object.__setattr__(self, "evaluations", DEFAULT_EVALUATIONS)

    def to_dict(self) -> dict:
        return {**asdict(self), "space": self.space.to_dict()}

    @classmethod
    def from_dict(cls, values: dict) -> SearchConfig:
        data = dict(values["data"])
        if data.get("image_size") is not None:
            data["image_size"] = tuple(data["image_size"])
        return cls(
            **{
                **values,
                "space": SearchSpace.from_dict(values["space"]),
                "evaluation": EvaluationConfig(**values["evaluation"]),
                "data": DataConfig(**data),
            }
        )


@dataclass(frozen=True)
class SearchSummary:
    best_spec: str
    best_val_accuracy: float
    test_accuracy: float
    evaluations: int
    seconds: float
    model_dir: str


class SearchReporter:
    """Receives progress; the CLI's live display subclasses it. The loop itself never prints."""

    def start(self, config: SearchConfig, done: int) -> None: ...

    def evaluated(
        self,
        record: EvaluationRecord,
        best: EvaluationRecord | None,
        done: int,
        generation: int,
        seconds_left: float | None,
    ) -> None: ...

    def promoted(self, record: EvaluationRecord, epochs: int) -> None: ...

    def final_training(self, spec: str, epochs: int) -> TrainReporter | None: ...

    def stop(self) -> None: ...


class Search:
    """One run directory: journal, strategy and data, from a first start or a resume."""

    def __init__(
        self,
        run_dir: Path,
        config: SearchConfig,
        journal: Journal,
        reporter: SearchReporter,
        data: Dataset | None = None,
    ) -> None:
        self.run_dir, self.config, self.journal = Path(run_dir), config, journal
        self.reporter = reporter
        self.data = data or load_data(config.source, config.data)
        self.normalization = Normalization.of(self.data.train.x)
        self.evaluation = config.evaluation
        if config.budget_seconds is not None and config.evaluation.max_seconds is None:
            limit = candidate_seconds_limit(config.budget_seconds, config.final_epochs, self.data, config.evaluation)
            self.evaluation = replace(config.evaluation, max_seconds=limit)
        self.strategy = get_strategy(config.strategy)(config.space, self.data.input_shape, config.seed)
        state = journal.last_state()
        if state is not None:
            self.strategy.load_state_dict(state)
        self.known = {r.spec: r for r in journal.evaluations()}
        self.promoted = {r.spec: r for r in journal.evaluations("promotions")}
        self.elapsed_before = journal.get("search_seconds", 0.0)
        self.started = time.perf_counter()

    @classmethod
    def start(cls, run_dir: str | Path, config: SearchConfig, reporter: SearchReporter | None = None) -> Search:
        run_dir = Path(run_dir)
        if run_dir.exists() and not run_dir.is_dir():
            raise SwarmCNNError(f"--out '{run_dir}' exists and is not a folder")
        if run_dir.is_dir() and any(run_dir.iterdir()) and not (run_dir / "journal.sqlite").exists():
            raise SwarmCNNError(f"--out '{run_dir}' is a folder with other files in it; choose a new or empty folder")
        data = load_data(config.source, config.data)  # bad data fails before a journal is written
        return cls(run_dir, config, Journal.create(run_dir, config.to_dict()), reporter or SearchReporter(), data)

    @classmethod
    def resume(cls, run_dir: str | Path, reporter: SearchReporter | None = None) -> Search:
        journal = Journal.open(Path(run_dir))
        config = SearchConfig.from_dict(journal.get("settings"))
        return cls(Path(run_dir), config, journal, reporter or SearchReporter())

    # -- the loop ------------------------------------------------------------------------------------

    def run(self) -> SearchSummary:
        """Search until the budget ends, train the finalists again (promotion), then train the chosen spec on
        train+val and test it once."""
        final = self.journal.get("final")
        if final is None:
            self.reporter.start(self.config, len(self.known))
            executor = self._executor()
            try:
                self._search(executor)
            finally:
                executor.close()
                self.reporter.stop()
                self.journal.put("search_seconds", self._elapsed())
            self._promote()
            final = self._final_training()
        return SearchSummary(
            final["best_spec"],
            final["best_val_accuracy"],
            final["test_accuracy"],
            self.journal.count(),
            self._elapsed(),
            str(self.run_dir / BEST_DIR),
        )

    def _search(self, executor) -> None:
        idle = 0
        while not self._budget_spent() and idle < IDLE_GENERATIONS:
            candidates = self.strategy.ask()
            texts = [str(c.spec) for c in candidates]
            new = list(dict.fromkeys(t for t in texts if t not in self.known))[: self._evaluations_left()]
            skipped = [record for record in map(self._too_slow, new) if record is not None]
            skipped_specs = {r.spec for r in skipped}
            to_train = [t for t in new if t not in skipped_specs]
            trained = ((to_train[i], record) for i, record in executor.map([Spec.parse(t) for t in to_train]))
            for text, record in itertools.chain(((r.spec, r) for r in skipped), trained):
                origin = next(c.origin for c in candidates if str(c.spec) == text)
                record = replace(record, generation=self.strategy.generation, origin=origin)
                self._journal(record)
                self.known[record.spec] = record
                self.reporter.evaluated(
                    record, self.best(), len(self.known), self.strategy.generation, self._seconds_left()
                )
                if self._budget_spent():
                    executor.cancel_pending()  # what is already training is still recorded
            if any(t not in self.known for t in texts):
                return  # the budget ended inside this generation: its state is not saved, nothing is told
            self.strategy.tell([self.known[t].score for t in texts])
            self.journal.save_state(self.strategy.generation, self.strategy.state_dict())
            self.journal.put("search_seconds", self._elapsed())
            idle = 0 if new else idle + 1

    def _executor(self):
        if self.config.workers == 1:
            torch.set_num_threads(max(1, min(torch.get_num_threads(), available_cores())))
            return InProcess(self.data, self.normalization, self.evaluation)
        return WorkerProcesses(self.config.workers, self.config.source, self.config.data, self.evaluation)

    def _promote(self) -> None:
        """Train the finalists again, longer, here with all cores; each result is journaled as it comes."""
        config = promotion_config(self.evaluation)
        executor = InProcess(self.data, self.normalization, config)
        for finalist in finalists(self.known.values(), self.config.promote):
            if finalist.spec in self.promoted:
                continue
            _, record = next(executor.map([Spec.parse(finalist.spec)]))
            record = replace(record, generation=finalist.generation, origin={"score": finalist.score})
            self._journal(record, "promotions")
            self.promoted[record.spec] = record
            self.reporter.promoted(record, config.epochs)

    def _journal(self, record: EvaluationRecord, table: str = "evaluations") -> None:
        """Store a result with the search time spent so far: a kill loses neither."""
        self.journal.record(record, table)
        self.journal.put("search_seconds", self._elapsed())

    def _too_slow(self, text: str) -> EvaluationRecord | None:
        return too_slow(Spec.parse(text), self.data, self.evaluation.max_seconds, self.known.values())

    def best(self) -> EvaluationRecord | None:
        return next(iter(ranked(self.known.values())), None)

    # -- budget --------------------------------------------------------------------------------------

    def _elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started

    def _evaluations_left(self) -> int:
        if self.config.evaluations is None:
            return 1 << 30
        return max(0, self.config.evaluations - len(self.known))

    def _seconds_left(self) -> float | None:
        if self.config.budget_seconds is None:
            return None
        config = self.config
        return search_seconds_left(
            config.budget_seconds,
            self._elapsed(),
            self.known.values(),
            self.data,
            config.evaluation,
            config.final_epochs,
            config.promote,
            self.promoted,
        )

    def _budget_spent(self) -> bool:
        seconds_left = self._seconds_left()
        return self._evaluations_left() == 0 or (seconds_left is not None and seconds_left <= 0)

    # -- final model ---------------------------------------------------------------------------------

    def _final_training(self) -> dict:
        budget = self.config.budget_seconds
        seconds_left = None if budget is None else budget - self._elapsed()
        evaluation, wanted = self.config.evaluation, self.config.final_epochs
        promoted = [r for r in self.promoted.values() if r.ok]  # when there are finalists, among them
        best = choose_final(promoted or self.known.values(), self.data, evaluation, wanted, seconds_left)
        if best is None:
            raise SwarmCNNError(
                f"no candidate of {len(self.known)} trained successfully; see 'swarmcnn runs show "
                f"{self.run_dir}' for their reasons"
            )
        epochs, max_seconds = final_plan(best, self.data, evaluation, wanted, seconds_left)
        spec, reporter = Spec.parse(best.spec), self.reporter.final_training(best.spec, epochs)
        final = train_final(
            spec,
            self.data,
            self.config.evaluation,
            epochs,
            self.config.seed,
            augment=self.config.augment,
            flip=self.config.flip,
            reporter=reporter,
            max_seconds=max_seconds,
        )
        metrics = {
            "status": final.result.status,
            "reason": final.result.reason,
            "epochs": len(final.result.epochs),
            "val_accuracy": best.val_accuracy,
            "test_accuracy": final.test.accuracy,
            "test_loss": final.test.loss,
            "train_seconds": final.result.seconds,
            "search_evaluations": len(self.known),
        }
        trained = TrainedModel(
            final.model.cpu(),
            spec,
            final.data.input_shape,
            final.data.class_names,
            final.normalization,
            metrics=metrics,
            data={"source": self.config.source, **asdict(self.config.data)},
            training=asdict(final.config),
        )
        trained.save(self.run_dir / BEST_DIR)
        summary = {
            "best_spec": best.spec,
            "best_val_accuracy": best.val_accuracy,
            "test_accuracy": final.test.accuracy,
            "final_epochs": epochs,
            "final_epochs_trained": len(final.result.epochs),
            "final_status": final.result.status,
            "final_seconds": final.result.seconds,
        }
        self.journal.put("final", summary)
        return summary
