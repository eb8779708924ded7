"""Candidates per minute through each executor on this machine, and what a Ray task costs on top of a candidate.

The same candidates (drawn once from the default search space with a fixed seed) are evaluated by the
in-process executor (all cores in one process), by two local worker processes, and by Ray tasks on a local
Ray instance of this machine's cores (one CPU each, so as many side by side as there are cores). Start-up is
counted for each (the pool's processes, Ray's start and the data put in its object store): users pay it too.
Ray's own cost per task is measured apart: trivial tasks that take the data set's object as argument, one at
a time, give the round trip (scheduling, argument resolution, result transfer) that each candidate adds.

Whether asynchronous swarm updates would pay is modelled from the candidate times measured here (this
machine has too few cores to measure 8+ workers): generations of the swarm's size, each waiting for its
slowest candidate, against a particle moved as soon as its own candidate is scored, with W workers.

    python benchmarks/scaling.py [--data digits] [--candidates 12] [--epochs 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from search_workers import candidates

from swarmcnn.cores import available_cores
from swarmcnn.data import load_data
from swarmcnn.search.evaluate import EvaluationConfig
from swarmcnn.search.executors import InProcess, WorkerProcesses
from swarmcnn.search.strategies.pso import ParticleSwarm
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


def generations_against_asynchronous(
    times: list[float], overhead: float, particles: int, workers: int, generations: int = 400, seed: int = 0
) -> dict:
    """Candidates per minute of a swarm of `particles` on `workers`, candidate times drawn from those measured.

    Generations: each generation's candidates go to the first free worker and the next generation starts when
    the slowest is scored. Asynchronous: each particle proposes again when its own candidate is scored, so at
    most `particles` candidates are in flight: its rate is min(workers, particles) / mean time.
    """
    rng = np.random.default_rng(seed)
    drawn = rng.choice(np.asarray(times), size=(generations, particles)) + overhead
    wall = 0.0
    for generation in drawn:
        free = np.zeros(min(workers, particles))
        for t in generation:
            free[free.argmin()] += t
        wall += free.max()
    synchronous = 60 * drawn.size / wall
    asynchronous = 60 * min(workers, particles) / drawn.mean()
    busy = drawn.sum() / (wall * workers)
    return {"workers": workers, "particles": particles, "generations_per_minute": synchronous,
            "asynchronous_per_minute": asynchronous, "gain": asynchronous / synchronous, "workers_busy": busy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--candidates", type=int, default=12)
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
        per_minute = 60 * len(jobs) / seconds
        rows.append({"executor": name, "seconds": seconds, "candidates_per_minute": per_minute, "records": records})
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    try:
        overhead = ray_round_trip(data, normalization)
    finally:
        ray.shutdown()
    # a candidate's time as a Ray task trains it (one CPU, as a cluster's worker would), not the in-process one:
    # on a busy machine PyTorch's threads in one process can wait on each other and slow it manyfold
    times = [record.seconds for record in rows[-1]["records"]]
    for row in rows:
        row.pop("records")
    candidate = statistics.median(times)
    swarm = ParticleSwarm.swarm_size
    model = [
        generations_against_asynchronous(times, overhead, particles, workers)
        for particles in (swarm, 128)
        for workers in (2, 8, 32, 100)
    ]
    result = {
        "data": args.data, "cores": cores, "candidates": len(jobs), "epochs": args.epochs,
        "torch": torch.__version__, "ray": ray.__version__, "rows": rows,
        "median_candidate_seconds": candidate, "ray_seconds_per_task": overhead,
        "ray_overhead_share": overhead / candidate, "candidate_seconds": times, "asynchronous_model": model,
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
          f"typical candidate here (median {candidate:.2f} s in a Ray task)")
    spread = f"{min(times):.2f}-{max(times):.2f} s"
    print(f"modelled from these candidate times ({spread}): candidates per minute, generations against asynchronous")
    print(f"{'particles':>9} {'workers':>8} {'generations':>12} {'asynchronous':>13} {'gain':>6} {'busy':>6}")
    for m in model:
        print(f"{m['particles']:>9} {m['workers']:>8} {m['generations_per_minute']:>12.1f} "
              f"{m['asynchronous_per_minute']:>13.1f} {m['gain']:>6.2f} {100 * m['workers_busy']:>5.0f}%")


if __name__ == "__main__":
    main()
