"""Search quality: the test accuracy each architecture search method reaches at the same wall-clock budget.

Compared, on scikit-learn's 8x8 `digits` and on the real MNIST subset in `../shared/datasets/mnist-5k`
(IDX files, relative to the project root; skipped with a message when absent), for each seed:

- every strategy of swarmcnn's registry (`list_strategies()`: pso, psocnn, random), run through swarmcnn's
  own `Search` exactly as `swarmcnn search DATA --budget S --seed N` runs it;
- Optuna's TPE sampler (`tpe`) over the same space: an Optuna study whose objective suggests
  `space.dimensions` floats in [0, 1), decodes them with `SearchSpace.decode` and scores the spec with
  swarmcnn's `evaluate_candidate` on the same data, normalisation and `EvaluationConfig` (identical specs are
  scored once, from a cache); it stops by `Search`'s budget rule, then gets the same final training;
- two hand-designed networks (`lenet5`, `vgg-small`, specs below): scored once as a candidate (which gives
  the seconds per epoch the budget rule needs), then the same final training.

Same for all: the budget (seconds per run, search and final training together; a candidate that starts
before the budget ends is finished, as in `Search`), the seed (search, candidate and final initialisation),
the data split (swarmcnn's default `DataConfig`), candidate training (`EvaluationConfig()`: 2 epochs), the
budget rules of `swarmcnn.search.budget` (the search methods' candidates stopped at the budget's time limit
or skipped as too slow; the hand-designed nets are never stopped), the promotion of the search methods'
finalists (`SearchConfig.promote` best trained again, longer, the final spec chosen among them; for TPE with
the same functions) and the final training (`Search`'s: the best spec trained on train+val for up to
`final_epochs` = 30 epochs, fewer when the budget would not hold them, with random shifts on mnist-5k as
`search --augment` does, then tested once on the test split). psocnn runs with this shared recipe, not its
`paper_training`, so that only the search differs. One process, all cores (`--workers 1`).

Reported per method and data set: test accuracy (mean ± sample std over seeds, and min-max), parameters of
the final model, wall time per run (data loading included), evaluations done and final training epochs.
The 1-minute load average before and after each data set is printed: other jobs on the same cores make
every time-budgeted result noisy (fewer evaluations, fewer final epochs).

    python benchmarks/search_quality.py [--budget 600] [--digits-budget 60] [--seeds 0 1 2]
        [--methods pso tpe ...] [--datasets digits mnist-5k] [--quick] [--json] [--out DIR]
        [--outcomes FILE.jsonl]                                 # finished runs, reused when run again
    python benchmarks/search_quality.py --table REPORT.json     # the tables of a saved --json report

Optuna comes with the `bench` extra: pip install -e ".[bench]".
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from swarmcnn.data import DataConfig, Dataset, load_data
from swarmcnn.search.budget import (
    candidate_seconds_limit,
    choose_final,
    final_plan,
    search_seconds_left,
    too_slow,
)
from swarmcnn.search.evaluate import EvaluationConfig, evaluate_candidate
from swarmcnn.search.executors import available_cores
from swarmcnn.search.final import train_final
from swarmcnn.search.journal import EvaluationRecord, Journal
from swarmcnn.search.loop import Search, SearchConfig
from swarmcnn.search.promotion import finalists, promotion_config
from swarmcnn.search.space import SearchSpace
from swarmcnn.search.strategies import list_strategies
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization

ROOT = Path(__file__).resolve().parent.parent
DATASETS = {"digits": "digits", "mnist-5k": str(ROOT.parent / "shared" / "datasets" / "mnist-5k")}
BASELINES = {
    "lenet5": "conv6x5 relu maxpool2 conv16x5 relu maxpool2 fc120 relu fc84 relu",
    "vgg-small": "conv32x3 bn relu conv32x3 bn relu maxpool2 conv64x3 bn relu conv64x3 bn relu maxpool2 "
    "fc128 relu dropout0.3",
}
TPE = "tpe"
OUTCOMES_FILE = "outcomes.jsonl"
AUGMENTED = {"mnist-5k"}  # final training with random shifts (`search --augment`); not for 8x8 digits
METHODS = [*list_strategies(), TPE, *BASELINES]
FINAL_EPOCHS = SearchConfig.__dataclass_fields__["final_epochs"].default
PROMOTE = SearchConfig.__dataclass_fields__["promote"].default

# --quick: a smoke test of every code path in well under two minutes, not a measurement. MNIST is shrunk to
# 14x14 and candidates are capped in size, because one default candidate on 28x28 alone takes about a minute.
QUICK_BUDGETS = {"digits": 4.0, "mnist-5k": 6.0}
QUICK_EVALUATION = EvaluationConfig(epochs=1, train_fraction=0.1, max_params=30_000, max_seconds=2.0)
QUICK_DATA = {"mnist-5k": DataConfig(image_size=(14, 14))}


@dataclass(frozen=True)
class Setting:
    """What every method of one data set and seed shares."""

    dataset: str
    source: str
    budget: float
    seed: int
    evaluation: EvaluationConfig
    data: DataConfig
    final_epochs: int
    augment: bool  # random shifts in the final training
    promote: int  # finalists trained again, longer, before the final choice (the search methods only)


@dataclass(frozen=True)
class Outcome:
    """One method's run on one data set with one seed."""

    method: str
    seed: int
    test_accuracy: float
    params: int
    seconds: float
    evaluations: int  # candidates scored, the ones refused without training (too large, too slow) included
    trained: int  # candidates that were trained
    final_epochs: int
    val_accuracy: float
    spec: str


