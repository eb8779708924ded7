"""Search quality: the test accuracy each search method reaches at the same wall-clock budget, on any data.

For each data set and seed, side by side in one process:

- every strategy of swarmcnn's registry (`list_strategies()`: pso, psocnn, random, tpe) run by swarmcnn's own
  `Search`, exactly as `swarmcnn search DATA --budget S --seed N [--augment] [--flip]` runs it: the same
  designs first, rungs, budget rules and final training for all (psocnn with this shared recipe, not its
  paper's training, so that only the search differs);
- the hand-designed networks of `swarmcnn.designs` (`lenet5`, `vgg-small`; `vgg-3block` on request), each trained
  with the same final recipe (`final_config`, on train+val, augmentation as the search's final training) for the whole
  budget: its epochs follow from its pace measured the same way (`seconds_per_image`, `final_epochs`), its
  schedule is driven by the budget's time. This is the obvious baseline a search must never fall below.

Every model is tested once on the test split the search never saw (the source's own where it has one).
Reported per method and data set: test accuracy (mean ± sample std over seeds, min-max), parameters, wall
time, candidates (rung 0) and the share of them trained to their planned images, compressed by their time
limit, refused untrained (too slow, too large) or failed, and the final training's epochs planned and trained.

`--loaded` runs pso once more per data set (first seed) beside a CPU-bound process of our own pinned to one
core, as on a user's busy laptop: a shared machine should cost time, not quality.

    python benchmarks/search_quality.py [--datasets digits mnist-5k cifar-500 cifar-2000]
        [--data NAME=SOURCE[,budget=S][,per_class=N][,augment][,flip] ...] [--budget S]
        [--seeds 0 1 2] [--methods pso tpe ...] [--one-seed psocnn random tpe] [--loaded] [--precision fp32]
        [--out DIR] [--outcomes FILE.jsonl] [--json]
    python benchmarks/search_quality.py --table REPORT.json     # the tables of a saved --json report
    python benchmarks/search_quality.py --table OUTCOMES.jsonl  # the tables of the runs finished so far

Finished runs are appended to OUT/outcomes.jsonl (or --outcomes) and reused by a later benchmark given the same
file, so a killed benchmark continues where it stopped. The real data sets live beside the project
(`../shared/datasets`, never copied into it); a data set whose source is absent is skipped with a message.
Optuna (the tpe strategy) comes with the `bench` extra: pip install -e ".[bench]".
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from swarmcnn.cores import ThreadGovernor, available_cores
from swarmcnn.data import DataConfig, Dataset, load_data
from swarmcnn.designs import DESIGNS, SIGNAL_DESIGNS, design, fitting
from swarmcnn.hardware import resolve
from swarmcnn.search.budget import final_epochs, final_members, final_schedule_epochs
from swarmcnn.search.evaluate import EvaluationConfig
from swarmcnn.search.final import final_config, train_final
from swarmcnn.search.journal import Journal
from swarmcnn.search.loop import Search, SearchConfig
from swarmcnn.search.pace import seconds_per_image
from swarmcnn.search.runs import candidate_counts
from swarmcnn.search.strategies import list_strategies
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
OUTCOMES_FILE = "outcomes.jsonl"
METHODS = [*list_strategies(), *DESIGNS]
# the search's own strategies against random search and every starting design trained alone (vgg-small, tpe and
# psocnn on request; the signal designs are benchmarks/signals.py's)
DEFAULT_METHODS = [m for m in METHODS if m not in ("vgg-small", "tpe", "psocnn", *SIGNAL_DESIGNS)]
LOADED = "pso loaded"  # pso beside a CPU-bound process on one core


@dataclass(frozen=True)
class Bench:
    """One data set of the benchmark and how it is searched."""

    name: str
    source: str
    budget: float  # seconds per run: search and final training together
    per_class: int | None = None  # the first N training images of each class (a smaller set, not a copy)
    augment: bool = False  # random shifts in the final training (`search --augment`)
    flip: bool = False  # random horizontal flips in the final training (`search --flip`)
    precision: str = "auto"  # `search --precision`: every method of a data set trains in the same one
    val_fraction: float = DataConfig.val_fraction  # `search --val-fraction`

    @property
    def resolved_precision(self) -> str:
        return resolve("auto", self.precision).precision

    @property
    def data(self) -> DataConfig:
        return DataConfig(per_class=self.per_class, val_fraction=self.val_fraction)


DEFAULTS = {
    "digits": Bench("digits", "digits", 60),
    "mnist-5k": Bench("mnist-5k", str(SHARED / "mnist-5k"), 600, augment=True),
    "cifar-500": Bench("cifar-500", str(SHARED / "cifar10-dev"), 600, per_class=500, augment=True, flip=True),
    "cifar-2000": Bench("cifar-2000", str(SHARED / "cifar10-dev"), 600, augment=True, flip=True),
}


@dataclass(frozen=True)
class Outcome:
    """One method's run on one data set with one seed."""

    method: str
    seed: int
    test_accuracy: float
    params: int
    seconds: float
    spec: str
    evaluations: int = 1  # candidates scored at rung 0 (the designs: their one training)
    candidates: dict | None = None  # trained / compressed / refused / failed counts (search methods)
    final_epochs: int = 0  # planned
    final_epochs_trained: float = 0.0
    final_cut_by_time: bool = False
    precision: str = "fp32"  # as trained (rows saved before this field existed were all fp32)
    found_by: str = "design"  # the final network: a starting design, or a swarm find (search/provenance.py)
    nearest_design: str | None = None  # and the design nearest to it, in layer edits
    design_distance: int = 0
    scored: int = 1  # architectures the search gave a fitness (trained at rung 0, or scored by the supernet)
    final_members: int = 1  # trainings the final model averages (swarmcnn.ensemble)
    settings: str = ""  # how a run differed from the benchmark's own for its data set (signals.py: "augment")


