"""Training recipe: test accuracy of swarmcnn's `fit` against a plain one-cycle PyTorch loop, at equal epochs.

Both sides train the same network (one spec, `build_seeded`, one seed) on the same training split for the same
epochs and threads, and are tested on the data's own test split, side by side in one process:

- plain one-cycle: what a PyTorch user writes from the documentation's recipe: pixels / 255, AdamW (weight
  decay 0.01), batch 128, `OneCycleLR` with a peak of 4e-3 (warm-up over its default 30%), cross-entropy;
  `--augment`/`--flip` apply swarmcnn's `augment` to its batches too.
- fit: `swarmcnn.train.fit` with its defaults (`TrainConfig(epochs=E, seed=S)`), and one more row per
  `--variant KEY=VALUE[,KEY=VALUE]` that overrides TrainConfig fields (e.g. `label_smoothing=0`, `ema=0.999`,
  `lr=0.005,weight_decay=0.05,batch_size=64,warmup=0,label_smoothing=0` for the recipe of swarmcnn 0.1);
  with `--flip`, each fit row is also tested with flip test-time augmentation (the same trained model).

Neither side uses the validation split: it is the same training data for both.

`--seconds S` compares at equal time instead: every fit row trains for S seconds (its schedule driven by the
time, so that it ends annealed whatever its pace), and the plain loop, which has no clock, is left out. This is
how a recipe is chosen for the search, whose every training has a time, not a number of epochs.

    python benchmarks/train_recipe.py [--data mnist-5k cifar10-dev] [--per-class 1000] [--nets vgg-small lenet5]
        [--epochs 8 | --seconds 150] [--seeds 0 1 2] [--augment] [--flip] [--variant lr=0.002 ...] [--threads N]
        [--json]

DATA is a name below (real data beside the project, never copied into it), a built-in name or a path.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from swarmcnn.data import DataConfig, Dataset, load_data
from swarmcnn.designs import DESIGNS
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization, TrainConfig, augment, build_seeded, evaluate, fit

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
NAMED = {"mnist-5k": SHARED / "mnist-5k", "cifar10-dev": SHARED / "cifar10-dev"}
PLAIN = "plain one-cycle"


def load(name: str, per_class: int | None) -> Dataset:
    return load_data(str(NAMED.get(name, name)), DataConfig(per_class=per_class))


def load_or_skip(name: str, per_class: int | None) -> Dataset:
    """A named shared set (or any source); where a shared one is absent (a fresh clone), exit saying so."""
    if name in NAMED and not NAMED[name].exists():
        sys.exit(f"skipping {name}: {NAMED[name]} not found")
    return load(name, per_class)


def train_plain(spec: Spec, data: Dataset, epochs: int, seed: int, shift: bool, flip: bool) -> float:
    """The documentation recipe; returns test accuracy."""
    model = build_seeded(spec, data.input_shape, len(data.class_names), seed)
    x, y = data.train.x, data.train.y
    batch_size = 128
    steps = epochs * -(-len(y) // batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=4e-3, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(y), generator=generator)
            for start in range(0, len(y), batch_size):
                index = order[start : start + batch_size]
                batch = x[index]
                if shift or flip:
                    batch = augment(batch, generator, shift=shift, flip=flip)
                loss = F.cross_entropy(model(batch.float() / 255), y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
    model.eval()
    with torch.inference_mode():
        logits = torch.cat([model(data.test.x[i : i + 512].float() / 255) for i in range(0, len(data.test), 512)])
    return (logits.argmax(1) == data.test.y).float().mean().item()


def train_fit(
    spec: Spec, data: Dataset, epochs: int, seed: int, shift: bool, flip: bool, overrides: dict,
    seconds: float | None = None,
) -> tuple[float, float]:
    """fit's test accuracy, and with flip test-time augmentation (the mean over each picture and its mirror);
    with seconds, a schedule driven by that time (epochs far more than it holds)."""
    model = build_seeded(spec, data.input_shape, len(data.class_names), seed)
    normalization = Normalization.of(data.train.x)
    if seconds is not None:
        epochs, overrides = 10_000, {"max_seconds": seconds, **overrides}
    config = TrainConfig(epochs=epochs, seed=seed, augment=shift, flip=flip, **overrides)
    no_val = replace(data, val=type(data.val)(data.val.x[:0], data.val.y[:0]))
    fit(model, no_val, normalization, config)
    plain, mirrored = (evaluate(model, data.test, normalization, flip=flip).accuracy for flip in (False, True))
    return plain, mirrored


def parse_variant(text: str) -> dict:
    """'lr=0.002,batch_size=64' -> TrainConfig overrides, typed as the fields are."""
    fields = TrainConfig.__dataclass_fields__
    overrides = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"--variant: TrainConfig has no field '{key}'")
        default = fields[key].default
        kind = type(default) if default is not None else float
        overrides[key] = None if value == "None" else (value == "True" if kind is bool else kind(value))
    return overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=list(NAMED))
    parser.add_argument("--per-class", type=int, default=1000, help="first N training samples per class (1000)")
    parser.add_argument("--nets", nargs="+", default=["vgg-small"], help=f"of {', '.join(DESIGNS)}, or specs")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seconds", type=float, help="train every fit row for this time instead (no plain row)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--augment", action="store_true", help="random shifts, both sides")
    parser.add_argument("--flip", action="store_true", help="random horizontal flips, both sides")
    parser.add_argument("--variant", action="append", default=[], help="KEY=VALUE[,KEY=VALUE]: one more fit row")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = {"fit": {}, **{f"fit {v}": parse_variant(v) for v in args.variant}}
    report = {
        "machine": {"torch": torch.__version__, "python": platform.python_version(), "threads": args.threads},
        "epochs": args.epochs, "seconds": args.seconds, "seeds": args.seeds, "augment": args.augment,
        "flip": args.flip, "results": [],
    }
    for name in args.data:
        if name in NAMED and not NAMED[name].exists():
            print(f"skipping {name}: {NAMED[name]} not found", file=sys.stderr)
            continue
        data = load(name, args.per_class)
        for net in args.nets:
            spec = Spec.parse(DESIGNS.get(net, net))
            runs: dict[str, list[tuple[float, float]]] = {} if args.seconds else {PLAIN: []}
            for seed in args.seeds:  # seeds outside, sides alternate: drifting load hits all rows alike
                if not args.seconds:
                    started = time.perf_counter()
                    accuracy = train_plain(spec, data, args.epochs, seed, args.augment, args.flip)
                    runs[PLAIN].append((accuracy, time.perf_counter() - started))
                for row, overrides in rows.items():
                    started = time.perf_counter()
                    accuracy, mirrored = train_fit(
                        spec, data, args.epochs, seed, args.augment, args.flip, overrides, args.seconds
                    )
                    seconds = time.perf_counter() - started
                    runs.setdefault(row, []).append((accuracy, seconds))
                    if args.flip:
                        runs.setdefault(f"{row} + flip TTA", []).append((mirrored, seconds))
                    print(f"  {name} {net} seed {seed} {row}: {accuracy:.4f} (flip TTA {mirrored:.4f})",
                          file=sys.stderr)
            for row, results in runs.items():
                accuracies = [a for a, _ in results]
                report["results"].append({
                    "data": name, "train": len(data.train), "test": len(data.test), "net": net, "loop": row,
                    "test_accuracy_mean": statistics.fmean(accuracies),
                    "test_accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
                    "seconds_mean": statistics.fmean(s for _, s in results),
                    "runs": accuracies,
                })
    if args.json:
        print(json.dumps(report, indent=2))
        return
    budget = f"{args.seconds:g} s each" if args.seconds else f"{args.epochs} epochs"
    print(f"{budget}, seeds {' '.join(map(str, args.seeds))}, {args.threads} threads, "
          f"torch {torch.__version__}" + (", shifts" if args.augment else "") + (", flips" if args.flip else ""))
    print(f"{'data':<12} {'train':>6} {'net':<14} {'loop':<48} {'test acc % (mean ± std)':>24} {'seconds':>8}")
    for r in report["results"]:
        accuracy = f"{100 * r['test_accuracy_mean']:.2f} ± {100 * r['test_accuracy_std']:.2f}"
        row = f"{r['data']:<12} {r['train']:>6} {r['net']:<14} {r['loop']:<48}"
        print(f"{row} {accuracy:>24} {r['seconds_mean']:>8.1f}")


if __name__ == "__main__":
    main()
