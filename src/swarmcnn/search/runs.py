"""What a run directory holds, as one dict: the leaderboard, the Pareto front, the final model's test score."""

from __future__ import annotations

from pathlib import Path

from swarmcnn.search.journal import EvaluationRecord, Journal, ranked


def describe_run(run_dir: str | Path, top: int = 10) -> dict:
    """The summary `swarmcnn runs show` prints (and gives as JSON)."""
    journal = Journal.open(Path(run_dir))
    try:
        settings, final = journal.get("settings"), journal.get("final")
        records, promotions = journal.evaluations(), journal.evaluations("promotions")
    finally:
        journal.close()
    ok = ranked(records)
    best = ok[0] if ok else None
    failures: dict[str, int] = {}
    for r in records:
        if not r.ok:
            failures[r.status] = failures.get(r.status, 0) + 1
    return {
        "run_dir": str(run_dir),
        "data": settings["source"],
        "strategy": settings["strategy"],
        "seed": settings["seed"],
        "status": "finished" if final else "unfinished (continue with --resume)",
        "evaluations": len(records),
        "failures": failures,
        "best_spec": final["best_spec"] if final else best and best.spec,
        "best_val_accuracy": final["best_val_accuracy"] if final else best and best.val_accuracy,
        "test_accuracy": final["test_accuracy"] if final else None,
        "best_params": best.params if best else None,
        "search_seconds": sum(r.seconds for r in records),
        "leaderboard": [_row(r) for r in ok[:top]],
        "promotions": [_row(r) for r in sorted(promotions, key=lambda r: r.score, reverse=True)],
        "pareto_front": [_row(r) for r in pareto_front(ok)],
    }


def pareto_front(records: list[EvaluationRecord]) -> list[EvaluationRecord]:
    """Candidates no other beats on both validation accuracy and size, smallest first."""
    front: list[EvaluationRecord] = []
    for r in sorted(records, key=lambda r: (r.params, -r.val_accuracy)):
        if not front or r.val_accuracy > front[-1].val_accuracy:
            front.append(r)
    return front


def _row(r: EvaluationRecord) -> dict:
    return {
        "spec": r.spec,
        "score": r.score,
        "val_accuracy": r.val_accuracy,
        "params": r.params,
        "flops": r.flops,
        "seconds": round(r.seconds, 3),
        "generation": r.generation,
        "worker": r.worker,
    }