# -- the methods -----------------------------------------------------------------------------------------


def run_strategy(name: str, bench: Bench, seed: int, run_dir: Path) -> Outcome:
    """swarmcnn's own search with one registry strategy, as `swarmcnn search` runs it."""
    started = time.perf_counter()
    data = load_data(bench.source, bench.data)  # as the command loads it, once, handed to the search
    config = SearchConfig(
        source=bench.source,
        strategy=name,
        budget_seconds=bench.budget,
        seed=seed,
        augment=bench.augment,
        flip=bench.flip,
        evaluation=EvaluationConfig(seed=seed, precision=bench.precision),
        data=bench.data,
    )
    shutil.rmtree(run_dir, ignore_errors=True)  # a run cut off by an earlier, killed benchmark starts again
    search = Search.start(run_dir, config, data=data)
    summary = search.run()
    search.journal.close()
    seconds = time.perf_counter() - started
    journal = Journal.open(run_dir)
    final, records, scored = journal.get("final"), journal.evaluations(), journal.get("scored", None)
    journal.close()
    params = design_params(summary.best_spec, search.data) * final.get("final_members", 1)
    found = final.get("provenance") or {}
    return Outcome(
        name, seed, summary.test_accuracy, params, seconds, summary.best_spec, len(records),
        candidate_counts(records), final["final_epochs"], final["final_epochs_trained"], final["final_cut_by_time"],
        bench.resolved_precision, found.get("found_by", "design"), found.get("nearest_design"),
        found.get("design_distance", 0), scored if isinstance(scored, int) else len(records),
        final_members=final.get("final_members", 1),
    )


