"""Signals: swarmcnn's search on the UCR / UEA sets of `../shared/datasets/ucr-dev` at a budget of 2 minutes, beside
each signal design trained alone for the same time and sktime's MiniRocket, with the published figures beside them.

For each set and seed, one after the other in one process:

- `pso`: swarmcnn's own search, exactly as `swarmcnn search SET --budget 120 --seed N` runs it
  (`search_quality.run_strategy`): it starts from the signal designs and explores the space for the set's length
  (`SearchSpace.default_for`); other strategies of the registry on request (`--methods random tpe psocnn`);
- each signal design of `swarmcnn.designs` (`lenet1d`, `fcn`) trained alone with the search's final recipe for the
  whole budget (`search_quality.run_design`): the baseline a search must not fall below;
- `minirocket`: MiniRocket (Dempster, Schmidt & Webb, "MiniRocket: a very fast (almost) deterministic transform
  for time series classification", KDD 2021) as sktime's `RocketClassifier(rocket_transform="minirocket")` builds it
  (about 10,000 features, a ridge classifier whose regularisation is chosen by leave-one-out), on the arrays
  swarmcnn reads (unequal lengths resampled as `--length` does, raw values), fitted on the whole training file: it
  needs no validation split. It needs the `bench-signals` extra (pip install -e ".[bench-signals]": sktime and
  numba); without it the table says why it is absent. Its wall time includes numba's compilation the first time.

Every model is tested once on the set's own test split. Reported per set and method: test accuracy (mean ± sample
std over seeds, min-max), whether the final network was a starting design or a swarm find, parameters, wall time,
the final training's epochs; under each set the published test accuracies for the same split (`ANCHORS`, from
issue 26), and a summary of the means over all sets.

    python benchmarks/signals.py [--sets GunPoint ArrowHead ...] [--budget 120] [--seeds 0 1 2]
        [--methods pso fcn lenet1d minirocket] [--augment] [--val-fraction F] [--out DIR]
        [--outcomes FILE.jsonl] [--json]
    python benchmarks/signals.py --table OUTCOMES.jsonl   # the tables of the runs finished so far
    python benchmarks/signals.py --table REPORT.json      # the tables of a saved --json report

Finished runs are appended to OUT/outcomes.jsonl (or --outcomes) and reused by a later benchmark given the same
file, so a killed benchmark continues where it stopped. A set whose folder is absent is skipped with a message.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, replace
from importlib.util import find_spec
from pathlib import Path

import numpy as np
from search_quality import (
    SHARED,
    Bench,
    Outcome,
    choices,
    done_outcomes,
    machine,
    run_design,
    run_strategy,
    save_outcome,
    summarise,
)

from swarmcnn.cores import available_cores
from swarmcnn.data import DataConfig, Dataset, load_data
from swarmcnn.designs import SIGNAL_DESIGNS
from swarmcnn.search.strategies import list_strategies

UCR = SHARED / "ucr-dev"
OUTCOMES_FILE = "outcomes.jsonl"
MINIROCKET = "minirocket"
METHODS = [*list_strategies(), *SIGNAL_DESIGNS, MINIROCKET]
DEFAULT_METHODS = ["pso", *SIGNAL_DESIGNS, MINIROCKET]
DEFAULT_BUDGET = 120.0  # seconds per run: the 2 minutes on 2 cores
ANCHOR_NAMES = ("FCN", "ResNet", "InceptionTime", "ROCKET")
# Published test accuracy (%) on each set's own split, as issue 26 tables them: FCN and ResNet the mean of 5 runs in
# hfawaz/dl-4-tsc (results-ucr-128.csv; JapaneseVowels results-mts.csv), ROCKET angus924/rocket results_ucr.csv,
# InceptionTime hfawaz/InceptionTime (5-network ensemble); BasicMotions and SelfRegulationSCP1 the default split of
# the multivariate bake-off (Ruiz et al. 2021) and of the HIVE-COTE 2 paper (Middlehurst et al. 2021).
ANCHORS = {
    "GunPoint": ("100", "99.1", "100", "100"),
    "ArrowHead": ("84.3", "83.8", "84.6", "81.4"),
    "OSULeaf": ("97.9", "98.0", "94.2", "94.1"),
    "JapaneseVowels": ("99.3", "99.2", "–", "–"),
    "BasicMotions": ("100", "100", "100", "100"),
    "SelfRegulationSCP1": ("78.2", "76.8-83.6", "86.3", "84.3 (HIVE-COTE 2: 89.1)"),
}
SETS = list(ANCHORS)


# -- MiniRocket ------------------------------------------------------------------------------------------


def minirocket_absent() -> str | None:
    """Why MiniRocket cannot run here, or None when it can."""
    missing = [name for name in ("sktime", "numba") if find_spec(name) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (pip install -e \".[bench-signals]\")"
    return None


def run_minirocket(bench: Bench, seed: int) -> Outcome:
    """sktime's MiniRocket classifier fitted on the whole training file and tested on the set's own test split."""
    from sktime.classification.kernel_based import RocketClassifier

    started = time.perf_counter()
    data = load_data(bench.source, bench.data)
    x, y = _arrays(data, ("train", "val"))
    classifier = RocketClassifier(rocket_transform="minirocket", random_state=seed, n_jobs=available_cores())
    classifier.fit(x, y)
    x_test, y_test = _arrays(data, ("test",))
    accuracy = float(np.mean(classifier.predict(x_test) == y_test))
    features = int(getattr(classifier, "num_kernels", 10_000))
    return Outcome(MINIROCKET, seed, accuracy, features, time.perf_counter() - started,
                   "MiniRocket + RidgeClassifierCV (sktime RocketClassifier)", found_by="-")


def _arrays(data: Dataset, splits: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The series (N, C, L) as float64 and their labels, of the splits named, in sktime's numpy3D layout."""
    parts = [getattr(data, split) for split in splits]
    x = np.concatenate([part.x.numpy() for part in parts]).astype(np.float64)
    y = np.concatenate([part.y.numpy() for part in parts])
    return x, y


