"""`swarmcnn check`: is a CNN the right tool for this data?"""

from __future__ import annotations

import argparse

from swarmcnn import strictjson
from swarmcnn.cli.options import FREE_CORES, add_data_options, add_runtime_options, at_least_one, given


def add_parser(commands) -> None:
    check = commands.add_parser(
        "check",
        help="is a CNN the right tool for this data? (does scrambling its pixel positions cost a CNN?)",
        description="Train the same small CNN briefly on DATA as it is and with its pixel positions scrambled "
        "by one fixed permutation (for signals, their time steps; and, for clips, with each clip's frames "
        "shuffled), and a fully connected "
        "net of about the same size, over --seeds seeds; print the test accuracies and whether a CNN is "
        "advised: it is where scrambling costs the CNN clearly more than noise.",
        epilog="examples:\n  swarmcnn check digits\n  swarmcnn check ../my-pictures --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("data", help="the data source (as for train)")
    check.add_argument("--seeds", type=at_least_one, default=3, help="trainings of each network (3)")
    check.add_argument("--json", action="store_true", help="print one JSON object (cnn_advised, accuracies, ...)")
    add_data_options(check)
    add_runtime_options(check, threads=FREE_CORES)


def run(args: argparse.Namespace) -> int:
    from swarmcnn.data import DataConfig, load_data
    from swarmcnn.display import check_table, stdout
    from swarmcnn.hardware import resolve
    from swarmcnn.locality import check

    hardware = resolve(args.device, args.precision)
    if args.threads is None:
        from swarmcnn.cores import ThreadGovernor

        ThreadGovernor()  # as for train: on digits with a core taken, 2 threads took 57 s and 1 thread 6 s
    data = load_data(args.data, DataConfig(**given(args, DataConfig)))
    result = check(data, args.seeds, str(hardware.device), hardware.precision)
    if args.json:
        print(strictjson.dumps({"data": args.data, **result.to_dict()}, indent=2))
    else:
        stdout.print(check_table(result, args.data))
        stdout.print(result.verdict)
    return 0

