"""`swarmcnn evaluate`: accuracy, per class and confusion of a model on a split."""

from __future__ import annotations

import argparse

from swarmcnn import strictjson
from swarmcnn.cli.options import add_model_size_option, add_runtime_options, load_data_for
from swarmcnn.errors import SwarmCNNError


def add_parser(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="accuracy, per-class accuracy and confusion matrix of a model on a data split",
        description="Evaluate a model directory on a split of a data source. The split is rebuilt with the "
        "settings stored in the model, so 'test' is the split training never saw.",
        epilog="example:\n  swarmcnn evaluate models/digits digits --split test --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument("model", metavar="MODEL_DIR", help="a model directory written by train or search")
    evaluate.add_argument("data", help="the data source (as for train)")
    evaluate.add_argument("--split", choices=("train", "val", "test"), default="test", help="which split (test)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object (accuracy, per class, confusion)")
    add_model_size_option(evaluate)
    add_runtime_options(evaluate)


def run(args: argparse.Namespace) -> int:
    from swarmcnn.checkpoint import load
    from swarmcnn.display import evaluation_tables, stdout
    from swarmcnn.hardware import resolve
    from swarmcnn.train import evaluate

    trained = load(args.model)
    data = load_data_for(trained, args.data, args.image_size, args.model)
    split = getattr(data, args.split)
    if len(split) == 0:  # an accuracy of 0.0 on no images would read as a model that learned nothing
        fraction = {"val": " (trained with --val-fraction 0?)", "test": " (trained with --test-fraction 0?)"}
        raise SwarmCNNError(f"the {args.split} split of '{args.data}' is empty{fraction.get(args.split, '')}: "
                            "nothing to evaluate; choose another --split")
    hardware = resolve(args.device, args.precision)
    result = evaluate(trained.module.to(hardware.device), split, trained.normalization, hardware=hardware)
    report = {
        "model": str(args.model),
        "data": args.data,
        "split": args.split,
        "images": len(split),
        **result.to_dict(trained.class_names),
    }
    # a class without images in the split has no accuracy (null), not 0.0
    for name, row in zip(trained.class_names, result.confusion):
        if sum(row) == 0:
            report["per_class_accuracy"][name] = None
    if args.json:
        print(strictjson.dumps(report, indent=2))
    else:
        for table in evaluation_tables(report, f"{args.split} split of {args.data}"):
            stdout.print(table)
    return 0