# -- running ---------------------------------------------------------------------------------------------


def run_method(method: str, bench: Bench, seed: int, out: Path) -> Outcome:
    if method == MINIROCKET:
        return run_minirocket(bench, seed)
    if method in SIGNAL_DESIGNS:
        return run_design(method, bench, seed)
    return run_strategy(method, bench, seed, out / bench.name / f"{method}-seed{seed}")


def run_set(bench: Bench, methods: list[str], seeds: list[int], outcomes: Path, out: Path) -> dict:
    """Every method and seed on one set; seeds are the outer loop, so that drifting load hits all methods alike."""
    data = load_data(bench.source, bench.data)
    load_before = os.getloadavg()[0]
    absent = {MINIROCKET: why} if MINIROCKET in methods and (why := minirocket_absent()) else {}
    runs: dict[str, list[Outcome]] = {m: [] for m in methods if m not in absent}
    done = done_outcomes(outcomes)
    settings = _settings(bench)
    for seed in seeds:
        for method in runs:
            outcome = done.get((bench.name, method, seed, _precision(method, bench), settings))
            if outcome is None:
                outcome = replace(run_method(method, bench, seed, out), settings=settings)
                save_outcome(outcomes, bench.name, outcome)
            runs[method].append(outcome)
            print(f"  {bench.name} {method} seed {seed}: test {outcome.test_accuracy:.4f} in {outcome.seconds:.0f}s",
                  file=sys.stderr)
    return {
        **asdict(bench),
        "shape": list(data.input_shape),
        "classes": len(data.class_names),
        "cases": {"train": len(data.train) + len(data.val), "test": len(data.test)},
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "absent": absent,
        "methods": {m: summarise(r) for m, r in runs.items()},
    }