UNTRAINED = ("too-large", "too-slow")  # statuses given without training a candidate


def trained_count(records) -> int:
    return sum(r.status not in UNTRAINED for r in records)


# -- swarmcnn's strategies -------------------------------------------------------------------------------


def run_strategy(name: str, setting: Setting, run_dir: Path) -> Outcome:
    """swarmcnn's own search with one registry strategy, as `swarmcnn search` runs it."""
    started = time.perf_counter()
    config = SearchConfig(
        source=setting.source,
        strategy=name,
        budget_seconds=setting.budget,
        seed=setting.seed,
        final_epochs=setting.final_epochs,
        augment=setting.augment,
        promote=setting.promote,
        evaluation=setting.evaluation,
        data=setting.data,
    )
    search = Search.start(run_dir, config)
    summary = search.run()
    search.journal.close()
    seconds = time.perf_counter() - started
    journal = Journal.open(run_dir)
    final_epochs, trained = journal.get("final")["final_epochs_trained"], trained_count(journal.evaluations())
    journal.close()
    data = search.data
    params = Spec.parse(summary.best_spec).num_params(data.input_shape, len(data.class_names))
    return Outcome(
        name, setting.seed, summary.test_accuracy, params, seconds, summary.evaluations, trained, final_epochs,
        summary.best_val_accuracy, summary.best_spec,
    )


# -- Optuna's TPE over the same space and evaluation -----------------------------------------------------


