"""Candidates per minute through each executor on this machine, and what a Ray task costs on top of a candidate.

The same candidates (drawn once from the default search space with a fixed seed) are evaluated by the
in-process executor (all cores in one process), by two local worker processes, and by Ray tasks on a local
Ray instance of this machine's cores (one CPU each, so as many side by side as there are cores). Start-up is
counted for each (the pool's processes, Ray's start and the data put in its object store): users pay it too.
Ray's own cost per task is measured apart: trivial tasks that take the data set's object as argument, one at
a time, give the round trip (scheduling, argument resolution, result transfer) that each candidate adds.

    python benchmarks/scaling.py [--data digits] [--candidates 8] [--epochs 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from search_workers import candidates

from swarmcnn.cores import available_cores
from swarmcnn.data import load_data
from swarmcnn.search.evaluate import EvaluationConfig
from swarmcnn.search.executors import InProcess, WorkerProcesses
from swarmcnn.train import Normalization


def timed(make, jobs) -> tuple[float, list]:
    started = time.perf_counter()
    executor = make()
    try:
        records = [record for _, record in executor.map(jobs)]
    finally:
        executor.close()
    return time.perf_counter() - started, records


def ray_round_trip(data, normalization, tasks: int = 30) -> float:
    """Seconds of one trivial Ray task taking the data set's object: Ray's cost per candidate."""
    import ray

    shared = ray.put((data, normalization))

    @ray.remote(num_cpus=1)
    def nothing(_shared):
        return 0

    ray.get(nothing.remote(shared))  # warm: a worker started, the object in its store
    times = []
    for _ in range(tasks):
        started = time.perf_counter()
        ray.get(nothing.remote(shared))
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import ray

    from swarmcnn.search.ray_executor import RayExecutor

    cores = available_cores()
    data = load_data(args.data)
    normalization = Normalization.of(data.train.x)
    config = EvaluationConfig(epochs=args.epochs)
    jobs = [(spec, config) for spec in candidates(args.data, args.candidates, args.seed)]
    torch.set_num_threads(cores)
    timed(lambda: InProcess(data, normalization), jobs[:1])  # warm-up: first-call costs of torch
    rows = []
    for name, make in (
        ("in-process", lambda: InProcess(data, normalization)),
        ("2 local processes", lambda: WorkerProcesses(2, data, normalization)),
        (f"ray, {cores} tasks of 1 CPU", lambda: RayExecutor(data, normalization, cpus=1)),
    ):
        seconds, records = timed(make, jobs)
        assert all(r.status in ("ok", "too-large", "too-slow") for r in records), [r.reason for r in records]
        rows.append({"executor": name, "seconds": seconds, "candidates_per_minute": 60 * len(jobs) / seconds})
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    try:
        overhead = ray_round_trip(data, normalization)
    finally:
        ray.shutdown()
    candidate = rows[0]["seconds"] / len(jobs)
    result = {
        "data": args.data, "cores": cores, "candidates": len(jobs), "epochs": args.epochs,
        "torch": torch.__version__, "ray": ray.__version__, "rows": rows,
        "seconds_per_candidate_in_process": candidate, "ray_seconds_per_task": overhead,
        "ray_overhead_share": overhead / candidate,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.data}: {len(jobs)} candidates x {args.epochs} epochs on {cores} cores "
          f"(torch {torch.__version__}, ray {ray.__version__}); start-up counted")
    print(f"{'executor':<24} {'seconds':>8} {'cand/min':>9}")
    for row in rows:
        print(f"{row['executor']:<24} {row['seconds']:>8.1f} {row['candidates_per_minute']:>9.1f}")
    print(f"Ray's round trip per task: {1000 * overhead:.1f} ms = {100 * result['ray_overhead_share']:.2f}% of a "
          f"typical candidate here ({candidate:.2f} s in process)")


if __name__ == "__main__":
    main()