def _settings(bench: Bench) -> str:
    """What a run's options changed from a plain `swarmcnn search SET --budget 2m`, as the outcomes file keys it."""
    changed = ["augment"] * bench.augment
    if bench.val_fraction != DataConfig.val_fraction:
        changed.append(f"val_fraction={bench.val_fraction:g}")
    return ",".join(changed)


def _precision(method: str, bench: Bench) -> str:
    """The precision an outcome is saved under: MiniRocket computes in float64 and is saved as fp32 (Outcome's
    default), the networks in the bench's."""
    return "fp32" if method == MINIROCKET else bench.resolved_precision


# -- reporting -------------------------------------------------------------------------------------------


def print_set(name: str, result: dict) -> None:
    facts = ""
    if "shape" in result:
        shape = "×".join(map(str, result["shape"]))
        facts = (f"; {shape}, {result['classes']} classes, {result['cases']['train']} training cases, "
                 f"{result['cases']['test']} test")
    load = result.get("load_average_before")
    loads = "" if load is None else f"; load average {load:.1f} before, {result['load_average_after']:.1f} after"
    budget = (f": budget {result['budget']:g}s per run" if result.get("budget")
              else " (saved runs: their wall s is about the budget)")
    print(f"\n{name}{facts}{budget}{loads}")
    print(f"{'method':<11} {'seeds':>5} {'test acc % (mean ± std)':>23} {'min–max':>13} {'found by':>9} "
          f"{'params':>9} {'wall s':>6} {'final ep (trained)':>18} {'members':>7}")
    for method, summary in result["methods"].items():
        runs = summary["runs"]
        if not runs:
            continue
        accuracy = f"{100 * summary['test_accuracy_mean']:.2f} ± {100 * summary['test_accuracy_std']:.2f}"
        spread = f"{100 * summary['test_accuracy_min']:.2f}–{100 * summary['test_accuracy_max']:.2f}"
        params = statistics.fmean(r["params"] for r in runs)
        shown_params = f"{params / 1000:.0f}k feat" if method == MINIROCKET else f"{params / 1000:.1f}k"
        epochs = "-" if method == MINIROCKET else (
            f"{statistics.fmean(r['final_epochs'] for r in runs):.1f} "
            f"({statistics.fmean(r['final_epochs_trained'] for r in runs):.1f})")
        members = "-" if method == MINIROCKET else "/".join(str(r.get("final_members", 1)) for r in runs)
        print(f"{method:<11} {len(runs):>5} {accuracy:>23} {spread:>13} {_found(method, runs):>9} {shown_params:>9} "
              f"{statistics.fmean(r['seconds'] for r in runs):>6.0f} {epochs:>18} {members:>7}")
    for method, why in result.get("absent", {}).items():
        print(f"{method:<11} absent: {why}")
    anchors = ANCHORS.get(name)
    if anchors:
        print("published (test %): " + " · ".join(f"{a} {v}" for a, v in zip(ANCHOR_NAMES, anchors)))


def _found(method: str, runs: list[dict]) -> str:
    """Which network a search ended with: 'swarm k/n' runs a swarm find, else a starting design."""
    if method in SIGNAL_DESIGNS:
        return "design"
    if method == MINIROCKET:
        return "-"
    return f"swarm {sum(r.get('found_by') == 'swarm' for r in runs)}/{len(runs)}"


def print_summary(report: dict) -> None:
    """The mean test accuracy of each method on each set, the published figures beside, and the means over the sets
    every method ran on."""
    sets = {n: r for n, r in report["sets"].items() if "methods" in r}
    methods = list(dict.fromkeys(m for r in sets.values() for m, s in r["methods"].items() if s["runs"]))
    if not sets or not methods:
        return
    print("\nsummary: test accuracy %, mean over seeds; the published figures at the right")
    print(f"{'set':<20} " + " ".join(f"{m:>10}" for m in methods) + "  " + " ".join(f"{a:>13}" for a in ANCHOR_NAMES))
    means: dict[str, list[float]] = {m: [] for m in methods}
    for name, result in sets.items():
        cells = []
        for method in methods:
            summary = result["methods"].get(method)
            value = summary["test_accuracy_mean"] * 100 if summary and summary["runs"] else None
            cells.append("-" if value is None else f"{value:.2f}")
            if value is not None:
                means[method].append(value)
        anchors = ANCHORS.get(name, ("",) * len(ANCHOR_NAMES))
        print(f"{name:<20} " + " ".join(f"{c:>10}" for c in cells) + "  "
              + " ".join(f"{a.split(' ')[0]:>13}" for a in anchors))
    complete = [m for m in methods if len(means[m]) == len(sets)]
    print(f"{'mean':<20} " + " ".join(f"{statistics.fmean(means[m]):>10.2f}" if m in complete else f"{'-':>10}"
                                      for m in methods) + f"  (over the {len(sets)} sets above)")


