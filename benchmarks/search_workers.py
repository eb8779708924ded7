"""How to split the cores between candidates: N worker processes x T threads each, side by side.

The same candidates (drawn once from the default search space with a fixed seed) are evaluated with each
split: one process using all cores (swarmcnn's `--workers 1`), and N processes with cores // N threads each
(`--workers N`). Reported: evaluations per minute and the ratio to `--workers 1`, after one warm-up
candidate per configuration (process start-up and data loading are counted: users pay for them too).

    python benchmarks/search_workers.py [--data digits] [--candidates 12] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from swarmcnn.cores import available_cores
from swarmcnn.data import load_data
from swarmcnn.search.evaluate import EvaluationConfig
from swarmcnn.search.executors import InProcess, WorkerProcesses
from swarmcnn.search.space import SearchSpace
from swarmcnn.train import Normalization


def candidates(source: str, count: int, seed: int) -> list:
    data = load_data(source)
    rng = np.random.default_rng(seed)
    return [SearchSpace().sample(rng, data.input_shape) for _ in range(count)]


def time_in_process(source: str, specs: list, config: EvaluationConfig, threads: int) -> float:
    torch.set_num_threads(threads)
    started = time.perf_counter()
    data = load_data(source)
    executor = InProcess(data, Normalization.of(data.train.x))
    records = [record for _, record in executor.map([(spec, config) for spec in specs])]
    assert all(r.status in ("ok", "too-large") for r in records), [r.reason for r in records]
    return time.perf_counter() - started


def time_workers(source: str, specs: list, config: EvaluationConfig, workers: int) -> float:
    started = time.perf_counter()
    data = load_data(source)  # loaded here and sent to the workers, as the search does
    executor = WorkerProcesses(workers, data, Normalization.of(data.train.x))
    try:
        records = [record for _, record in executor.map([(spec, config) for spec in specs])]
    finally:
        executor.close()
    assert all(r.status in ("ok", "too-large") for r in records), [r.reason for r in records]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--candidates", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=2, help="training epochs per candidate (2, the default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    cores = available_cores()
    specs = candidates(args.data, args.candidates, args.seed)
    config = EvaluationConfig(epochs=args.epochs)
    time_in_process(args.data, specs[:1], config, cores)  # warm-up: first-call costs of torch
    splits = [(1, cores)] + [(n, max(1, cores // n)) for n in range(2, cores + 1)]
    rows = []
    for workers, threads in splits:
        if workers == 1:
            seconds = time_in_process(args.data, specs, config, threads)
        else:
            seconds = time_workers(args.data, specs, config, workers)
        rows.append({"workers": workers, "threads_each": threads, "seconds": seconds,
                     "evaluations_per_minute": 60 * len(specs) / seconds})
    for row in rows:
        row["speedup"] = rows[0]["seconds"] / row["seconds"]
    result = {"data": args.data, "cores": cores, "candidates": len(specs), "epochs": args.epochs,
              "torch": torch.__version__, "rows": rows}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.data}: {len(specs)} candidates x {args.epochs} epochs on {cores} cores (torch {torch.__version__})")
    print(f"{'workers':>7} {'threads each':>12} {'seconds':>8} {'eval/min':>9} {'vs --workers 1':>15}")
    for row in rows:
        print(f"{row['workers']:>7} {row['threads_each']:>12} {row['seconds']:>8.1f} "
              f"{row['evaluations_per_minute']:>9.1f} {row['speedup']:>14.2f}x")


if __name__ == "__main__":
    main()
