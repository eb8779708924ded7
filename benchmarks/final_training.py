"""How long a final training needs: test accuracy of a design against the epochs of its final training.

The search's final training (`swarmcnn.search.final`: train+val, the one-cycle recipe, augmentation as the
search gives it) of a hand-designed network for a series of epoch counts on each data set, each trained from
the same seed; the test accuracy shows where more epochs stop paying, which is what the budget's rules
(`FINAL_SHARE`, `FINAL_EPOCHS` in `swarmcnn.search.budget`) rest on.

    python benchmarks/final_training.py [--datasets mnist-5k cifar-500 cifar-2000] [--net vgg-small]
        [--epochs 10 20 40 80] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

import torch
from search_quality import DEFAULTS

from swarmcnn.cores import available_cores
from swarmcnn.data import load_data
from swarmcnn.designs import DESIGNS, design
from swarmcnn.search.evaluate import EvaluationConfig
from swarmcnn.search.final import final_config, train_final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist-5k", "cifar-500", "cifar-2000"])
    parser.add_argument("--net", default="vgg-small", choices=list(DESIGNS))
    parser.add_argument("--epochs", type=int, nargs="+", default=[10, 20, 40, 80])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(available_cores())
    rows = []
    for name in args.datasets:
        bench = DEFAULTS[name]
        data = load_data(bench.source, bench.data)
        config = final_config(EvaluationConfig(), 1, args.seed, bench.augment, bench.flip)
        for epochs in args.epochs:
            started = time.perf_counter()
            final = train_final(design(args.net), data, replace(config, epochs=epochs))
            seconds = time.perf_counter() - started
            images = len(final.data.train)
            rows.append({"data": name, "images": images, "epochs": epochs, "images_seen": epochs * images,
                         "test_accuracy": final.test.accuracy, "seconds": seconds})
            print(f"  {name} {epochs} epochs: {final.test.accuracy:.4f} in {seconds:.0f}s", file=sys.stderr)
    if args.json:
        print(json.dumps({"net": args.net, "seed": args.seed, "torch": torch.__version__, "rows": rows}, indent=2))
        return
    print(f"{args.net}, seed {args.seed}, {available_cores()} cores, torch {torch.__version__}")
    print(f"{'data':<11} {'train+val':>9} {'epochs':>6} {'images seen':>11} {'test acc %':>10} {'seconds':>7}")
    for r in rows:
        print(f"{r['data']:<11} {r['images']:>9} {r['epochs']:>6} {r['images_seen']:>11,} "
              f"{100 * r['test_accuracy']:>10.2f} {r['seconds']:>7.0f}")


if __name__ == "__main__":
    main()
