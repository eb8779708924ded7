"""The search loop: the designs first, then ask the strategy, score what is new, journal it, tell; promote the
best of each trained rung (ASHA) while the search's time lasts; train the best of the highest rung for the time
that is left (budget.py says how the time is shared, ladder.py how rungs rank).

A proposal's score (its fitness) is either its supernet score (rung 0, a fraction of a second: oneshot.py), after
which the designs and the swarm's best enter the trained ladder at rung 1, or a short training at rung 0.

Resuming is the same loop: the strategy's state comes back from the journal's last finished generation, every
spec it asks again that the journal already scored is told from the journal, not scored again, the plan of the
rungs is the journaled one and the supernet the saved one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from swarmcnn.data import Dataset, load_data
from swarmcnn.designs import starting
from swarmcnn.errors import SwarmCNNError
from swarmcnn.search.budget import (
    LADDER_CHILDREN,
    Plan,
    beyond_reach,
    final_members,
    final_plan,
    final_schedule_epochs,
    plan_budgeted,
    search_seconds,
    too_slow,
)
from swarmcnn.search.config import SearchConfig
from swarmcnn.search.evaluate import EvaluationConfig
from swarmcnn.search.executors import Executor, ExecutorFactory, local_executor
from swarmcnn.search.final import final_config, final_summary, train_final
from swarmcnn.search.journal import EvaluationRecord, Journal, check_run_folder, ranked
from swarmcnn.search.ladder import ETA, best_of_top, by_rung, due, finishing, finishing_seconds, rung_config
from swarmcnn.search.oneshot import OneShotFitness
from swarmcnn.search.pace import seconds_per_image
from swarmcnn.search.provenance import provenance
from swarmcnn.search.reporter import SearchReporter, SearchSummary
from swarmcnn.search.space import SearchSpace
from swarmcnn.search.strategies import get_strategy
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization, TrainConfig

DEFAULT_FINAL_EPOCHS = 30  # without a budget; with one, the epochs follow from the time left
BEST_DIR = "best"
IDLE_GENERATIONS = 25  # generations in a row that propose nothing new: the space is exhausted


class Search:
    """One run directory: journal, strategy and data, from a first start or a resume.

    threads: PyTorch's threads in this process; None follows the cores other processes leave free.
    clock: the budget's clock (a seam for tests).
    executor: makes the executor candidates and promotions train in, from the data and its normalisation
    (default: this process, or `config.workers` local processes); a resume may use another than its start.
    """

    def __init__(
        self,
        run_dir: Path,
        config: SearchConfig,
        journal: Journal,
        reporter: SearchReporter,
        data: Dataset | None = None,
        threads: int | None = None,
        clock: Callable[[], float] = time.perf_counter,
        executor: ExecutorFactory | None = None,
    ) -> None:
        self.run_dir, self.config, self.journal = Path(run_dir), config, journal
        self.reporter, self.threads, self.clock = reporter, threads, clock
        self.executor_factory = executor
        self.data = data or load_data(config.source, config.data)
        self.normalization = Normalization.of(self.data.train.x)
        self.strategy = get_strategy(config.strategy)(config.space, self.data.input_shape, config.seed)
        journal.restore_state(self.strategy)  # the last generation's; one that does not fit it is damage
        self.rungs = by_rung([*journal.evaluations(), *journal.evaluations("promotions")])
        self.known = self.rungs.setdefault(0, {})  # every candidate, by spec
        self.designs = starting(self.data.input_shape) if config.designs else {}  # by name
        self.design_specs = {str(spec) for spec in self.designs.values()}
        self.plan = journal.get("plan", parse=Plan.from_dict)  # checked: a plan edited by hand is damage
        self.oneshot: OneShotFitness | None = None  # the supernet, once the plan asks for it
        self.elapsed_before = journal.get("search_seconds", 0.0)
        self.started = clock()

    @classmethod
    def start(
        cls, run_dir: str | Path, config: SearchConfig, reporter: SearchReporter | None = None, **runtime
    ) -> Search:
        run_dir = Path(run_dir)
        config = config.on_this_machine()
        check_run_folder(run_dir)
        data = runtime.pop("data", None) or load_data(config.source, config.data)  # bad data fails before a journal
        if config.space is None:
            config = replace(config, space=SearchSpace.default_for(data.input_shape))
        _check_validation_split(data)
        made_folder = not run_dir.exists()
        journal = Journal.create(run_dir, config.to_dict(), data_fingerprint=data.fingerprint)
        try:
            return cls(run_dir, config, journal, reporter or SearchReporter(), data, **runtime)
        except BaseException:
            journal.discard(made_folder)  # a start that failed leaves no run: the folder can be used again
            raise

    @classmethod
    def resume(cls, run_dir: str | Path, reporter: SearchReporter | None = None, **runtime) -> Search:
        """Continue the run in run_dir, locked by this process; refused if its data changed since it started."""
        journal = Journal.open(Path(run_dir), lock=True)
        try:
            config = SearchConfig.from_journal(journal)
            search = cls(Path(run_dir), config, journal, reporter or SearchReporter(), **runtime)
            search._check_same_data()
        except BaseException:
            journal.close()
            raise
        return search

    def _check_same_data(self) -> None:
        """Scores of other data would be mixed with the journaled ones without a word: refuse instead."""
        recorded = self.journal.get("data_fingerprint")  # None in journals written before fingerprints
        if recorded is not None and recorded != self.data.fingerprint:
            raise SwarmCNNError(
                f"the data '{self.config.source}' changed since the run in '{self.run_dir}' started (its images, "
                "labels or classes differ); restore it to continue, or start a new search with another --out"
            )

    # -- the loop ------------------------------------------------------------------------------------

    def run(self) -> SearchSummary:
        """Search until its time or count ends, put the best of each rung on the top rung, then train the best of
        it on train+val and test it once. The run folder stays locked until then."""
        try:
            return self._run()
        finally:
            self.journal.unlock()

    def _run(self) -> SearchSummary:
        final = self.journal.get("final")
        if final is None:
            self.reporter.start(self.config, len(self.known))
            executor = self._executor()
            try:
                if self.plan is None:
                    self.plan = self._make_plan()
                    self.journal.put("plan", self.plan.to_dict())
                self._search(executor)
                self._climb(executor)
            finally:
                executor.close()
                self.reporter.stop()
                self.journal.put("search_seconds", self._elapsed())
            final = self._final_training()
        return SearchSummary(
            final["best_spec"], final["best_val_accuracy"], final["test_accuracy"], self.journal.count(),
            self._elapsed(), str(self.run_dir / BEST_DIR),
        )

    def _search(self, executor: Executor) -> None:
        """Ask, score what is new, journal, tell, until the swarm's time or count ends."""
        if self.config.designs:
            designs = [(str(spec), {"design": name}) for name, spec in self.designs.items()]
            new = [(text, origin) for text, origin in designs if text not in self.known]
            self._score(executor, new[: self._evaluations_left()], designs=True)
        self._promote_due(executor)  # a resume first finishes the promotions a kill interrupted
        while not self._swarm_done() and self._idle_generations() < IDLE_GENERATIONS:
            candidates = self.strategy.ask()
            texts = [str(c.spec) for c in candidates]
            origins = {str(c.spec): c.origin for c in reversed(candidates)}  # the first asker of a spec
            new = list(dict.fromkeys(t for t in texts if t not in self.known))[: self._evaluations_left()]
            self._score(executor, [(text, origins[text]) for text in new])
            if any(t not in self.known for t in texts):
                return  # the time ended inside this generation: its state is not saved, nothing is told
            self.strategy.tell([self.known[t].score for t in texts])
            # the promotions are decided now, from the generations told, and journaled with the state they follow:
            # a resume does those not done yet, rather than decide again from more results
            promotions = [[record.spec, rung] for record, rung in self._due()]
            self.journal.save_state(self.strategy.generation, self.strategy.state_dict(), promotions_due=promotions)
            self.journal.put("search_seconds", self._elapsed())
            self._promote_due(executor)

    def _due(self) -> list[tuple[EvaluationRecord, int]]:
        """The promotions the ladder owes now: ASHA over the trained rungs, and with the supernet fitness, once the
        swarm is done, the designs and its LADDER_CHILDREN best entering rung 1."""
        if self.plan.fitness != "supernet":
            return due(self.rungs, self.plan.top_rung)
        owed = due(self.rungs, self.plan.top_rung, first=1)
        if self.plan.top_rung >= 1 and self._swarm_done():
            children = [r for r in ranked(self.known.values()) if r.spec not in self.design_specs][:LADDER_CHILDREN]
            entrants = [*(self.known[s] for s in self.design_specs if s in self.known), *children]
            owed = [(r, 1) for r in entrants if r.spec not in self.rungs.get(1, {})] + owed
        return owed

    def _promote_due(self, executor: Executor) -> None:
        """The promotions decided after the last generation told that are not in the journal yet."""
        due_now = [
            (self.rungs[rung - 1][spec], rung)
            for spec, rung in self.journal.get("promotions_due", [])
            if spec not in self.rungs.get(rung, {})
        ]
        if due_now and self._time_for_search():
            self._promote(executor, due_now)

    def _climb(self, executor: Executor) -> None:
        """After the swarm: the promotions still owed, then the best of every rung up to the top, while the
        search's time holds (without a budget: all of them)."""
        while (owed := self._due()) and self._time_for_search():
            trained = len(self._all_records())
            self._promote(executor, owed)
            if len(self._all_records()) == trained:
                break  # the time ran out before any of them started
        first = self.plan.first_trained
        while (step := finishing(self.rungs, self.plan.top_rung, first)) is not None and self._time_for_search():
            self._promote(executor, [step])

    def _idle_generations(self) -> int:
        """How many generations told in a row, up to the last, proposed nothing new: read from the records (rung 0,
        by generation) so that a resumed search counts as the uninterrupted one did."""
        fresh = {r.generation for r in self.known.values() if "design" not in (r.origin or {})}
        idle = 0
        while idle < self.strategy.generation and self.strategy.generation - 1 - idle not in fresh:
            idle += 1
        return idle

    # -- scoring and training --------------------------------------------------------------------------

    def _score(self, executor: Executor, candidates: list[tuple[str, dict]], designs: bool = False) -> None:
        """Give candidates their rung-0 fitness (refusing those beyond reach or too slow untrained), journal each
        as it comes. The designs are all scored: they are the search's yardstick."""
        origins = dict(candidates)
        admitted = []
        for text, _ in candidates:
            refused = None if designs else self._refusal(Spec.parse(text))
            if refused is not None:
                self._record(refused, origins[text])
            else:
                admitted.append(text)
        if self.plan.fitness == "supernet":
            fitness = self._oneshot()
            for text in admitted:
                self._record(fitness.score(Spec.parse(text)), {**origins[text], "fitness": "supernet"})
                if not designs and self._swarm_done():
                    return
            return
        config = self._rung_config(0)
        for i, record in executor.map([(Spec.parse(text), config) for text in admitted]):
            self._record(self._as_planned(record), origins[admitted[i]])
            if not designs and self._swarm_done():
                executor.cancel_pending()  # what is already training is still recorded

    def _refusal(self, spec: Spec) -> EvaluationRecord | None:
        """The record of a candidate the search will not score (beyond the designs' reach, or too slow), or None."""
        refused = beyond_reach(spec, self.data, self._largest_design())
        if refused is None and self.plan.fitness != "supernet":
            refused = too_slow(spec, self.data, self._rung_config(0), self._all_records(), self.plan.by_time)
        return refused

    def _oneshot(self) -> OneShotFitness:
        """The supernet, trained (or loaded, on a resume) the first time a proposal needs a score."""
        if self.oneshot is None:
            fitness = OneShotFitness(
                self.run_dir, self.data, self.normalization, self.config.space, self.config.evaluation,
                lambda spec: self._refusal(spec) is None and spec.num_params(
                    self.data.input_shape, len(self.data.class_names)) <= self.config.evaluation.max_params,
                self.config.seed,
            )
            # from the search's start; a resume of a search killed while it trained gets a quarter of it at least
            seconds = max(self.plan.supernet_seconds - self._elapsed(), self.plan.supernet_seconds / 4)
            trained = fitness.ready(seconds, self._final_config(1), self.clock)
            if trained is not None:
                self.journal.put("supernet", trained)
            self.oneshot = fitness
        return self.oneshot

    def _largest_design(self) -> int | None:
        """FLOPs per image of the costliest design the search starts from (None without designs)."""
        classes = len(self.data.class_names)
        return max((spec.flops(self.data.input_shape, classes) for spec in self.designs.values()), default=None)

    def _record(self, record: EvaluationRecord, origin: dict) -> None:
        record = replace(record, generation=self.strategy.generation, origin=origin, rung=0)
        self._journal(record)
        self.known[record.spec] = record
        best = next(iter(ranked(self.known.values())), None)
        self.reporter.evaluated(record, best, len(self.known), self.strategy.generation, self._seconds_left())

    def _promote(self, executor: Executor, promotions: list[tuple[EvaluationRecord, int]]) -> None:
        """Train records' specs again at higher rungs, side by side where the executor has workers, and journal
        each as it comes; once the search's time is spent no further one starts."""
        jobs = [(Spec.parse(record.spec), self._rung_config(rung)) for record, rung in promotions]
        for i, trained in executor.map(jobs):
            record, rung = promotions[i]
            origin = {**(record.origin or {}), "score": record.score, "from_rung": record.rung}
            trained = replace(self._as_planned(trained), generation=record.generation, origin=origin, rung=rung)
            self._journal(trained, "promotions")
            self.rungs.setdefault(rung, {})[trained.spec] = trained
            self.reporter.promoted(trained, jobs[i][1].epochs)
            if not self._time_for_search():
                executor.cancel_pending()  # what is already training is still journaled

    def _as_planned(self, record: EvaluationRecord) -> EvaluationRecord:
        """A training driven by its time planned what its time allowed: it is not compressed by it."""
        return replace(record, planned_images=record.images) if self.plan.by_time and record.ok else record

    def _rung_config(self, rung: int) -> EvaluationConfig:
        """A rung's training, with the final training's augmentation: a network is ranked by the recipe it will
        get (without it, long promotions of small networks overfit and rank them by that)."""
        config = rung_config(self.plan, self.config.evaluation, rung)
        return replace(config, augment=self.config.augment, flip=self.config.flip)

    def _journal(self, record: EvaluationRecord, table: str = "evaluations") -> None:
        """Store a result with the search time spent so far: a kill loses neither."""
        self.journal.record(record, table)
        self.journal.put("search_seconds", self._elapsed())

    def _all_records(self) -> list[EvaluationRecord]:
        return [record for rung in self.rungs.values() for record in rung.values()]

    def _executor(self) -> Executor:
        """The executor given, else candidates here or in worker processes (executors.local_executor)."""
        if self.executor_factory is not None:
            return self.executor_factory(self.data, self.normalization)
        return local_executor(self.config, self.data, self.normalization, self.threads, self.journal)

    # -- time ------------------------------------------------------------------------------------------

    def _make_plan(self) -> Plan:
        """The rungs: as configured without a budget, from the budget and a design's pace with one."""
        base, top, budget = self.config.evaluation, self.config.rungs, self.config.budget_seconds
        if budget is None:
            return Plan(base.train_fraction, base.epochs, base.max_seconds, top)
        specs = sorted(self.designs.values(), key=str) or [self.config.space.typical(self.data.input_shape)]
        pace = max(self._pace(spec) for spec in specs)  # the slowest design's, a known-good network's
        return plan_budgeted(budget, self.data, base, top, self.config.fitness_for_budget, len(self.designs), pace)

    def _pace(self, spec: Spec) -> float:
        """Seconds per image of spec's final training, measured now."""
        return seconds_per_image(spec, self.data, self.normalization, self._final_config(epochs=1))

    def _final_config(self, epochs: int, max_seconds: float | None = None) -> TrainConfig:
        return final_config(
            self.config.evaluation, epochs, self.config.seed, self.config.augment, self.config.flip, max_seconds
        )

    def _elapsed(self) -> float:
        return self.elapsed_before + self.clock() - self.started

    def _evaluations_left(self) -> int:
        if self.config.evaluations is None:
            return 1 << 30
        return max(0, self.config.evaluations - len(self.known))

    def _search_left(self) -> float | None:
        """What the search may still spend of its share of the budget; None without a budget."""
        budget = self.config.budget_seconds
        return None if budget is None else search_seconds(budget) - self._elapsed()

    def _time_for_search(self) -> bool:
        left = self._search_left()
        return left is None or left > 0

    def _seconds_left(self) -> float | None:
        """What the swarm may still spend on new candidates: the promotions that finish the ladder are owed too."""
        left = self._search_left()
        if left is None:
            return None
        if self.plan.fitness == "supernet":
            return self.plan.oneshot_seconds - self._elapsed()
        first = self.plan.first_trained
        return left - finishing_seconds(self.rungs, self.plan.top_rung, lambda r: r.seconds, first)

    def _swarm_done(self) -> bool:
        """No evaluations left, or no time for the swarm: a search with no trained candidate yet goes on while
        the search's share lasts."""
        if self._evaluations_left() == 0:
            return True
        left = self._seconds_left()
        if left is None or left > 0:
            return False
        return best_of_top(self.rungs) is not None or not self._time_for_search()

    # -- final model ---------------------------------------------------------------------------------

    def _final_training(self) -> dict:
        best = best_of_top(self.rungs)
        if best is None:
            raise SwarmCNNError(
                f"no candidate of {len(self.known)} trained successfully; see 'swarmcnn runs show "
                f"{self.run_dir}' for their reasons"
            )
        spec = Spec.parse(best.spec)
        epochs, max_seconds = self._final_plan(spec)
        batch = self.config.evaluation.batch_size
        members, epochs, each_seconds = final_members(epochs, max_seconds, self.data, batch)
        reporter = self.reporter.final_training(best.spec, epochs, max_seconds, members)
        planned = epochs if each_seconds is None else final_schedule_epochs(epochs)
        config = self._final_config(planned, each_seconds)
        final = train_final(spec, self.data, config, reporter, self.config.data, members)
        found = provenance(best, self.designs, self.config.strategy)
        # the final training has no validation split (train+val): the spec's validation score is the search's
        final.trained.metrics.update(val_accuracy=best.val_accuracy, search_evaluations=len(self.known),
                                     provenance=found)
        final.trained.save(self.run_dir / BEST_DIR)
        summary = final_summary(best, final, epochs, max_seconds, found)
        self.journal.put("final", summary)
        return summary

    def _final_plan(self, spec: Spec) -> tuple[int, float | None]:
        """Epochs for the final training and its time (budget.final_plan), at the pace measured now."""
        budget = self.config.budget_seconds
        if budget is None:
            return self.config.final_epochs or DEFAULT_FINAL_EPOCHS, None
        return final_plan(budget - self._elapsed(), self.data, self._pace(spec), self.config.final_epochs)


def _check_validation_split(data: Dataset) -> None:
    if len(data.val) == 0:
        raise SwarmCNNError(
            f"the validation split of '{data.source}' is empty, and the search scores every candidate on it; "
            "give more data per class or a larger --val-fraction"
        )


__all__ = ["ETA", "Search", "SearchConfig", "SearchReporter", "SearchSummary"]
