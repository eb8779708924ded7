"""The search loop: the designs first (with a budget, both up the ladder, the better there the yardstick),
then ask the strategy, evaluate what is new, journal it, tell; promote the best of each rung (ASHA); train the
best network of the highest rung after equal images for the time that is left.

Resuming is the same loop: the strategy's state comes back from the journal's last finished generation, every
spec it asks again that the journal already scored is told from the journal, not retrained, and the plan of
the rungs is the journaled one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from swarmcnn.cores import ThreadGovernor, available_cores
from swarmcnn.data import Dataset, load_data
from swarmcnn.designs import starting
from swarmcnn.errors import SwarmCNNError
from swarmcnn.search import curves
from swarmcnn.search.budget import (
    FINAL_SHARE,
    Plan,
    beyond_reach,
    choose_final,
    final_epochs,
    final_pace_limit,
    final_reserve,
    final_schedule_epochs,
    plan_search,
    too_slow,
)
from swarmcnn.search.config import SearchConfig
from swarmcnn.search.evaluate import EvaluationConfig
from swarmcnn.search.executors import Executor, ExecutorFactory, InProcess, WorkerProcesses
from swarmcnn.search.final import final_config, train_final
from swarmcnn.search.journal import JOURNAL_FILE, EvaluationRecord, Journal, is_bookkeeping, ranked
from swarmcnn.search.ladder import (
    ETA,
    best_of_top,
    by_rung,
    due,
    finishing,
    finishing_seconds,
    ranking,
    rung_config,
)
from swarmcnn.search.pace import seconds_per_image
from swarmcnn.search.provenance import provenance
from swarmcnn.search.reporter import SearchReporter, SearchSummary
from swarmcnn.search.strategies import get_strategy
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization, TrainConfig

DEFAULT_FINAL_EPOCHS = 30  # without a budget; with one, the epochs follow from the time left
BEST_DIR = "best"
IDLE_GENERATIONS = 25  # generations in a row that propose nothing new: the space is exhausted
# how often, at most, a budgeted search times its best network again to follow the machine's pace:
# every PACE_EVERY of the budget (at least PACE_MIN_SECONDS), a fraction of a second each
PACE_EVERY = 0.05
PACE_MIN_SECONDS = 10.0


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
        self.paces: dict[str, tuple[float, float]] = {}  # spec -> (when measured, seconds per image)
        self.time_bound = journal.get("time_bound", False)  # the search stopped for its best design (_time_bound)
        self.elapsed_before = journal.get("search_seconds", 0.0)
        self.started = clock()

    @classmethod
    def start(
        cls, run_dir: str | Path, config: SearchConfig, reporter: SearchReporter | None = None, **runtime
    ) -> Search:
        run_dir = Path(run_dir)
        config = config.on_this_machine()
        if run_dir.exists() and not run_dir.is_dir():
            raise SwarmCNNError(f"--out '{run_dir}' exists and is not a folder")
        files = [p.name for p in run_dir.iterdir()] if run_dir.is_dir() else []
        if JOURNAL_FILE not in files and not all(is_bookkeeping(name) for name in files):
            raise SwarmCNNError(f"--out '{run_dir}' is a folder with other files in it; choose a new or empty folder")
        data = runtime.pop("data", None) or load_data(config.source, config.data)  # bad data fails before a journal
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
        """Search until the budget ends, put the best of each rung on the top rung, then train the best of it on
        train+val and test it once. The run folder stays locked until then."""
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
                self._finish_ladder(executor)
            finally:
                executor.close()
                self.reporter.stop()
                self.journal.put("search_seconds", self._elapsed())
            final = self._final_training()
        return SearchSummary(
            final["best_spec"],
            final["best_val_accuracy"],
            final["test_accuracy"],
            self.journal.count(),
            self._elapsed(),
            str(self.run_dir / BEST_DIR),
        )

    def _search(self, executor: Executor) -> None:
        if self.config.designs:
            designs = [(str(spec), {"design": name}) for name, spec in self.designs.items()]
            new = [(text, origin) for text, origin in designs if text not in self.known]
            self._evaluate(executor, new[: self._evaluations_left()], designs=True)
            self._climb_designs(executor)
        self._promote_due(executor)  # a resume first finishes the promotions a kill interrupted
        while not self._budget_spent() and self._idle_generations() < IDLE_GENERATIONS:
            candidates = self.strategy.ask()
            texts = [str(c.spec) for c in candidates]
            origins = {str(c.spec): c.origin for c in reversed(candidates)}  # the first asker of a spec
            new = list(dict.fromkeys(t for t in texts if t not in self.known))[: self._evaluations_left()]
            self._evaluate(executor, [(text, origins[text]) for text in new])
            if any(t not in self.known for t in texts):
                return  # the budget ended inside this generation: its state is not saved, nothing is told
            self.strategy.tell([self.known[t].score for t in texts])
            # the promotions are decided now, from the generations told, and journaled with the state they follow:
            # a resume does those not done yet, rather than decide again from more results
            promotions = [[record.spec, rung] for record, rung in due(self.rungs, self.plan.top_rung)]
            self.journal.save_state(self.strategy.generation, self.strategy.state_dict(), promotions_due=promotions)
            self.journal.put("search_seconds", self._elapsed())
            self._promote_due(executor)

    def _promote_due(self, executor: Executor) -> None:
        """The promotions decided after the last generation told that are not in the journal yet."""
        due_now = [
            (self.rungs[rung - 1][spec], rung)
            for spec, rung in self.journal.get("promotions_due", [])
            if spec not in self.rungs.get(rung, {})
        ]
        if due_now and self._seconds_left_positive():
            self._promote(executor, due_now)

    def _climb_designs(self, executor: Executor) -> None:
        """With a budget, train every design on every rung up to the top, the best of rung 0 first, before any
        candidate: the best of them on the top rung is the yardstick of the final training's share (budget.py,
        its learning curve) and of the final choice.

        All of them, not the best of rung 0 only: after two epochs the ranking of LeNet-5 and the VGG design
        is a coin toss on photos (cifar10-dev, 500 per class: 38.1% against 37.6% on one seed), after 16 epochs
        it is not (49.7% against 58-61%), and LeNet-5 costs a sixth of the VGG design's time."""
        if self.config.budget_seconds is None:
            return
        for record in ranked(r for r in self.known.values() if r.spec in self.design_specs):
            for rung in range(1, self.plan.top_rung + 1):
                if record is None or not record.ok or self._seconds_for_climb() <= 0:
                    break
                if record.spec not in self.rungs.get(rung, {}):
                    self._promote(executor, [(record, rung)])
                record = self.rungs.get(rung, {}).get(record.spec)

    def _seconds_for_climb(self) -> float:
        """What the designs' climb may still spend: the budget less the time spent and the final's reserve, of
        which it may take all beyond FINAL_SHARE of the budget. The climb measures the curve that the final's
        share and the time-bound rule rest on, and ranks the designs after more than rung 0's images; where 40
        epochs of the VGG design fill the budget (large data, a slow machine) a reserve of all of it would leave
        the choice to two scores after rung 0's few images: on cifar10-dev 2,000 per class that took LeNet-5
        (27.8% against 25.4% after 2,000 images), which ended 71.4% where the VGG design, trained for the same
        budget, ends 80.5%."""
        budget = self.config.budget_seconds
        return budget - self._elapsed() - min(self._final_reserve(), FINAL_SHARE * budget)

    def _idle_generations(self) -> int:
        """How many generations told in a row, up to the last, proposed nothing new: read from the records (rung 0,
        by generation) so that a resumed search counts as the uninterrupted one did."""
        fresh = {r.generation for r in self.known.values() if "design" not in (r.origin or {})}
        idle = 0
        while idle < self.strategy.generation and self.strategy.generation - 1 - idle not in fresh:
            idle += 1
        return idle

    def _evaluate(self, executor: Executor, candidates: list[tuple[str, dict]], designs: bool = False) -> None:
        """Score candidates at rung 0 (those too slow to try without training), journal each as it comes.

        The designs are the search's yardstick: all of them train, each for its planned images, whatever the
        budget."""
        config = self._rung_config(0)
        if designs:
            config = replace(config, max_seconds=None)
        origins = dict(candidates)
        to_train = []
        for text, _ in candidates:
            spec = Spec.parse(text)
            refused = None if designs else beyond_reach(spec, self.data, self._largest_design()) or too_slow(
                spec, self.data, config, self._all_records(), self._pace_limit()
            )
            if refused is not None:
                self._record(refused, origins[text])
            else:
                to_train.append(text)
        for i, record in executor.map([(Spec.parse(text), config) for text in to_train]):
            self._record(record, origins[to_train[i]])
            if not designs and self._budget_spent():
                executor.cancel_pending()  # what is already training is still recorded

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
        each as it comes; once the budget is spent no further one starts."""
        jobs = [(Spec.parse(record.spec), self._rung_config(rung)) for record, rung in promotions]
        for i, trained in executor.map(jobs):
            record, rung = promotions[i]
            origin = {"score": record.score, "from_rung": record.rung}
            trained = replace(trained, generation=record.generation, origin=origin, rung=rung)
            self._journal(trained, "promotions")
            self.rungs.setdefault(rung, {})[trained.spec] = trained
            self.reporter.promoted(trained, jobs[i][1].epochs)
            if not self._seconds_left_positive():
                executor.cancel_pending()  # what is already training is still journaled

    def _finish_ladder(self, executor: Executor) -> None:
        """Put the best of every rung on the rung above, up to the top, while the final training's time holds."""
        while (step := finishing(self.rungs, self.plan.top_rung)) is not None:
            if self.config.budget_seconds is not None and self._seconds_for_search() <= 0:
                return
            self._promote(executor, [step])

    def _rung_config(self, rung: int) -> EvaluationConfig:
        """A rung's training, with the final training's augmentation: a network is ranked by the recipe it will
        get (without it, long promotions of small networks overfit and rank them by that)."""
        config = rung_config(self.plan.rung0(self.config.evaluation), rung)
        return replace(config, augment=self.config.augment, flip=self.config.flip)

    def _journal(self, record: EvaluationRecord, table: str = "evaluations") -> None:
        """Store a result with the search time spent so far: a kill loses neither."""
        self.journal.record(record, table)
        self.journal.put("search_seconds", self._elapsed())

    def _all_records(self) -> list[EvaluationRecord]:
        return [record for rung in self.rungs.values() for record in rung.values()]

    def _executor(self) -> Executor:
        """The executor given, else candidates here or in worker processes. Here, a budgeted search gives
        PyTorch the cores other processes leave free, re-measured after each candidate; a search by count keeps its
        threads fixed (PyTorch's, or `threads`), so that a seed repeats it to the last digit: results differ in
        the last bits between thread counts."""
        if self.executor_factory is not None:
            return self.executor_factory(self.data, self.normalization)
        if self.config.workers > 1:
            return WorkerProcesses(self.config.workers, self.data, self.normalization)
        if self.threads is None and self.config.budget_seconds is not None:
            return InProcess(self.data, self.normalization, ThreadGovernor())
        import torch

        # journaled: a resume keeps the threads its run started with (unless given others), and so its last digits
        journaled = self.journal.get("threads")
        journaled = journaled if isinstance(journaled, int) and journaled >= 1 else None
        threads = self.threads or journaled or max(1, min(torch.get_num_threads(), available_cores()))
        self.journal.put("threads", threads)
        torch.set_num_threads(threads)
        return InProcess(self.data, self.normalization)

    # -- budget --------------------------------------------------------------------------------------

    def _make_plan(self) -> Plan:
        """Rung 0 and the time limits: as configured without a budget, from measured paces with one."""
        base, top = self.config.evaluation, self.config.rungs
        budget = self.config.budget_seconds
        if budget is None:
            return Plan(base.train_fraction, base.epochs, base.max_seconds, top)
        typical = self._typical_pace()
        return plan_search(budget, self.data, base, top, final_reserve(budget, self.data, typical), typical)

    def _typical_pace(self) -> float:
        """The pace of a typical network: the slower design (a known-good network), else the space's median."""
        designs = sorted(self.designs.values(), key=str)
        specs = designs or [self.config.space.typical(self.data.input_shape)]
        return max(self._pace(spec) for spec in specs)

    def _pace(self, spec: Spec) -> float:
        """Seconds per image of spec's final training now, measured again once the last measure is PACE_EVERY old."""
        when, pace = self.paces.get(str(spec), (None, None))
        every = max(PACE_MIN_SECONDS, PACE_EVERY * (self.config.budget_seconds or 0))
        if when is None or self._elapsed() - when > every:
            pace = seconds_per_image(spec, self.data, self.normalization, self._final_config(epochs=1))
            self.paces[str(spec)] = (self._elapsed(), pace)
        return pace

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

    def _pace_limit(self) -> float | None:
        """The slowest pace the final training's reserve can give FINAL_EPOCHS; None without a budget."""
        if self.config.budget_seconds is None:
            return None
        return final_pace_limit(self._final_reserve(), self.data)

    def _final_reserve(self) -> float:
        """The final's reserve for a typical network at its pace now, and for the best design's curve once the
        design has climbed the ladder (the final choice then takes a network that this time trains properly)."""
        return final_reserve(self.config.budget_seconds, self.data, self._typical_pace(), self._yardstick())

    def _yardstick(self) -> tuple[curves.Curve, float] | None:
        """The learning curve and pace now of the best design on the top rung; None before it is there."""
        exponent = curves.exponent(self.rungs, self.plan.top_rung)
        best = self._best_design()
        if exponent is None or best is None:
            return None
        return curves.Curve.of(best, exponent), self._pace(Spec.parse(best.spec))

    def _best_design(self) -> EvaluationRecord | None:
        """The best design on the top rung, None before one is there."""
        top = self.rungs.get(self.plan.top_rung, {})
        return next(iter(ranked(r for r in top.values() if r.spec in self.design_specs)), None)

    def _time_bound(self) -> bool:
        """Whether the best design's final training needs more than FINAL_SHARE of the budget: its curve is still
        steep at the budget's end (or 40 epochs of it take that long). Then the search leaves it all the time;
        the decision is journaled once taken, so that the final training follows it rather than a new pace.

        The same steepness that makes the final's time worth more than a search makes the ladder's short
        trainings rank networks by how fast they start, not where they end: on cifar10-dev 2,000 per class (ten
        minutes, two cores) the network that led the design after 1.6 epochs, by 3.4 points of validation
        accuracy, ended 76.7% where the design, chosen, reaches 81-82%."""
        budget = self.config.budget_seconds
        if not self.time_bound and budget is not None and self._yardstick() is not None:
            if self._final_reserve() > FINAL_SHARE * budget:
                self.time_bound = True
                self.journal.put("time_bound", True)
        return self.time_bound

    def _seconds_for_search(self) -> float:
        """What a budgeted search may still spend: the budget less the time spent and the final's reserve."""
        return self.config.budget_seconds - self._elapsed() - self._final_reserve()

    def _seconds_left(self) -> float | None:
        """What a budgeted search may still spend on new candidates: the finishing promotions are owed too."""
        if self.config.budget_seconds is None:
            return None
        return self._seconds_for_search() - finishing_seconds(self.rungs, self.plan.top_rung, lambda r: r.seconds)

    def _seconds_left_positive(self) -> bool:
        left = self._seconds_left()
        return left is None or left > 0

    def _budget_spent(self) -> bool:
        """No evaluations left, or no time, or a budget too short to search in (`_time_bound`): a search with no
        trained candidate yet goes on to the budget's end."""
        if self._evaluations_left() == 0 or self._time_bound():
            return True
        if self._seconds_left_positive():
            return False
        return best_of_top(self.rungs) is not None or self._elapsed() >= self.config.budget_seconds

    # -- final model ---------------------------------------------------------------------------------

    def _final_training(self) -> dict:
        budget = self.config.budget_seconds
        seconds = None if budget is None else budget - self._elapsed()
        pace = lambda spec: self._pace(Spec.parse(spec))  # noqa: E731
        finalists = [self._best_design()] if self.time_bound else ranking(self.rungs)
        best = choose_final(finalists, self.data, seconds, pace)
        if best is None:
            raise SwarmCNNError(
                f"no candidate of {len(self.known)} trained successfully; see 'swarmcnn runs show "
                f"{self.run_dir}' for their reasons"
            )
        spec = Spec.parse(best.spec)
        epochs, max_seconds = self._final_plan(spec)
        reporter = self.reporter.final_training(best.spec, epochs, max_seconds)
        planned = epochs if max_seconds is None else final_schedule_epochs(epochs)
        final = train_final(spec, self.data, self._final_config(planned, max_seconds), reporter, self.config.data)
        result = final.result
        epochs_trained = round(result.images / max(len(final.data.train), 1), 2)
        found = provenance(best, self.designs, self.config.strategy)
        # the final training has no validation split (train+val): the spec's validation score is the search's
        final.trained.metrics.update(val_accuracy=best.val_accuracy, search_evaluations=len(self.known),
                                     provenance=found)
        final.trained.save(self.run_dir / BEST_DIR)
        summary = {
            "best_spec": best.spec,
            "best_val_accuracy": best.val_accuracy,
            "best_rung": best.rung,
            "test_accuracy": final.test.accuracy,
            "final_epochs": epochs,
            "final_epochs_trained": epochs_trained,
            "final_status": result.status,
            "final_cut_by_time": result.cut_by_time,
            "final_seconds": result.seconds,
            "final_allotted_seconds": max_seconds,
            "final_not_learning": result.not_learning,
            "curve_exponent": curves.exponent(self.rungs, self.plan.top_rung),
            "time_bound": self.time_bound,
            "provenance": found,
        }
        self.journal.put("final", summary)
        return summary

    def _final_plan(self, spec: Spec) -> tuple[int, float | None]:
        """Epochs for the final training and its time: all that is left of a budget, at the pace measured now."""
        wanted = self.config.final_epochs
        budget = self.config.budget_seconds
        if budget is None:
            return wanted or DEFAULT_FINAL_EPOCHS, None
        self.paces.pop(str(spec), None)  # the pace of this very moment
        pace = self._pace(spec)
        seconds = max(budget - self._elapsed(), _one_epoch(self.data, pace))
        epochs = final_epochs(seconds, self.data, pace)
        if wanted and wanted < epochs:
            return wanted, None  # the user's epochs fit: the schedule is theirs, not the time's
        return epochs, seconds


def _check_validation_split(data: Dataset) -> None:
    if len(data.val) == 0:
        raise SwarmCNNError(
            f"the validation split of '{data.source}' is empty, and the search scores every candidate on it; "
            "give more data per class or a larger --val-fraction"
        )


def _one_epoch(data: Dataset, seconds_per_image: float) -> float:
    """A search that overran its budget still trains its final model for an epoch."""
    return (len(data.train) + len(data.val)) * seconds_per_image


__all__ = ["ETA", "Search", "SearchConfig", "SearchReporter", "SearchSummary"]
