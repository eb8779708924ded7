"""`swarmcnn runs show`: what a search found."""

from __future__ import annotations

import argparse

from swarmcnn import strictjson
from swarmcnn.cli.options import whole


def add_parser(commands) -> None:
    runs = commands.add_parser(
        "runs", help="inspect search run directories", description="Inspect search run directories."
    )
    actions = runs.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser(
        "show",
        help="leaderboard, Pareto front and the final model's test accuracy of a run",
        description="Print what a search found: the leaderboard by validation score, the Pareto front of accuracy "
        "against size, and the test accuracy of the final model.",
        epilog="example:\n  swarmcnn runs show runs/digits --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("run", metavar="RUN_DIR", help="a run directory written by search")
    show.add_argument(
        "--json",
        action="store_true",
        help="one JSON object with best_spec, best_val_accuracy, test_accuracy, evaluations, ...",
    )
    show.add_argument("--top", type=whole(1), default=10, metavar="K", help="rows of the leaderboard (10)")


def run(args: argparse.Namespace) -> int:
    from swarmcnn.display import run_tables, stdout
    from swarmcnn.search.provenance import describe
    from swarmcnn.search.runs import describe_run

    summary = describe_run(args.run, top=args.top)
    if args.json:
        print(strictjson.dumps(summary, indent=2))
        return 0
    for table in run_tables(summary):
        stdout.print(table)
    val, test = summary["best_val_accuracy"], summary["test_accuracy"]
    counts = ", ".join(f"{count} {kind}" for kind, count in summary["candidates"].items())
    final = summary["final"]
    epochs = (
        f"; final training {final['final_epochs_trained']:g} epochs ({final['final_epochs']} planned)" if final else ""
    )
    if final and final.get("final_members", 1) > 1:
        epochs += f" each, {final['final_members']} trainings averaged"
    found = f", {describe(summary['found_by'])}" if summary.get("found_by") else ""
    stdout.print(
        f"{summary['strategy']} on {summary['data']}: {summary['evaluations']} evaluations ({counts}), "
        f"{summary['status']}; best {summary['best_spec']}{found} (val {'-' if val is None else f'{val:.4f}'}), "
        f"test accuracy {'-' if test is None else f'{test:.4f}'}{epochs}"
    )
    return 0

