"""What a run directory holds, as one dict: the leaderboard, the Pareto front, the final model's test score."""

from __future__ import annotations

from pathlib import Path

from swarmcnn.search.journal import EvaluationRecord, Journal, ranked
from swarmcnn.search.ladder import best_of_top, by_rung
from swarmcnn.search.loop import SearchConfig


def describe_run(run_dir: str | Path, top: int = 10) -> dict:
    """The summary `swarmcnn runs show` prints (and gives as JSON)."""
    journal = Journal.open(Path(run_dir))
    try:
        settings, final = SearchConfig.from_journal(journal), _final(journal)
        records, promotions = journal.evaluations(), journal.evaluations("promotions")
    finally:
        journal.close()
    ok = ranked(records)
    rungs = by_rung([*records, *promotions])
    # the best is one record, the one the final training was chosen from (or would be now): every best_ field is its
    best = rungs.get(final["best_rung"], {}).get(final["best_spec"]) if final else best_of_top(rungs)
    failures: dict[str, int] = {}
    for r in records:
        if not r.ok:
            failures[r.status] = failures.get(r.status, 0) + 1
    return {
        "run_dir": str(run_dir),
        "data": settings.source,
        "strategy": settings.strategy,
        "seed": settings.seed,
        "status": "finished" if final else "unfinished (continue with --resume)",
        "evaluations": len(records),
        "failures": failures,
        "best_spec": final["best_spec"] if final else best and best.spec,
        "best_val_accuracy": final["best_val_accuracy"] if final else best and best.val_accuracy,
        "test_accuracy": final["test_accuracy"] if final else None,
        "best_params": best and best.params,
        "found_by": (final or {}).get("provenance"),
        "candidates": candidate_counts(records),
        "final": final,
        "search_seconds": sum(r.seconds for r in [*records, *promotions]),
        "leaderboard": [_row(r) for r in ok[:top]],
        "promotions": [_row(r) for r in sorted(promotions, key=lambda r: (r.rung, r.score), reverse=True)],
        "pareto_front": [_row(r) for r in pareto_front(ok)],
    }


def _final(journal: Journal) -> dict | None:
    """The final training's summary, None before it (checked where the journal reads it: journal_checks)."""
    return journal.get("final")


def candidate_counts(records: list[EvaluationRecord]) -> dict[str, int]:
    """How the candidates fared: trained to their planned images, compressed by their time limit, refused
    untrained (too large, too slow), or failed (diverged, out of memory, an error)."""
    return {
        "trained": sum(r.ok and not r.compressed for r in records),
        "compressed": sum(r.compressed for r in records),
        "refused": sum(not r.trained for r in records),
        "failed": sum(r.trained and not r.ok for r in records),
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
        "rung": r.rung,
        "images": r.images,
        "generation": r.generation,
        "worker": r.worker,
    }