def run_design(name: str, bench: Bench, seed: int) -> Outcome | None:
    """A hand-designed network trained with the search's final recipe for the whole budget; None where it does not
    fit the data (airbench's three pools on 8x8 digits)."""
    started = time.perf_counter()
    data = load_data(bench.source, bench.data)
    if name not in fitting(data.input_shape):
        return None
    ThreadGovernor()  # the threads a search would get
    clock = time.perf_counter()  # as Search's budget clock, started once the data is loaded
    spec = design(name)
    config = final_config(EvaluationConfig(precision=bench.precision), 1, seed, bench.augment, bench.flip)
    pace = seconds_per_image(spec, data, Normalization.of(data.train.x), config)
    seconds = bench.budget - (time.perf_counter() - clock)
    members, epochs, each = final_members(final_epochs(seconds, data, pace), seconds, data)  # as the search's final
    final = train_final(spec, data, replace(config, epochs=final_schedule_epochs(epochs), max_seconds=each),
                        members=members)
    trained = round(final.result.images / len(final.data.train), 2)
    return Outcome(
        name, seed, final.test.accuracy, members * design_params(str(spec), data), time.perf_counter() - started,
        str(spec),
        final_epochs=epochs, final_epochs_trained=trained, final_cut_by_time=final.result.cut_by_time,
        precision=bench.resolved_precision, final_members=members,
    )


def design_params(spec: str, data: Dataset) -> int:
    return Spec.parse(spec).num_params(data.input_shape, len(data.class_names))


@contextmanager
def cpu_hog():
    """A CPU-bound process of our own on one core while the block runs."""
    code = "import os\nos.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\nwhile True: pass"
    hog = subprocess.Popen([sys.executable, "-c", code])
    try:
        yield
    finally:
        hog.kill()
        hog.wait()


def run_method(method: str, bench: Bench, seed: int, out: Path) -> Outcome | None:
    if method in DESIGNS:
        return run_design(method, bench, seed)
    if method == LOADED:
        with cpu_hog():
            return replace(run_strategy("pso", bench, seed, out / bench.name / f"loaded-seed{seed}"), method=LOADED)
    return run_strategy(method, bench, seed, out / bench.name / f"{method}-seed{seed}")


# -- running and reporting -------------------------------------------------------------------------------


def done_outcomes(path: Path) -> dict[tuple[str, str, int, str, str], Outcome]:
    """Outcomes an earlier benchmark already measured into the same file, by (data set, method, seed, precision,
    settings): a run of other settings is never taken for one of these."""
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    outcomes = [(row.pop("dataset"), Outcome(**row)) for row in rows]
    return {(dataset, o.method, o.seed, o.precision, o.settings): o for dataset, o in outcomes}


def save_outcome(path: Path, dataset: str, outcome: Outcome) -> None:
    with open(path, "a") as file:
        file.write(json.dumps({"dataset": dataset, **asdict(outcome)}) + "\n")


