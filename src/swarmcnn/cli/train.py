"""`swarmcnn train`: train a given architecture and save it as a model directory."""

from __future__ import annotations

import argparse
import math
import sys

from swarmcnn.cli.options import (
    ARCH_HELP,
    FREE_CORES,
    add_data_options,
    add_runtime_options,
    data_path,
    given,
    not_learning_text,
    number,
    output_dir,
    whole,
)
from swarmcnn.errors import SwarmCNNError


def add_parser(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train a CNN of a given architecture and save it as a model directory",
        description="Train a CNN by backpropagation (AdamW or SGD, one-cycle schedule: warm-up then cosine "
        "annealing, label smoothing) and save it as a model directory (model.json + weights.safetensors).",
        epilog='example:\n  swarmcnn train digits --arch "conv32x3 bn relu maxpool2 fc64 relu" --epochs 10 --out m',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("data", help="digits, shapes, bumps, a folder of class sub-folders, a folder of IDX files, "
                       "x.npz, or series files (NAME_TRAIN.ts, .tsv, or a folder holding NAME_TRAIN and NAME_TEST)")
    train.add_argument("--arch", required=True, metavar="SPEC", help=ARCH_HELP)
    train.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
    train.add_argument("--force", action="store_true", help="replace the model already in --out")
    train.add_argument("--epochs", type=whole(1), help="training epochs (10)")
    train.add_argument("--seed", type=whole(0), help="seed of initialisation, shuffling and dropout (0)")
    train.add_argument("--batch-size", type=whole(1), help="images per batch (128)")
    train.add_argument(
        "--lr",
        type=number(0, low_included=False),
        help="peak learning rate of the one-cycle schedule (default: 0.004 for a network with bn, 0.001 without; "
        "sgd: 0.05 and 0.02)",
    )
    train.add_argument("--weight-decay", type=number(0), help="weight decay (0.01; sgd uses a tenth)")
    train.add_argument("--optimizer", choices=("adamw", "sgd"), help="adamw (default), or sgd with momentum")
    train.add_argument(
        "--patience",
        type=whole(1),
        help="stop after this many epochs without a better validation loss and keep the best weights "
        "(default: off, the schedule runs to its end)",
    )
    train.add_argument("--augment", action="store_true", help="random shifts of up to 1/8 of the picture (of the "
                       "series' length, along time, for signals)")
    train.add_argument("--flip", action="store_true", help="random horizontal flips (not for digits or letters, "
                       "nor signals)")
    train.add_argument("--members", type=whole(1), default=1,
                       help="trainings of the network from seeds SEED, SEED+1, ..., their class probabilities "
                            "averaged in one model (1; a few at most): steadier on small data sets")
    train.add_argument("--quiet", action="store_true", help="no progress bar or tables")
    add_data_options(train)
    add_runtime_options(train, threads=FREE_CORES)


def run(args: argparse.Namespace) -> int:
    from swarmcnn.checkpoint import MODEL_FILE
    from swarmcnn.data import DataConfig, load_data
    from swarmcnn.display import RichTrainReporter, stderr, stdout
    from swarmcnn.ensemble import check_members
    from swarmcnn.hardware import resolve
    from swarmcnn.package import check_trainable, learned, train_members
    from swarmcnn.spec import Spec
    from swarmcnn.train import TrainConfig

    spec = Spec.parse(args.arch)  # a bad spec fails before any data is read
    check_members(args.members)
    resolve(args.device, args.precision)  # as does a device this machine lacks
    out = output_dir(args.out, args.force, reads={"the data source": data_path(args.data)})
    if args.threads is None:
        from swarmcnn.cores import ThreadGovernor

        ThreadGovernor()  # PyTorch gets the cores other processes leave free
    config = TrainConfig(**given(args, TrainConfig))
    data_config = DataConfig(**given(args, DataConfig))
    data = load_data(args.data, data_config)
    check_trainable(spec, data, config)  # names the layer that does not fit this input, or the memory it lacks
    if not args.quiet:
        stderr.print(
            f"training [bold]{spec}[/] on {data.source}: {len(data.train)} train, {len(data.val)} val, "
            f"{len(data.test)} test, input {'×'.join(map(str, data.input_shape))}, "
            f"{spec.num_params(data.input_shape, len(data.class_names)):,} parameters"
            + (f"; signals of {data.signal.describe()}" if data.signal is not None else "")
        )
    reporter = None if args.quiet else RichTrainReporter()
    trained, results, test = train_members(spec, data, config, args.members, reporter, data_config)
    kept = f"; the model in '{out}' is unchanged" if (out / MODEL_FILE).exists() else ""
    if not learned(results[-1]):  # a diverged training never replaces a model (train_members stops at it)
        raise SwarmCNNError(f"training {results[-1].status}: {results[-1].reason}; no model was saved{kept}")
    result = results[0]
    if len(data.test) and not math.isfinite(test.loss):
        raise SwarmCNNError(f"training diverged: test loss {test.loss:.3g}; no model was saved{kept}")
    if result.not_learning:
        print(f"swarmcnn: warning: {not_learning_text(result.not_learning, result.chance_loss)}", file=sys.stderr)
    trained.save(out)
    validated = math.isfinite(result.best_val_loss)  # no validation split: no validation score, not 0
    if not args.quiet:
        val = f"val accuracy {result.best_val_accuracy:.4f}" if validated else "no validation split"
        val += " (the first training's)" if validated and args.members > 1 else ""
        averaged = f"; {args.members} trainings averaged" if args.members > 1 else ""
        stdout.print(f"{result.status} ({result.reason}); {val}, test accuracy {test.accuracy:.4f}{averaged}; "
                     f"saved to {out}")
    return 0

