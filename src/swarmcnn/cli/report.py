"""`swarmcnn report`: one self-contained HTML page of a search."""

from __future__ import annotations

import argparse

from swarmcnn.cli.options import add_threads_option, output_file


def add_parser(commands) -> None:
    report = commands.add_parser(
        "report",
        help="write one self-contained HTML page of a search (finished or still running)",
        description="Write RUN_DIR's search as one HTML file that opens offline: the search over time, every "
        "candidate against its parameters and FLOPs with the Pareto front, how the swarm moved, the best "
        "architecture layer by layer, and the final model's test (confusion, per class, misclassified examples, "
        "features), with the run's settings and versions.",
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by search")
    report.add_argument("--out", required=True, metavar="FILE", help="the HTML file to write, e.g. report.html "
                        "(outside RUN_DIR)")
    report.add_argument("--force", action="store_true", help="replace the file already at --out")
    add_threads_option(report)


def run(args: argparse.Namespace) -> int:
    from swarmcnn.report import write_report

    out = output_file(args.out, args.force, reads={"the run folder": args.run_dir}, example="report.html")
    print(write_report(args.run_dir, out))
    return 0