def run_bench(
    bench: Bench, methods: list[str], seeds: list[int], one_seed: set[str], outcomes: Path, out: Path
) -> dict:
    """All methods and seeds on one data set; seeds are the outer loop, so that drifting load hits all alike."""
    load_before = os.getloadavg()[0]
    runs: dict[str, list[Outcome]] = {m: [] for m in methods}
    done = done_outcomes(outcomes)
    unfit: set[str] = set()  # designs found not to fit the data: not loaded again for every seed
    for seed in seeds:
        for method in methods:
            if method in unfit or (seed != seeds[0] and (method in one_seed or method == LOADED)):
                continue
            outcome = done.get((bench.name, method, seed, bench.resolved_precision, ""))
            if outcome is None:
                outcome = run_method(method, bench, seed, out)
                if outcome is None:
                    print(f"  {bench.name} {method}: does not fit the data, left out", file=sys.stderr)
                    unfit.add(method)
                    continue
                save_outcome(outcomes, bench.name, outcome)
            runs[method].append(outcome)
            print(f"  {bench.name} {method} seed {seed}: test {outcome.test_accuracy:.4f} in {outcome.seconds:.0f}s",
                  file=sys.stderr)
    return {
        **asdict(bench),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "methods": {m: summarise(r) for m, r in runs.items() if r},  # none: a design that does not fit
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


def shares(runs: list[dict]) -> str:
    """Candidates trained / compressed / refused / failed, in % of all candidates over the runs."""
    counts = [r["candidates"] for r in runs if r["candidates"]]
    if not counts:
        return "-"
    total = sum(sum(c.values()) for c in counts)
    kinds = ("trained", "compressed", "refused", "failed")
    return "/".join(f"{100 * sum(c[k] for c in counts) / total:.0f}" for k in kinds)


def print_table(name: str, result: dict) -> None:
    load = result.get("load_average_before")
    loads = "" if load is None else f"; load average {load:.1f} before, {result['load_average_after']:.1f} after"
    per_class = f", {result['per_class']} per class" if result["per_class"] else ""
    print(f"\n{name} ({result['source']}{per_class}): budget {result['budget']:g}s per run{loads}")
    print(f"{'method':<14} {'prec':>4} {'seeds':>5} {'test acc % (mean ± std)':>23} {'min–max':>13} "
          f"{'margin':>6} {'found by':>9} {'params':>15} {'wall s':>6} {'cands':>6} {'scored':>6} "
          f"{'tr/co/re/fa %':>13} {'final ep (trained)':>18}")
    designs = [s["test_accuracy_mean"] for m, s in result["methods"].items() if m in DESIGNS and s["runs"]]
    best_design = max(designs, default=None)
    for method, summary in result["methods"].items():
        runs = summary["runs"]
        if not runs:
            continue
        accuracy = f"{100 * summary['test_accuracy_mean']:.2f} ± {100 * summary['test_accuracy_std']:.2f}"
        spread = f"{100 * summary['test_accuracy_min']:.2f}–{100 * summary['test_accuracy_max']:.2f}"
        params = _span([r["params"] for r in runs], lambda v: f"{v / 1000:.1f}k")
        epochs = (f"{statistics.fmean(r['final_epochs'] for r in runs):.1f} "
                  f"({statistics.fmean(r['final_epochs_trained'] for r in runs):.1f})")
        precision = "/".join(sorted({r["precision"] for r in runs}))
        margin = "" if best_design is None else f"{100 * (summary['test_accuracy_mean'] - best_design):+.2f}"
        finds = sum(r.get("found_by") == "swarm" for r in runs)
        found = "design" if method in DESIGNS else f"swarm {finds}/{len(runs)}"
        scored = statistics.fmean(r.get("scored", r["evaluations"]) for r in runs)
        print(f"{method:<14} {precision:>4} {len(runs):>5} {accuracy:>23} {spread:>13} {margin:>6} {found:>9} "
              f"{params:>15} {statistics.fmean(r['seconds'] for r in runs):>6.0f} "
              f"{statistics.fmean(r['evaluations'] for r in runs):>6.1f} {scored:>6.0f} {shares(runs):>13} "
              f"{epochs:>18}")
    print("std: sample standard deviation over seeds; margin: the mean less the best design's mean; found by: runs "
          "whose final network was a swarm find, not a starting design; wall s, cands (candidates trained at rung 0), "
          "scored (architectures given a fitness) and final epochs: means over seeds; tr/co/re/fa: candidates "
          "trained to their planned images / compressed by their time limit / refused untrained / failed")


def _span(values: list, show) -> str:
    low, high = min(values), max(values)
    return show(low) if low == high else f"{show(low)}–{show(high)}"


def parse_bench(text: str, default_budget: float | None) -> Bench:
    """NAME=SOURCE[,budget=S][,per_class=N][,augment][,flip]"""
    name, _, rest = text.partition("=")
    source, *options = rest.split(",")
    if not name or not source:
        raise SystemExit(f"--data {text!r}: expected NAME=SOURCE[,budget=S][,per_class=N][,augment][,flip]")
    values: dict = {"budget": default_budget or 600.0}
    for option in options:
        key, _, value = option.partition("=")
        if key in ("augment", "flip") and not value:
            values[key] = True
        elif key in ("budget", "per_class") and value:
            values[key] = float(value) if key == "budget" else int(value)
        else:
            raise SystemExit(f"--data {text!r}: unknown option {option!r}")
    return Bench(name, source, **values)


def machine() -> dict:
    """What a figure was measured on."""
    return {"cores": available_cores(), "torch": torch.__version__, "python": platform.python_version()}


def choices(values: list[str], known: list[str], what: str) -> list[str]:
    unknown = [v for v in values if v not in known]
    if unknown:
        raise SystemExit(f"unknown {what} {', '.join(unknown)}; choose from {', '.join(known)}")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=list(DEFAULTS), help=f"of {' '.join(DEFAULTS)}")
    parser.add_argument("--data", action="append", default=[], metavar="NAME=SOURCE[,...]", help="another data set")
    parser.add_argument("--budget", type=float, help="seconds per run for every data set (default: each its own)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=DEFAULT_METHODS, help=f"of {' '.join(METHODS)}")
    parser.add_argument("--one-seed", nargs="*", default=["psocnn", "random", "tpe"],
                        help="methods run on the first seed only (default: psocnn random tpe)")
    parser.add_argument("--loaded", action="store_true", help="also pso beside a CPU-bound process on one core")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                        help="as `swarmcnn search --precision`, for every method (default: auto)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--out", type=Path, help="folder for the search runs and outcomes (default: a temp dir)")
    parser.add_argument("--outcomes", type=Path, metavar="FILE.jsonl", help=f"default: OUT/{OUTCOMES_FILE}")
    parser.add_argument("--table", type=Path, metavar="REPORT.json",
                        help="print the tables of a saved --json report, or of an outcomes .jsonl file")
    args = parser.parse_args()
    if args.table:
        text = args.table.read_text()
        print_report(report_of_outcomes(args.table) if args.table.suffix == ".jsonl" else json.loads(text))
        return
    methods = choices(args.methods, METHODS, "method") + ([LOADED] if args.loaded else [])
    benches = [DEFAULTS[name] for name in choices(args.datasets, list(DEFAULTS), "data set")]
    benches = [replace(b, budget=args.budget) if args.budget else b for b in benches]
    benches += [parse_bench(text, args.budget) for text in args.data]
    benches = [replace(b, precision=args.precision) for b in benches]
    report = {
        "machine": machine(),
        "seeds": args.seeds,
        "one_seed": args.one_seed,
        "datasets": {},
    }
    with tempfile.TemporaryDirectory(prefix="search_quality-") as scratch:
        out = args.out or Path(scratch)
        out.mkdir(parents=True, exist_ok=True)
        outcomes = args.outcomes or out / OUTCOMES_FILE
        for bench in benches:
            if bench.source not in ("digits", "shapes", "moving-digits") and not Path(bench.source).exists():
                print(f"skipping {bench.name}: {bench.source} not found", file=sys.stderr)
                report["datasets"][bench.name] = {"skipped": f"{bench.source} not found"}
                continue
            report["datasets"][bench.name] = run_bench(bench, methods, args.seeds, set(args.one_seed), outcomes, out)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)


