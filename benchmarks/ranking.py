"""Ranking: does a search's fitness put networks in the order their final trainings do?

For N architectures drawn from the search space (with a fixed seed; those too slow for a few epochs in the final
time left out) and the designs that fit, on one data set:

- the truth: each network trained alone, from scratch, for the time a search's final training would give it
  (`--final-seconds`, a schedule driven by that time, on train+val, augmentation as asked), tested once on the
  test split;
- each fitness, computed as a search would compute it, on the validation split:
  - `short (images)`: a training of `--short-epochs` epochs of a share of the training split (the ladder's
    rung 0 today: equal images for every network);
  - `short (time)`: a training of `--short-seconds` seconds each (a schedule driven by that time: equal time);
  - `supernet`: one weight-sharing supernet trained for `--supernet-seconds` on single children drawn uniformly
    among the N (swarmcnn.search.oneshot), then each child's accuracy after batch norm recalibration;
  - `naswot`, `synflow`: zero-cost scores at initialisation (swarmcnn.search.zerocost);
  - `params`, `flops`: the size alone, the baseline zero-cost scores are known to follow.

Reported per fitness: Spearman's and Kendall's correlation with the truth, the regret of taking the fitness's
best (the best true accuracy less the true accuracy of the network the fitness puts first) and of its best of
three, and the seconds it cost. This is the number that tells whether a swarm driven by that fitness can find
anything.

    python benchmarks/ranking.py --data mnist-5k [--per-class N] [--archs 30] [--final-seconds 60]
        [--short-seconds 4] [--supernet-seconds 120] [--augment] [--flip] [--seed 0] [--json]

DATA is a name below (real data beside the project, never copied into it), a built-in name or a path.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from swarmcnn.data import Dataset
from swarmcnn.designs import fitting
from swarmcnn.search.final import train_plus_val
from swarmcnn.search.oneshot import score_child, train_supernet
from swarmcnn.search.pace import seconds_per_image
from swarmcnn.search.space import SearchSpace
from swarmcnn.search.supernet import Bounds, Supernet
from swarmcnn.search.zerocost import naswot, synflow
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization, TrainConfig, build_seeded, evaluate, fit
from swarmcnn.whitening import fit_whitening

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_recipe import load_or_skip  # noqa: E402  (the benchmark next to this one)


def architectures(space: SearchSpace, data: Dataset, count: int, seed: int, min_epochs: float,
                  final_seconds: float, config: TrainConfig) -> list[tuple[str, Spec, float]]:
    """(name, spec, seconds per image) of the designs that fit and `count` draws of the space, each fast enough for
    min_epochs of train+val in the final's time. A draw predicted too slow from its FLOPs at the fastest rate per
    FLOP measured so far is not timed (as the search's too-slow rule)."""
    rng = np.random.default_rng(seed)
    normalization = Normalization.of(data.train.x)
    classes = len(data.class_names)
    limit = final_seconds / (min_epochs * (len(data.train) + len(data.val)))
    chosen: list[tuple[str, Spec, float]] = []
    rates: list[float] = []  # seconds per image and FLOP of what was timed

    def consider(name: str, spec: Spec) -> None:
        flops = spec.flops(data.input_shape, classes)
        if any(str(spec) == str(s) for _, s, _ in chosen) or spec.num_params(data.input_shape, classes) > 2_000_000:
            return
        if rates and flops * min(rates) > 1.5 * limit:
            return
        pace = seconds_per_image(spec, data, normalization, config)
        rates.append(pace / max(flops, 1))
        if pace <= limit:
            chosen.append((name, spec, pace))

    for name, spec in fitting(data.input_shape).items():
        consider(name, spec)
    designs = len(chosen)
    for draw in range(200 * count):
        if len(chosen) >= designs + count:
            break
        consider(f"draw {draw}", space.sample(rng, data.input_shape))
    return chosen


def truth(spec: Spec, data: Dataset, config: TrainConfig, seconds: float) -> float:
    """Test accuracy after a final training of `seconds` on train+val."""
    whole = train_plus_val(data)
    model = build_seeded(spec, data.input_shape, len(data.class_names), config.seed)
    normalization = Normalization.of(whole.train.x)
    fit(model, whole, normalization, replace(config, epochs=10_000, max_seconds=seconds))
    return evaluate(model, data.test, normalization).accuracy


def short_training(spec: Spec, data: Dataset, config: TrainConfig) -> float:
    model = build_seeded(spec, data.input_shape, len(data.class_names), config.seed)
    result = fit(model, data, Normalization.of(data.train.x), config)
    return result.best_val_accuracy


def zero_cost(spec: Spec, data: Dataset) -> tuple[float, float]:
    model = build_seeded(spec, data.input_shape, len(data.class_names), 0)
    normalization = Normalization.of(data.train.x)
    fit_whitening(model, normalization(data.train.x[:5000]))
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))
    batch = normalization(data.train.x[order[:64]])
    return naswot(model, batch), synflow(model, data.input_shape)


