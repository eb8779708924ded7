"""One long training or several short ones averaged, at equal time: what `swarmcnn.ensemble.members_for` rests on.

For each set named (a UCR / UEA set of `../shared/datasets/ucr-dev`, or one of search_quality.py's picture sets:
digits, mnist-5k, cifar-500, cifar-2000, with their augmentation and precision) and each seed, one after the other
in one process: a design trained on train+val with the search's final recipe (`swarmcnn.search.final.train_final`)
for `--seconds`, then `--members` trainings of the same design for a share of that time each, their class
probabilities averaged (`swarmcnn.ensemble.Ensemble`); both tested once on the set's own test split. Reported per
set: the epochs the time held (one training's, and each member's), test accuracy (mean ± std over seeds) of the one
training, of the ensemble, and of its members alone.

    python benchmarks/members.py [--sets ArrowHead:lenet1d OSULeaf:fcn ...] [--seconds 60] [--members 3]
        [--seeds 0 1 2] [--json]
    python benchmarks/members.py --table ROWS.jsonl   # the table of rows saved before (one JSON row per line)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import replace
from pathlib import Path

from search_quality import DEFAULTS, SHARED, Bench, machine

from swarmcnn.cores import ThreadGovernor
from swarmcnn.data import load_data
from swarmcnn.designs import DESIGNS, design
from swarmcnn.inference import Normalization
from swarmcnn.search.budget import final_epochs, final_images, final_schedule_epochs
from swarmcnn.search.evaluate import EvaluationConfig
from swarmcnn.search.final import final_config, train_final
from swarmcnn.search.pace import seconds_per_image
from swarmcnn.train import batches_per_epoch

# each set with the design that did best alone on it (benchmarks/README.md, Signals, 2026-12-02)
DEFAULT_SETS = ["ArrowHead:lenet1d", "SelfRegulationSCP1:lenet1d", "OSULeaf:fcn", "GunPoint:fcn"]


def bench_of(name: str) -> Bench | None:
    """A picture set of search_quality.py by its name, else a ucr-dev set; None where it is not on this disk."""
    if name in DEFAULTS:
        bench = DEFAULTS[name]
        return bench if bench.source == "digits" or Path(bench.source).is_dir() else None
    return Bench(name, str(SHARED / "ucr-dev" / name), 120) if (SHARED / "ucr-dev" / name).is_dir() else None


def run(bench: Bench, arch: str, seed: int, seconds: float, members: int) -> dict:
    """One training of `seconds` and `members` of seconds / members each, of one design on one set."""
    data = load_data(bench.source, bench.data)
    spec = design(arch)
    base = final_config(EvaluationConfig(precision=bench.precision), 1, seed, bench.augment, bench.flip)
    pace = seconds_per_image(spec, data, Normalization.of(data.train.x), base)

    def trained(time: float, count: int):
        epochs = final_epochs(time, data, pace)
        config = replace(base, epochs=final_schedule_epochs(epochs), max_seconds=time)
        return train_final(spec, data, config, members=count), epochs

    single, single_epochs = trained(seconds, 1)
    ensemble, member_epochs = trained(seconds / members, members)
    return {
        "set": bench.name, "design": arch, "seed": seed, "seconds": seconds, "members": members,
        "single": single.test.accuracy, "single_epochs": single_epochs,
        "ensemble": ensemble.test.accuracy, "member_epochs": member_epochs,
        "member_steps": member_epochs * batches_per_epoch(final_images(data)),
        "member_accuracies": ensemble.trained.metrics.get("member_test_accuracies", [ensemble.test.accuracy]),
        "single_curve": curve(single.result), "member_curve": curve(ensemble.results[0]),
    }


def curve(result, points: int = 25) -> list[list[float]]:
    """[epoch, training loss, training accuracy] at up to `points` epochs of a training, its last included: how
    far its schedule had flattened, for the rule that decides when a training is worth splitting."""
    epochs = result.epochs
    if not epochs:
        return []
    picked = sorted({round(i * (len(epochs) - 1) / max(points - 1, 1)) for i in range(points)})
    return [[epochs[i].epoch, round(epochs[i].train_loss, 4), round(epochs[i].train_accuracy, 4)] for i in picked]


def _mean(values: list[float]) -> str:
    spread = f" ± {100 * statistics.stdev(values):.2f}" if len(values) > 1 else ""
    return f"{100 * statistics.fmean(values):.2f}{spread}"


def print_table(rows: list[dict]) -> None:
    print("| set | design | epochs: one / each member | one training | members averaged | members alone |")
    print("|---|---|---|---|---|---|")
    for key in dict.fromkeys((row["set"], row["design"]) for row in rows):
        runs = [row for row in rows if (row["set"], row["design"]) == key]
        alone = [accuracy for row in runs for accuracy in row["member_accuracies"]]
        epochs = f"{statistics.fmean(r['single_epochs'] for r in runs):.0f} / " \
                 f"{statistics.fmean(r['member_epochs'] for r in runs):.0f}"
        if all("member_steps" in r for r in runs):
            epochs += f" ({statistics.fmean(r['member_steps'] for r in runs):.0f} steps)"
        print(f"| {key[0]} | {key[1]} | {epochs} | {_mean([r['single'] for r in runs])} | "
              f"{_mean([r['ensemble'] for r in runs])} | {_mean(alone)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=DEFAULT_SETS, help="SET:DESIGN pairs")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--table", help="print the table of the rows in this JSON-lines file, and run nothing")
    args = parser.parse_args()
    if args.table:
        print_table([json.loads(line) for line in open(args.table) if line.strip()])
        return
    pairs = [pair.partition(":")[::2] for pair in args.sets]
    bad = [pair for pair in pairs if pair[1] not in DESIGNS]
    if bad:
        sys.exit(f"members.py: {bad[0][0]}:{bad[0][1]}: the design must be one of {', '.join(DESIGNS)}")
    ThreadGovernor()  # the threads a search would get
    rows = []
    for name, arch in pairs:
        bench = bench_of(name)
        if bench is None:
            print(f"{name}: not on this disk (built in, {SHARED}, or {SHARED / 'ucr-dev'}), skipped", file=sys.stderr)
            continue
        for seed in args.seeds:
            rows.append(run(bench, arch, seed, args.seconds, args.members))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print_table(rows)
    if args.json:
        print(json.dumps({"machine": machine(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