def report_of_outcomes(path: Path) -> dict:
    """A report of the runs an outcomes file holds (the default data sets' settings; no load averages)."""
    by_dataset: dict[str, dict[str, list[Outcome]]] = {}
    for (dataset, method, *_), outcome in done_outcomes(path).items():
        by_dataset.setdefault(dataset, {}).setdefault(method, []).append(outcome)
    datasets = {}
    for name, runs in by_dataset.items():
        bench = DEFAULTS.get(name, Bench(name, "?", math.nan))
        datasets[name] = {**asdict(bench), "methods": {m: summarise(r) for m, r in runs.items()}}
    seeds = sorted({o.seed for runs in by_dataset.values() for r in runs.values() for o in r})
    return {"machine": machine(), "seeds": seeds, "one_seed": [], "datasets": datasets}


def print_report(report: dict) -> None:
    machine = report["machine"]
    one_seed = f" ({', '.join(report['one_seed'])} on the first only)" if report["one_seed"] else ""
    print(f"{machine['cores']} cores, torch {machine['torch']}; seeds {' '.join(map(str, report['seeds']))}{one_seed}")
    for name, result in report["datasets"].items():
        if "skipped" in result:
            print(f"\n{name}: skipped ({result['skipped']})")
        else:
            print_table(name, result)


if __name__ == "__main__":
    main()