def print_report(report: dict) -> None:
    machine = report["machine"]
    print(f"{machine['cores']} cores, torch {machine['torch']}; seeds {' '.join(map(str, report['seeds']))}")
    for name, result in report["sets"].items():
        if "skipped" in result:
            print(f"\n{name}: skipped ({result['skipped']})")
        else:
            print_set(name, result)
    print_summary(report)


def report_of_outcomes(path: Path) -> dict:
    """A report of the runs an outcomes file holds (no budget, load averages or data facts: it keeps none)."""
    by_set: dict[str, dict[str, list[Outcome]]] = {}
    for (name, method, *_), outcome in done_outcomes(path).items():
        by_set.setdefault(name, {}).setdefault(method, []).append(outcome)
    sets = {}
    for name in sorted(by_set, key=lambda n: SETS.index(n) if n in SETS else len(SETS)):
        runs = by_set[name]
        order = sorted(runs, key=lambda m: METHODS.index(m) if m in METHODS else len(METHODS))
        sets[name] = {"name": name, "source": str(UCR / name), "methods": {m: summarise(runs[m]) for m in order}}
    seeds = sorted({o.seed for runs in by_set.values() for r in runs.values() for o in r})
    return {"machine": machine(), "seeds": seeds, "sets": sets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=SETS, help=f"of {' '.join(SETS)} (default: all)")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET, help="seconds per run (120)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=DEFAULT_METHODS, help=f"of {' '.join(METHODS)}")
    parser.add_argument("--augment", action="store_true",
                        help="random shifts in time in every training, as `search --augment` (default: none)")
    parser.add_argument("--val-fraction", type=float, default=DataConfig.val_fraction,
                        help="share of each training file held out to rank the networks, as `search --val-fraction` "
                        "(0.15)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--out", type=Path, help="folder for the search runs and outcomes (default: a temp dir)")
    parser.add_argument("--outcomes", type=Path, metavar="FILE.jsonl", help=f"default: OUT/{OUTCOMES_FILE}")
    parser.add_argument("--table", type=Path, metavar="FILE",
                        help="print the tables of an outcomes .jsonl file or of a saved --json report")
    args = parser.parse_args()
    if args.table:
        print_report(report_of_outcomes(args.table) if args.table.suffix == ".jsonl"
                     else json.loads(args.table.read_text()))
        return
    methods = choices(args.methods, METHODS, "method")
    names = choices(args.sets, SETS, "set")
    report = {"machine": machine(), "seeds": args.seeds, "sets": {}}
    with tempfile.TemporaryDirectory(prefix="signals-") as scratch:
        out = args.out or Path(scratch)
        out.mkdir(parents=True, exist_ok=True)
        outcomes = args.outcomes or out / OUTCOMES_FILE
        for name in names:
            bench = Bench(name, str(UCR / name), args.budget, augment=args.augment, val_fraction=args.val_fraction)
            if not Path(bench.source).is_dir():
                print(f"skipping {name}: {bench.source} not found", file=sys.stderr)
                report["sets"][name] = {"skipped": f"{bench.source} not found"}
                continue
            report["sets"][name] = run_set(bench, methods, args.seeds, outcomes, out)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)


if __name__ == "__main__":
    main()