def regret(true: list[float], fitness: list[float], top: int = 1) -> float:
    """The best true accuracy less the best true accuracy among the fitness's first `top`."""
    order = np.argsort(-np.asarray(fitness), kind="stable")[:top]
    return max(true) - max(true[i] for i in order)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist-5k")
    parser.add_argument("--per-class", type=int)
    parser.add_argument("--archs", type=int, default=30)
    parser.add_argument("--final-seconds", type=float, default=60.0)
    parser.add_argument("--min-epochs", type=float, default=8.0, help="leave out networks slower than this")
    parser.add_argument("--short-epochs", type=int, default=2)
    parser.add_argument("--short-fraction", type=float, default=0.3)
    parser.add_argument("--short-seconds", type=float, default=4.0)
    parser.add_argument("--supernet-seconds", type=float, default=120.0)
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--flip", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_or_skip(args.data, args.per_class)
    config = TrainConfig(seed=args.seed, augment=args.augment, flip=args.flip, precision="fp32")
    space = SearchSpace()
    archs = architectures(space, data, args.archs, args.seed, args.min_epochs, args.final_seconds, config)
    print(f"{args.data}: {len(data.train)} train / {len(data.val)} val / {len(data.test)} test, {len(archs)} networks",
          file=sys.stderr)
    rows: dict[str, list[float]] = {}
    costs: dict[str, float] = {}

    def timed(name: str, values: list[float], started: float) -> None:
        rows[name], costs[name] = values, time.perf_counter() - started

    started = time.perf_counter()
    short = replace(config, epochs=args.short_epochs, train_fraction=args.short_fraction)
    timed("short (images)", [short_training(spec, data, short) for _, spec, _ in archs], started)
    started = time.perf_counter()
    quick = replace(config, epochs=10_000, max_seconds=args.short_seconds)
    timed("short (time)", [short_training(spec, data, quick) for _, spec, _ in archs], started)
    started = time.perf_counter()
    scores = [zero_cost(spec, data) for _, spec, _ in archs]
    timed("naswot", [s[0] for s in scores], started)
    rows["synflow"], costs["synflow"] = [s[1] for s in scores], costs["naswot"]
    rows["params"] = [float(spec.num_params(data.input_shape, len(data.class_names))) for _, spec, _ in archs]
    rows["flops"] = [float(spec.flops(data.input_shape, len(data.class_names))) for _, spec, _ in archs]
    costs["params"] = costs["flops"] = 0.0
    started = time.perf_counter()
    supernet = Supernet(data.input_shape, len(data.class_names), Bounds(space.features[1], max(space.feature_sizes),
                                                                         space.neurons[1]), seed=args.seed)
    specs = [spec for _, spec, _ in archs]
    draw = lambda generator: specs[int(torch.randint(len(specs), (1,), generator=generator))]  # noqa: E731
    normalization = Normalization.of(data.train.x)
    trained = train_supernet(supernet, data, normalization, draw,
                             replace(config, epochs=10_000, max_seconds=args.supernet_seconds))
    timed("supernet", [score_child(supernet, spec, data, normalization) for spec in specs], started)
    print(f"supernet: {trained.steps} steps, {trained.images} images in {trained.seconds:.0f}s", file=sys.stderr)
    true = []
    for name, spec, pace in archs:
        true.append(truth(spec, data, config, args.final_seconds))
        print(f"  {name:<16} {true[-1]:.4f}  {pace * 1e3:.3f} ms/image  {spec}", file=sys.stderr)
    report = {
        "data": args.data, "train": len(data.train), "networks": len(archs), "final_seconds": args.final_seconds,
        "machine": {"torch": torch.__version__, "python": platform.python_version(), "threads": args.threads},
        "networks_detail": [
            {"name": name, "spec": str(spec), "seconds_per_image": pace, "test_accuracy": t,
             **{fitness: values[i] for fitness, values in rows.items()}}
            for i, ((name, spec, pace), t) in enumerate(zip(archs, true))
        ],
        "fitness": [
            {
                "fitness": fitness,
                "spearman": stats.spearmanr(values, true).statistic,
                "kendall": stats.kendalltau(values, true).statistic,
                "regret_top1": regret(true, values),
                "regret_top3": regret(true, values, 3),
                "seconds": costs[fitness],
            }
            for fitness, values in rows.items()
        ],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{args.data} ({len(data.train)} train), {len(archs)} networks, final training {args.final_seconds:g} s "
          f"each; best true test accuracy {max(true):.4f}")
    print(f"{'fitness':<16} {'spearman':>9} {'kendall':>8} {'regret@1':>9} {'regret@3':>9} {'seconds':>8}")
    for row in report["fitness"]:
        print(f"{row['fitness']:<16} {row['spearman']:>9.3f} {row['kendall']:>8.3f} {100 * row['regret_top1']:>9.2f} "
              f"{100 * row['regret_top3']:>9.2f} {row['seconds']:>8.1f}")


if __name__ == "__main__":
    main()
