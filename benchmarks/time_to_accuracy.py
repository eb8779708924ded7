"""Time to accuracy: how long `fit` takes to reach what the old recipe reaches in the whole budget.

Side by side in one process, on one data set (cifar10-dev, 2,000 photos per class, by default), with the same
augmentation, threads and seed:

- the baseline: `--baseline-net` (vgg-3block) trained with `--baseline-recipe` (swarmcnn's recipe before the
  fast one: AdamW, one-cycle, label smoothing 0.1) for `--budget` seconds (600), a schedule driven by that time;
  its test accuracy is the target;
- each `--net` with each `--recipe` (KEY=VALUE,... of TrainConfig fields; `default` for TrainConfig's defaults)
  trained for each of `--times` seconds (a fresh training each, its schedule driven by its time, so each ends
  annealed), tested on the test split: the first time whose accuracy reaches the target is the time to accuracy,
  and the accuracy at the whole budget is the other column.

Trained on the training split (the validation split is not used), tested on the source's own test split.

    python benchmarks/time_to_accuracy.py [--data cifar10-dev] [--per-class N] [--budget 600]
        [--times 75 150 300 600] [--net airbench-small ...] [--recipe default ...] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from swarmcnn.designs import DESIGNS
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization, TrainConfig, build_seeded, evaluate, fit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_recipe import load_or_skip, parse_variant  # noqa: E402  (the benchmark next to this one)

OLD_RECIPE = "optimizer=adamw,schedule=one-cycle,label_smoothing=0.1,lookahead=False"


def trained_accuracy(spec: Spec, data, recipe: dict, seconds: float, seed: int, augment: bool, flip: bool) -> float:
    """Test accuracy after a training of `seconds` (its schedule driven by them), TTA by flips where trained so."""
    model = build_seeded(spec, data.input_shape, len(data.class_names), seed)
    normalization = Normalization.of(data.train.x)
    no_val = replace(data, val=type(data.val)(data.val.x[:0], data.val.y[:0]))
    config = TrainConfig(epochs=10_000, max_seconds=seconds, seed=seed, augment=augment, flip=flip, **recipe)
    fit(model, no_val, normalization, config)
    return evaluate(model, data.test, normalization, flip=flip).accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="cifar10-dev")
    parser.add_argument("--per-class", type=int)
    parser.add_argument("--budget", type=float, default=600.0)
    parser.add_argument("--times", type=float, nargs="+", default=[75, 150, 300, 600])
    parser.add_argument("--baseline-net", default="vgg-3block")
    parser.add_argument("--baseline-recipe", default=OLD_RECIPE)
    parser.add_argument("--net", nargs="+", default=["airbench-small"])
    parser.add_argument("--recipe", nargs="+", default=["default"])
    parser.add_argument("--no-augment", dest="augment", action="store_false")
    parser.add_argument("--no-flip", dest="flip", action="store_false")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_or_skip(args.data, args.per_class)

    def run(net: str, recipe_text: str, seconds: float) -> float:
        recipe = {} if recipe_text == "default" else parse_variant(recipe_text)
        started = time.perf_counter()
        accuracy = trained_accuracy(Spec.parse(DESIGNS.get(net, net)), data, recipe, seconds, args.seed,
                                    args.augment, args.flip)
        print(f"  {net} [{recipe_text}] {seconds:g}s: {accuracy:.4f} ({time.perf_counter() - started:.0f}s wall)",
              file=sys.stderr)
        return accuracy

    target = run(args.baseline_net, args.baseline_recipe, args.budget)
    rows = []
    for net in args.net:
        for recipe in args.recipe:
            accuracies = {seconds: run(net, recipe, seconds) for seconds in sorted(args.times)}
            reached = next((s for s, a in accuracies.items() if a >= target), None)
            rows.append({"net": net, "recipe": recipe, "accuracies": accuracies, "seconds_to_target": reached,
                         "accuracy_at_budget": accuracies.get(args.budget)})
    report = {
        "data": args.data, "train": len(data.train), "test": len(data.test), "budget": args.budget,
        "baseline": {"net": args.baseline_net, "recipe": args.baseline_recipe, "test_accuracy": target},
        "machine": {"torch": torch.__version__, "python": platform.python_version(), "threads": args.threads},
        "rows": rows,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{args.data} ({len(data.train)} train, {len(data.test)} test), seed {args.seed}: target "
          f"{100 * target:.2f}% = {args.baseline_net} [{args.baseline_recipe}] in {args.budget:g} s")
    times = " ".join(f"{s:>7g}s" for s in sorted(args.times))
    print(f"{'net':<16} {'recipe':<48} {times} {'to target':>10}")
    for row in rows:
        cells = " ".join(f"{100 * a:>8.2f}" for a in row["accuracies"].values())
        reached = "-" if row["seconds_to_target"] is None else f"<= {row['seconds_to_target']:g}s"
        print(f"{row['net']:<16} {row['recipe']:<48} {cells} {reached:>10}")


if __name__ == "__main__":
    main()