def run_tpe(setting: Setting) -> Outcome:
    """An Optuna TPE study over swarmcnn's space, stopped by `Search`'s budget rule, then the final training."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    data = load_data(setting.source, setting.data)
    normalization = Normalization.of(data.train.x)
    space = SearchSpace()
    scored: dict[str, EvaluationRecord] = {}  # the loop's rule: identical specs are trained once
    clock = time.perf_counter()  # Search's budget clock also starts once the data is loaded
    evaluation = setting.evaluation
    if evaluation.max_seconds is None:  # Search's limit for a budgeted run
        limit = candidate_seconds_limit(setting.budget, setting.final_epochs, data, evaluation)
        evaluation = replace(evaluation, max_seconds=limit)

    def objective(trial) -> float:
        position = np.array([trial.suggest_float(f"u{i}", 0.0, 1.0) for i in range(space.dimensions)])
        spec = space.decode(position, data.input_shape)
        if str(spec) not in scored:
            skipped = too_slow(spec, data, evaluation.max_seconds, scored.values())
            scored[str(spec)] = skipped or evaluate_candidate(spec, data, normalization, evaluation)
        score = scored[str(spec)].score
        return score if math.isfinite(score) else 0.0  # a failed candidate: the worst accuracy there is

    def stop_at_budget(study, trial) -> None:
        elapsed = time.perf_counter() - clock
        left = search_seconds_left(
            setting.budget, elapsed, scored.values(), data, setting.evaluation, setting.final_epochs, setting.promote
        )
        if left <= 0:
            study.stop()

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=setting.seed))
    study.optimize(objective, callbacks=[stop_at_budget])
    promoted = [  # Search's promotion of the finalists, in the same order
        evaluate_candidate(Spec.parse(r.spec), data, normalization, promotion_config(evaluation))
        for r in finalists(scored.values(), setting.promote)
    ]
    elapsed = time.perf_counter() - clock
    pool = [r for r in promoted if r.ok] or list(scored.values())
    best = choose_final(pool, data, setting.evaluation, setting.final_epochs, setting.budget - elapsed)
    test_accuracy, epochs = finish(best, data, setting, elapsed)
    counts = len(scored), trained_count(scored.values())
    return _final_outcome(TPE, setting, best, data, test_accuracy, epochs, counts, started)


# -- hand-designed networks ------------------------------------------------------------------------------


def run_baseline(name: str, setting: Setting) -> Outcome:
    """A fixed spec: scored once as a candidate (its seconds per epoch size the final training), then trained."""
    started = time.perf_counter()
    data = load_data(setting.source, setting.data)
    clock = time.perf_counter()
    record = evaluate_candidate(Spec.parse(BASELINES[name]), data, Normalization.of(data.train.x), setting.evaluation)
    test_accuracy, epochs = finish(record, data, setting, time.perf_counter() - clock)
    return _final_outcome(name, setting, record, data, test_accuracy, epochs, (1, 1), started)


# -- the final training, for the methods that do not run through Search: the same functions Search calls --


def finish(best: EvaluationRecord | None, data: Dataset, setting: Setting, elapsed: float) -> tuple[float, int]:
    """Search's final training of `best` within what is left of the budget; returns test accuracy and the
    epochs it trained."""
    if best is None:
        raise SystemExit(f"{setting.dataset} seed {setting.seed}: no candidate trained successfully")
    epochs, max_seconds = final_plan(best, data, setting.evaluation, setting.final_epochs, setting.budget - elapsed)
    final = train_final(
        Spec.parse(best.spec), data, setting.evaluation, epochs, setting.seed, augment=setting.augment,
        max_seconds=max_seconds,
    )
    return final.test.accuracy, len(final.result.epochs)


def _final_outcome(method, setting, best, data, test_accuracy, epochs, counts, started) -> Outcome:
    params = Spec.parse(best.spec).num_params(data.input_shape, len(data.class_names))
    seconds = time.perf_counter() - started
    return Outcome(
        method, setting.seed, test_accuracy, params, seconds, *counts, epochs, best.val_accuracy, best.spec
    )


# -- running and reporting -------------------------------------------------------------------------------


def run_method(method: str, setting: Setting, out: Path) -> Outcome:
    if method in BASELINES:
        return run_baseline(method, setting)
    if method == TPE:
        return run_tpe(setting)
    run_dir = out / setting.dataset / f"{method}-seed{setting.seed}"
    shutil.rmtree(run_dir, ignore_errors=True)  # a run cut off by an earlier, killed benchmark starts again
    return run_strategy(method, setting, run_dir)


def done_outcomes(path: Path) -> dict[tuple[str, str, int], Outcome]:
    """Outcomes an earlier benchmark already measured into the same file, by (data set, method, seed)."""
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(row.pop("dataset"), row["method"], row["seed"]): Outcome(**row) for row in rows}


def save_outcome(path: Path, dataset: str, outcome: Outcome) -> None:
    with open(path, "a") as file:
        file.write(json.dumps({"dataset": dataset, **asdict(outcome)}) + "\n")


def run_dataset(dataset: str, methods: list[str], seeds: list[int], args, out: Path) -> dict:
    """All methods and seeds on one data set; seeds are the outer loop, so that drifting load hits all alike."""
    setting = Setting(
        dataset=dataset,
        source=DATASETS[dataset],
        budget=args.digits_budget if dataset == "digits" else args.budget,
        seed=seeds[0],
        evaluation=QUICK_EVALUATION if args.quick else EvaluationConfig(),
        data=QUICK_DATA.get(dataset, DataConfig()) if args.quick else DataConfig(),
        final_epochs=2 if args.quick else FINAL_EPOCHS,
        augment=dataset in AUGMENTED,
        promote=PROMOTE,
    )
    if args.quick:
        setting = replace(setting, budget=QUICK_BUDGETS[dataset])
    load_before = os.getloadavg()[0]
    outcomes: dict[str, list[Outcome]] = {m: [] for m in methods}
    done = done_outcomes(args.outcomes or out / OUTCOMES_FILE)
    for seed in seeds:
        seeded = replace(setting, seed=seed, evaluation=replace(setting.evaluation, seed=seed))
        for method in methods:
            outcome = done.get((dataset, method, seed))
            if outcome is None:
                outcome = run_method(method, seeded, out)
                save_outcome(args.outcomes or out / OUTCOMES_FILE, dataset, outcome)
            outcomes[method].append(outcome)
            print(f"  {dataset} {method} seed {seed}: test {outcome.test_accuracy:.4f} in {outcome.seconds:.0f}s",
                  file=sys.stderr)
    return {
        "budget_seconds": setting.budget,
        "final_epochs": setting.final_epochs,
        "augment": setting.augment,
        "evaluation": {k: v for k, v in asdict(setting.evaluation).items() if k != "seed"},
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "methods": {m: summarise(runs) for m, runs in outcomes.items()},
    }


def summarise(runs: list[Outcome]) -> dict:
    accuracies = [r.test_accuracy for r in runs]
    return {
        "test_accuracy_mean": statistics.fmean(accuracies),
        "test_accuracy_std": statistics.stdev(accuracies) if len(runs) > 1 else 0.0,  # sample std (n - 1)
        "test_accuracy_min": min(accuracies),
        "test_accuracy_max": max(accuracies),
        "runs": [asdict(r) for r in runs],
    }


def print_table(dataset: str, result: dict, seeds: list[int]) -> None:
    print(f"\n{dataset}: budget {result['budget_seconds']:g}s per run, seeds {' '.join(map(str, seeds))}; "
          f"load average {result['load_average_before']:.1f} before, {result['load_average_after']:.1f} after")
    print(f"{'method':<10} {'test acc % (mean ± std)':>23} {'min–max':>13} {'params':>15} {'wall s':>7} "
          f"{'evals':>7} {'trained':>7} {'final ep':>8}")
    for method, summary in result["methods"].items():
        runs = summary["runs"]
        accuracy = f"{100 * summary['test_accuracy_mean']:.2f} ± {100 * summary['test_accuracy_std']:.2f}"
        spread = f"{100 * summary['test_accuracy_min']:.2f}–{100 * summary['test_accuracy_max']:.2f}"
        params = _span([r["params"] for r in runs], lambda v: f"{v / 1000:.1f}k")
        print(f"{method:<10} {accuracy:>23} {spread:>13} {params:>15} "
              f"{statistics.fmean(r['seconds'] for r in runs):>7.0f} "
              f"{statistics.fmean(r['evaluations'] for r in runs):>7.1f} "
              f"{statistics.fmean(r['trained'] for r in runs):>7.1f} "
              f"{statistics.fmean(r['final_epochs'] for r in runs):>8.1f}")
    print("std: sample standard deviation over seeds; wall s, evals (scored), trained, final ep: means over seeds")


def _span(values: list, show) -> str:
    low, high = min(values), max(values)
    return show(low) if low == high else f"{show(low)}–{show(high)}"


def _choices(values: list[str], known: list[str], what: str) -> list[str]:
    unknown = [v for v in values if v not in known]
    if unknown:
        raise SystemExit(f"unknown {what} {', '.join(unknown)}; choose from {', '.join(known)}")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=600.0, help="seconds per run on mnist-5k (default 600)")
    parser.add_argument("--digits-budget", type=float, default=60.0, help="seconds per run on digits (default 60)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=METHODS, help=f"subset of {' '.join(METHODS)}")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), help=f"subset of {' '.join(DATASETS)}")
    parser.add_argument("--quick", action="store_true", help="tiny budgets and candidates: a smoke test, one seed")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument(
        "--out",
        type=Path,
        help=f"folder for the search runs and {OUTCOMES_FILE}, one line per finished run; a benchmark given the "
        "folder of an earlier, killed one reuses what it finished (default: a temp dir)",
    )
    parser.add_argument(
        "--outcomes",
        type=Path,
        metavar="FILE.jsonl",
        help=f"where finished runs are appended and reused from (default: OUT/{OUTCOMES_FILE})",
    )
    parser.add_argument("--table", type=Path, metavar="REPORT.json", help="print the tables of a saved --json report")
    args = parser.parse_args()
    if args.table:
        print_report(json.loads(args.table.read_text()))
        return
    methods = _choices(args.methods, METHODS, "method")
    datasets = _choices(args.datasets, list(DATASETS), "data set")
    seeds = args.seeds[:1] if args.quick else args.seeds

    torch.set_num_threads(available_cores())  # as Search does for --workers 1, for the methods outside it
    report = {
        "machine": {"cores": available_cores(), "torch": torch.__version__, "python": platform.python_version()},
        "seeds": seeds,
        "quick": args.quick,
        "datasets": {},
    }
    with tempfile.TemporaryDirectory(prefix="search_quality-") as scratch:
        out = args.out or Path(scratch)
        out.mkdir(parents=True, exist_ok=True)
        for dataset in datasets:
            if dataset != "digits" and not Path(DATASETS[dataset]).exists():
                print(f"skipping {dataset}: {DATASETS[dataset]} not found", file=sys.stderr)
                report["datasets"][dataset] = {"skipped": f"{DATASETS[dataset]} not found"}
                continue
            report["datasets"][dataset] = run_dataset(dataset, methods, seeds, args, out)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)


def print_report(report: dict) -> None:
    print(f"{report['machine']['cores']} cores, torch {report['machine']['torch']}" + (" (--quick)" * report["quick"]))
    for dataset, result in report["datasets"].items():
        if "skipped" in result:
            print(f"\n{dataset}: skipped ({result['skipped']})")
        else:
            print_table(dataset, result, report["seeds"])


if __name__ == "__main__":
    main()
