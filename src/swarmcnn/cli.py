"""The `swarmcnn` command: argument parsing and error reporting only; the work happens in the modules.

Bad input of any kind (spec, data, model directory) ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import NoReturn

from swarmcnn import strictjson
from swarmcnn.errors import SwarmCNNError

EXAMPLES = """examples:
  swarmcnn train digits --arch "conv32x3 bn relu maxpool2 fc64 relu" --epochs 10 --out models/digits
  swarmcnn evaluate models/digits digits --split test
  swarmcnn predict models/digits picture.png --top 3
  swarmcnn explain models/digits --data digits --samples 8 --out why/
  swarmcnn export models/digits --format onnx --out digits.onnx
"""

ARCH_HELP = (
    "the architecture, e.g. 'conv6x5 relu maxpool2 conv16x5 relu maxpool2 fc120 relu fc84 relu': "
    "conv<N>x<K>[s<S>] (N features of size KxK), maxpool<W>[s<S>], avgpool<W>[s<S>], relu, bn, "
    "dropout<P>, fc<N> (N neurons); the classifier layer is added for you"
)


def _image_size(text: str) -> tuple[int, int]:
    """'28' or '28x32' (height x width)."""
    parts = text.lower().split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"image size '{text}' must look like 28 or 28x32") from None
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise argparse.ArgumentTypeError(f"image size '{text}' must look like 28 or 28x32")
    return size  # type: ignore[return-value]


def _whole(minimum: int):
    """An argparse type: a whole number of at least `minimum`, refused where it enters with the option's name."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _number(low: float, high: float = math.inf, low_included: bool = True, high_included: bool = False):
    """An argparse type: a finite number in a range (nan and inf never pass)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
        above = value >= low if low_included else value > low
        below = value <= high if high_included else value < high
        if not (math.isfinite(value) and above and below):
            if high == math.inf:
                allowed = f"{'>=' if low_included else '>'} {low:g}"
            else:
                allowed = f"in {'[' if low_included else '('}{low:g}, {high:g}{']' if high_included else ')'}"
            raise argparse.ArgumentTypeError(f"must be a finite number {allowed}, got {text}")
        return value

    return parse


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option in one line, as every other bad input is reported."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument(
        "--image-size",
        type=_image_size,
        metavar="HxW",
        help="resize every image to this size, e.g. 28 or 32x32 (default: keep; sizes must agree)",
    )
    group.add_argument("--val-fraction", type=_number(0, 1), help="share held out for validation (0.15)")
    group.add_argument(
        "--test-fraction",
        type=_number(0, 1),
        help="share held out for the final test, for sources without a test split (0.15)",
    )
    group.add_argument("--split-seed", type=int, help="seed of the stratified split (0)")
    group.add_argument(
        "--frames",
        type=int,
        metavar="T",
        help="frames per video clip, evenly spaced over the clip (8); ignored for images",
    )
    group.add_argument(
        "--per-class",
        type=int,
        metavar="N",
        help="train and validate on at most the first N samples of each class (a quicker trial on a large set); "
        "a test split of the source's own is kept whole",
    )


def _add_model_size_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--image-size",
        type=_image_size,
        metavar="HxW",
        help="resize images to this size (default: the model's input size)",
    )


def _add_threads_option(parser: argparse.ArgumentParser, default: str = "PyTorch's choice") -> None:
    parser.add_argument("--threads", type=int, help=f"CPU threads for PyTorch (default: {default})")


FREE_CORES = "the cores other processes leave free"


def _add_runtime_options(parser: argparse.ArgumentParser, threads: str = "PyTorch's choice") -> None:
    _add_threads_option(parser, threads)
    parser.add_argument("--device", help="auto (default: a CUDA GPU where there is one, else cpu), cpu, cuda, cuda:N")
    parser.add_argument(
        "--precision",
        help="auto (default: bf16 autocast where the device computes it fast, else fp32), fp32 or bf16",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="swarmcnn",
        description="Design, train and explain small convolutional neural networks for images and videos.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from swarmcnn import __version__

    parser.add_argument("--version", action="version", version=f"swarmcnn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train a CNN of a given architecture and save it as a model directory",
        description="Train a CNN by backpropagation (AdamW or SGD, one-cycle schedule: warm-up then cosine "
        "annealing, label smoothing) and save it as a model directory (model.json + weights.safetensors).",
        epilog='example:\n  swarmcnn train digits --arch "conv32x3 bn relu maxpool2 fc64 relu" --epochs 10 --out m',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("data", help="digits, shapes, a folder of class sub-folders, a folder of IDX files, or x.npz")
    train.add_argument("--arch", required=True, metavar="SPEC", help=ARCH_HELP)
    train.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
    train.add_argument("--force", action="store_true", help="replace the model already in --out")
    train.add_argument("--epochs", type=_whole(1), help="training epochs (10)")
    train.add_argument("--seed", type=_whole(0), help="seed of initialisation, shuffling and dropout (0)")
    train.add_argument("--batch-size", type=_whole(1), help="images per batch (128)")
    train.add_argument(
        "--lr",
        type=_number(0, low_included=False),
        help="peak learning rate of the one-cycle schedule (default: 0.004 for a network with bn, 0.001 without; "
        "sgd: 0.05 and 0.02)",
    )
    train.add_argument("--weight-decay", type=_number(0), help="weight decay (0.01; sgd uses a tenth)")
    train.add_argument("--optimizer", choices=("adamw", "sgd"), help="adamw (default), or sgd with momentum")
    train.add_argument(
        "--patience",
        type=_whole(1),
        help="stop after this many epochs without a better validation loss and keep the best weights "
        "(default: off, the schedule runs to its end)",
    )
    train.add_argument("--augment", action="store_true", help="random shifts of up to 1/8 of the picture")
    train.add_argument("--flip", action="store_true", help="random horizontal flips (not for digits or letters)")
    train.add_argument("--quiet", action="store_true", help="no progress bar or tables")
    _add_data_options(train)
    _add_runtime_options(train, threads=FREE_CORES)

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
    _add_model_size_option(evaluate)
    _add_runtime_options(evaluate)

    predict = commands.add_parser(
        "predict",
        help="classify image or video files with a model",
        description="Print the most probable classes of each file: images for an image model; video files or "
        "folders of frames for a video model (sampled to its frames and resized to its size, as in training).",
        epilog="example:\n  swarmcnn predict models/digits a.png b.png --top 3 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_argument("model", metavar="MODEL_DIR", help="a model directory written by train or search")
    predict.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="image files (PNG, JPEG, ...), or for a video model video files (MP4, AVI, MOV, MKV, WebM, ...) "
        "or folders of frames",
    )
    predict.add_argument(
        "--top", type=_whole(1), default=1, metavar="K", help="how many classes to show per file (1)"
    )
    predict.add_argument("--json", action="store_true", help="print a JSON list of {file, label, probability, top}")
    _add_runtime_options(predict)
    _add_explain_parser(commands)
    _add_search_parser(commands)
    _add_runs_parser(commands)
    _add_export_parser(commands)
    _add_check_parser(commands)
    report = commands.add_parser(
        "report",
        help="write one self-contained HTML page of a search (finished or still running)",
        description="Write RUN_DIR's search as one HTML file that opens offline: the search over time, every "
        "candidate against its parameters and FLOPs with the Pareto front, how the swarm moved, the best "
        "architecture layer by layer, and the final model's test (confusion, per class, misclassified examples, "
        "features), with the run's settings and versions.",
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by search")
    report.add_argument("--out", required=True, metavar="FILE", help="the HTML file to write, e.g. report.html")
    _add_threads_option(report)
    return parser


def _add_explain_parser(commands) -> None:
    explain = commands.add_parser(
        "explain",
        help="show what a model learned: its features, and where in an input it sees its answer",
        description="Write pictures to --out: features.png, the first convolution's features (filters), and "
        "for each input the input beside a heat map of the evidence for the predicted class (or --target). "
        "Methods: gradcam (Grad-CAM on the last convolution: coarse, fast), integrated-gradients "
        "(pixel-sharp), occlusion (hides a window walked over the input and measures the drop of the score). "
        "Video models explain clips frame by frame, with each frame's share of the evidence. For the first "
        "input, stack/index.html shows it step by step: the feature maps after every convolution, ReLU and "
        "pooling layer, the match of a first-layer feature, and the class votes.",
        epilog="examples:\n  swarmcnn explain runs/digits/best --data digits --samples 8 --out why/\n"
        "  swarmcnn explain models/digits a.png b.png --method occlusion --target 7 --out why/ --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explain.add_argument("model", metavar="MODEL_DIR", help="a model directory written by train or search")
    explain.add_argument(
        "files", nargs="*", metavar="FILE", help="image files, or for a video model video files or frame folders"
    )
    explain.add_argument("--data", metavar="DATA", help="also explain the first --samples inputs of this data "
                         "source's test split (with their true class)")
    explain.add_argument("--samples", type=int, default=8, metavar="N", help="how many test inputs for --data (8)")
    explain.add_argument(
        "--method", default="gradcam", help="gradcam (default), integrated-gradients or occlusion"
    )
    explain.add_argument("--target", metavar="CLASS", help="map the evidence for this class (default: the predicted)")
    explain.add_argument("--out", required=True, metavar="DIR", help="folder for the pictures (created if needed)")
    explain.add_argument("--json", action="store_true", help="print one JSON object: features, explanations, stack")
    explain.add_argument("--feature", type=int, metavar="K", help="the first-layer feature whose match the stack "
                         "view shows (default: the best matching one)")
    _add_model_size_option(explain)
    _add_threads_option(explain)
    explain.add_argument("--device", help="auto (default: a CUDA GPU where there is one, else cpu), cpu, cuda, cuda:N; "
                         "explaining computes in fp32 (attributions are gradients)")


def _add_search_parser(commands) -> None:
    search = commands.add_parser(
        "search",
        help="find the architecture by particle swarm search, then train the best and test it",
        description="Search the space of CNN architectures: each candidate is trained briefly and scored on the "
        "validation split; the best is trained longer on train+val, tested once on the test split and saved in "
        "RUN_DIR/best. Everything is journaled in RUN_DIR/journal.sqlite; a killed search continues with --resume.",
        epilog="examples:\n  swarmcnn search digits --strategy pso --evaluations 40 --out runs/digits\n"
        "  swarmcnn search ../mnist --budget 10m --workers 2 --out runs/mnist\n  swarmcnn search --resume runs/mnist",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    search.add_argument("data", nargs="?", help="the data source (as for train); not with --resume")
    search.add_argument("--resume", metavar="RUN_DIR", help="continue a search that was stopped or killed")
    search.add_argument("--out", metavar="RUN_DIR", help="run directory to create")
    search.add_argument("--strategy", help="pso (default, ours), psocnn (the published method) or random")
    limits = search.add_mutually_exclusive_group()
    limits.add_argument(
        "--budget",
        type=_duration,
        metavar="T",
        help="wall-clock limit for search and final training, e.g. 90s, 10m, 1h30m",
    )
    limits.add_argument("--evaluations", type=int, metavar="N", help="number of candidates to train (default 40)")
    search.add_argument("--workers", type=int, help="candidates trained side by side in local processes (1)")
    cluster = search.add_argument_group("a Ray cluster (pip install 'swarmcnn[ray]'; also with --resume)")
    cluster.add_argument("--executor", choices=("local", "ray"), help="where candidates train: local (default) or ray")
    cluster.add_argument("--address", help="the Ray cluster to join, e.g. ray://head:10001 or auto (default: start "
                         "a local one on this machine's cores)")
    cluster.add_argument("--cpus-per-trial", type=float, help="CPUs of each candidate's Ray task (1)")
    cluster.add_argument("--gpus-per-trial", type=float, help="GPUs of each candidate's Ray task, "
                         "a fraction packs several on one GPU (0)")
    search.add_argument("--seed", type=int, help="seed of the strategy and of every training (0)")
    search.add_argument("--space", metavar="FILE.toml", help="search space ranges (keys as in swarmcnn.search.space)")
    search.add_argument("--candidate-epochs", type=int, help="training epochs per candidate at the first rung (2)")
    search.add_argument(
        "--train-fraction",
        type=float,
        help="share of the training split per candidate at the first rung (1.0; with --budget at most this, "
        "less where the data is large for the budget)",
    )
    search.add_argument(
        "--final-epochs",
        type=int,
        help="training epochs of the best spec at the end (default: with --budget as many as the time left holds, "
        "else 30)",
    )
    search.add_argument(
        "--rungs",
        type=int,
        metavar="R",
        help="promotion rungs (2): the best third of each rung trains again on 3x the images, up to rung R; the "
        "final spec is the best of the highest rung (0: the best after the first short training)",
    )
    search.add_argument(
        "--no-designs",
        dest="designs",
        action="store_false",
        default=None,
        help="do not start from the hand-designed networks (LeNet-5 and a VGG-style net)",
    )
    search.add_argument(
        "--augment",
        action="store_true",
        default=None,
        help="random shifts of up to 1/8 of the picture in the final training",
    )
    search.add_argument(
        "--flip",
        action="store_true",
        default=None,
        help="random horizontal flips in the final training (not for digits)",
    )
    search.add_argument(
        "--objective",
        choices=("accuracy", "accuracy-params"),
        help="accuracy, or accuracy minus 0.01 per decade of parameters (accuracy)",
    )
    search.add_argument("--max-params", type=int, help="larger candidates are not trained (2000000)")
    search.add_argument(
        "--candidate-seconds",
        type=float,
        help="time limit per candidate at the first rung, three times more per rung above; a slower candidate's "
        "schedule is compressed into it (default: none; with --budget, four times a typical candidate's time)",
    )
    search.add_argument("--quiet", action="store_true", help="no live display")
    _add_data_options(search)
    _add_runtime_options(search, f"{FREE_CORES} with --budget, else PyTorch's choice")


def _add_check_parser(commands) -> None:
    check = commands.add_parser(
        "check",
        help="is a CNN the right tool for this data? (does scrambling its pixel positions cost a CNN?)",
        description="Train the same small CNN briefly on DATA as it is and with its pixel positions scrambled "
        "by one fixed permutation (and, for clips, with each clip's frames shuffled), and a fully connected "
        "net of about the same size, over --seeds seeds; print the test accuracies and whether a CNN is "
        "advised: it is where scrambling costs the CNN clearly more than noise.",
        epilog="examples:\n  swarmcnn check digits\n  swarmcnn check ../my-pictures --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("data", help="the data source (as for train)")
    check.add_argument("--seeds", type=_at_least_one, default=3, help="trainings of each network (3)")
    check.add_argument("--json", action="store_true", help="print one JSON object (cnn_advised, accuracies, ...)")
    _add_data_options(check)
    _add_runtime_options(check, threads=FREE_CORES)


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_export_parser(commands) -> None:
    export = commands.add_parser(
        "export",
        help="write a model as one ONNX or TorchScript file that runs without swarmcnn",
        description="Write a model directory as one file: ONNX (for onnxruntime, in any language; needs "
        "pip install 'swarmcnn[onnx]') or TorchScript (for libtorch). The file takes stored pixel values, "
        "(N, C, H, W) or for video (N, C, T, H, W), normalises them itself and returns class probabilities; "
        "class names, input shape and spec are in its metadata. It is run again from disk on a few inputs of "
        "the model's data source (random ones where that cannot be read) and refused, nothing written, when "
        "it differs from PyTorch by more than 1e-4.",
        epilog="examples:\n  swarmcnn export models/digits --format onnx --out digits.onnx\n"
        "  swarmcnn export models/moving --format torchscript --out moving.pt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("model", metavar="MODEL_DIR", help="a model directory written by train or search")
    export.add_argument(
        "--format", choices=("onnx", "torchscript"), default="onnx", help="onnx (default) or torchscript"
    )
    export.add_argument("--out", required=True, metavar="FILE", help="the file to write, e.g. model.onnx")
    export.add_argument(
        "--input-dtype",
        choices=("uint8", "float32"),
        default="uint8",
        help="the input's type: uint8 pixel values 0..255 (default, as image files hold them), or float32 in the "
        "same units (for a model trained on float data, such as an .npz of floats)",
    )
    export.add_argument("--force", action="store_true", help="replace the file already at --out")
    export.add_argument("--json", action="store_true", help="print one JSON object describing the file")
    _add_threads_option(export)


def _add_runs_parser(commands) -> None:
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
    show.add_argument("--top", type=_whole(1), default=10, metavar="K", help="rows of the leaderboard (10)")


def _duration(text: str) -> float:
    """'90s', '10m', '1h30m' or plain seconds -> seconds."""
    import re

    match = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?", text.strip().lower())
    if not text.strip() or not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"budget '{text}' must look like 90s, 10m or 1h30m")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _set_threads(getattr(args, "threads", None))
        return COMMANDS[args.command](args)
    except SwarmCNNError as error:
        print(f"swarmcnn: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a folder that cannot be written, a disk that is full
        where = f": '{error.filename}'" if error.filename else ""
        print(f"swarmcnn: error: {error.strerror or error}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("swarmcnn: interrupted", file=sys.stderr)
        return 130


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        if threads < 1:
            raise SwarmCNNError(f"--threads must be at least 1, got {threads}")
        import torch

        torch.set_num_threads(threads)


def run_train(args: argparse.Namespace) -> int:
    from swarmcnn.checkpoint import MODEL_FILE
    from swarmcnn.data import DataConfig, load_data
    from swarmcnn.display import RichTrainReporter, stderr, stdout
    from swarmcnn.hardware import resolve
    from swarmcnn.package import check_trainable, train_model
    from swarmcnn.spec import Spec
    from swarmcnn.train import TrainConfig

    spec = Spec.parse(args.arch)  # a bad spec fails before any data is read
    resolve(args.device, args.precision)  # as does a device this machine lacks
    out = _output_dir(args.out, args.force)
    if args.threads is None:
        from swarmcnn.cores import ThreadGovernor

        ThreadGovernor()  # PyTorch gets the cores other processes leave free
    config = TrainConfig(**_given(args, TrainConfig))
    data_config = DataConfig(**_given(args, DataConfig))
    data = load_data(args.data, data_config)
    check_trainable(spec, data, config)  # names the layer that does not fit this input, or the memory it lacks
    if not args.quiet:
        stderr.print(
            f"training [bold]{spec}[/] on {data.source}: {len(data.train)} train, {len(data.val)} val, "
            f"{len(data.test)} test, input {'×'.join(map(str, data.input_shape))}, "
            f"{spec.num_params(data.input_shape, len(data.class_names)):,} parameters"
        )
    reporter = None if args.quiet else RichTrainReporter()
    trained, result, test = train_model(spec, data, config, reporter, data_config)
    kept = f"; the model in '{out}' is unchanged" if (out / MODEL_FILE).exists() else ""
    if not result.ok or not result.epochs:  # a diverged training never replaces a model
        raise SwarmCNNError(f"training {result.status}: {result.reason}; no model was saved{kept}")
    if len(data.test) and not math.isfinite(test.loss):
        raise SwarmCNNError(f"training diverged: test loss {test.loss:.3g}; no model was saved{kept}")
    if result.not_learning:
        print(f"swarmcnn: warning: {not_learning_text(result.not_learning, result.chance_loss)}", file=sys.stderr)
    trained.save(out)
    validated = math.isfinite(result.best_val_loss)  # no validation split: no validation score, not 0
    if not args.quiet:
        val = f"val accuracy {result.best_val_accuracy:.4f}" if validated else "no validation split"
        stdout.print(f"{result.status} ({result.reason}); {val}, test accuracy {test.accuracy:.4f}; saved to {out}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from swarmcnn.checkpoint import load
    from swarmcnn.display import evaluation_tables, stdout
    from swarmcnn.hardware import resolve
    from swarmcnn.train import evaluate

    trained = load(args.model)
    data = _load_data_for(trained, args.data, args.image_size)
    split = getattr(data, args.split)
    hardware = resolve(args.device, args.precision)
    result = evaluate(trained.module.to(hardware.device), split, trained.normalization, hardware=hardware)
    report = {
        "model": str(args.model),
        "data": args.data,
        "split": args.split,
        "images": len(split),
        **result.to_dict(trained.class_names),
    }
    if args.json:
        print(strictjson.dumps(report, indent=2))
    else:
        for table in evaluation_tables(report, f"{args.split} split of {args.data}"):
            stdout.print(table)
    return 0


def run_predict(args: argparse.Namespace) -> int:
    import torch

    from swarmcnn.checkpoint import load
    from swarmcnn.data import load_image_file
    from swarmcnn.display import predictions_table, stdout
    from swarmcnn.hardware import resolve

    hardware = resolve(args.device, args.precision)
    trained = load(args.model)
    inputs = torch.stack([load_image_file(path, trained.input_shape) for path in args.files])
    probabilities = trained.predict_proba(inputs, hardware)
    broken = (~torch.isfinite(probabilities).all(1)).nonzero().flatten().tolist()
    if broken:  # finite weights can still overflow on an extreme input: no answer rather than NaN
        raise SwarmCNNError(f"model '{args.model}' gives no finite scores for '{args.files[broken[0]]}'")
    top = probabilities.topk(min(args.top, probabilities.shape[1]), dim=1)
    rows = []
    for path, values, indices in zip(args.files, top.values.tolist(), top.indices.tolist()):
        guesses = [{"label": trained.class_names[i], "probability": p} for p, i in zip(values, indices)]
        rows.append({"file": path, **guesses[0], "top": guesses})
    if args.json:
        print(strictjson.dumps(rows, indent=2))
    else:
        stdout.print(predictions_table(rows))
    return 0


def run_explain(args: argparse.Namespace) -> int:
    from swarmcnn.checkpoint import load
    from swarmcnn.display import explanations_table, stdout
    from swarmcnn.explain import explain, first_conv_weight
    from swarmcnn.hardware import resolve_device
    from swarmcnn.render import explanation_image, features_image
    from swarmcnn.stack import write_stack

    device = resolve_device(args.device or "auto")  # before any work
    trained = load(args.model)
    names, inputs, truths = _inputs_to_explain(args, trained)
    out = _folder_path(args.out)
    out.mkdir(parents=True, exist_ok=True)  # before the work: an --out that cannot be a folder fails at once
    explanations = explain(trained, inputs, args.method, args.target, device)
    weight = first_conv_weight(trained.module)
    features = None if weight is None else out / "features.png"
    if features is not None:
        features_image(weight).save(features)
    rows = []
    for index, (name, x, truth, found) in enumerate(zip(names, inputs, truths, explanations)):
        picture = out / f"{index:03d}-{Path(name).stem.replace(' ', '-').replace('#', '')}.png"
        title = f"{name}: {found.label} ({found.probability:.2f}); evidence for {found.target}, {found.method}"
        explanation_image(x, found, title).save(picture)
        rows.append(_explanation_row(name, truth, found, picture))
    stack = write_stack(trained, inputs[0], out / "stack", names[0], args.feature)  # the steps, for the first input
    if args.json:
        report = {"model": str(args.model), "method": args.method, "features": features and str(features)}
        report["stack"] = {**stack, "folder": str(out / "stack")}
        print(json.dumps({**report, "explanations": rows}, indent=2))
    else:
        stdout.print(explanations_table(rows, args.method))
        stdout.print(f"pictures in {out}/: " + ", ".join(Path(row["picture"]).name for row in rows[:2])
                     + (", ..." if len(rows) > 2 else "") + (", features.png" if features else ""))
        stdout.print(f"how the network treats {names[0]}, step by step: {out / 'stack' / 'index.html'}")
    return 0


def _explanation_row(name: str, truth: str | None, found, picture: Path) -> dict:
    """One input's line of `explain --json`: true class for --data inputs, frame shares for videos."""
    return {
        "file": name,
        **({"true": truth} if truth is not None else {}),
        "label": found.label,
        "probability": found.probability,
        "target": found.target,
        "target_probability": found.target_probability,
        "peak": list(found.peak),
        **({"frame_importance": found.frame_importance} if found.frame_importance is not None else {}),
        "picture": str(picture),
    }


def _inputs_to_explain(args: argparse.Namespace, trained):
    """Names, stored inputs and true classes (None for files): the FILEs, then --samples test inputs of --data."""
    import torch

    from swarmcnn.data import load_image_file

    if not args.files and args.data is None:
        raise SwarmCNNError("give FILEs to explain, or --data DATA to explain inputs of its test split")
    if args.samples < 1:
        raise SwarmCNNError(f"--samples must be at least 1, got {args.samples}")
    names = list(args.files)
    inputs = [load_image_file(path, trained.input_shape) for path in args.files]
    truths = [None] * len(names)
    if args.data is not None:
        test = _load_data_for(trained, args.data, args.image_size).test
        count = min(args.samples, len(test))
        names += [f"{Path(args.data).name or args.data} test #{i}" for i in range(count)]
        inputs += list(test.x[:count])
        truths += [trained.class_names[int(label)] for label in test.y[:count]]
    return names, torch.stack(inputs), truths


def not_learning_text(epoch: int, chance: float | None = None) -> str:
    """The one line that tells a user the network learned nothing, with the remedies."""
    level = "" if chance is None else f" ({chance:.3f})"
    return (
        f"the training loss stayed at the chance level{level} up to epoch {epoch}: the network is not learning; "
        "try a lower --lr (a third of it, say) or 'bn' after each convolution"
    )


def _folder_path(path: str) -> Path:
    """An --out that is a folder or can become one."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise SwarmCNNError(f"--out '{out}' exists and is not a folder")
    return out


def _output_dir(path: str, force: bool = False) -> Path:
    """An --out a model can be written to, checked before any work: not a folder of other files, not a model
    unless `force`, and in a folder that can be written."""
    from swarmcnn.checkpoint import MODEL_FILE, WEIGHTS_FILE

    out = _folder_path(path)
    names = {p.name for p in out.iterdir()} if out.is_dir() else set()
    if names - {MODEL_FILE, WEIGHTS_FILE}:
        raise SwarmCNNError(f"--out '{out}' is a folder with other files in it; choose a new or empty folder")
    if names and not force:
        raise SwarmCNNError(f"--out '{out}' already holds a model; pass --force to replace it, or choose a new folder")
    _check_writable(out)
    return out


def _check_writable(out: Path) -> None:
    """The model is written beside --out and then renamed into place: the folder that holds --out, or its first
    existing ancestor, must be a folder this process can write."""
    folder = Path(os.path.abspath(out)).parent
    while not folder.exists() and not folder.is_symlink():
        folder = folder.parent
    if not folder.is_dir():
        raise SwarmCNNError(f"--out '{out}' cannot be created: '{folder}' is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SwarmCNNError(f"--out '{out}' cannot be written: no permission to write in '{folder}'")


def _given(args: argparse.Namespace, config_type) -> dict:
    """The options the user set, so that the defaults live in one place: the config dataclass."""
    names = {f.name for f in fields(config_type)}
    return {name: value for name, value in vars(args).items() if name in names and value is not None}


def _load_data_for(trained, source: str, image_size: tuple[int, int] | None):
    """The data source split as at training time, at the model's input size."""
    from swarmcnn.data import DataConfig, load_data

    settings = {k: v for k, v in trained.data.items() if k in DataConfig.__dataclass_fields__}
    try:  # what model.json stored, checked as the user's own options would be
        config = DataConfig(**settings)
    except (SwarmCNNError, TypeError, ValueError, ArithmeticError) as error:
        raise SwarmCNNError(f"the data settings stored with the model (field 'data' of model.json): {error}") from None
    if image_size is not None:
        config = replace(config, image_size=image_size)
    data = load_data(source, config)
    if tuple(data.input_shape) != tuple(trained.input_shape):
        raise SwarmCNNError(
            f"data '{source}' gives inputs {'×'.join(map(str, data.input_shape))} but the model expects "
            f"{'×'.join(map(str, trained.input_shape))}; pass --image-size {trained.input_shape[-2]}x"
            f"{trained.input_shape[-1]}"
        )
    if tuple(data.class_names) != tuple(trained.class_names):
        raise SwarmCNNError(
            f"data '{source}' has classes {list(data.class_names)} but the model was trained on "
            f"{list(trained.class_names)}"
        )
    return data


def run_search(args: argparse.Namespace) -> int:
    from swarmcnn.data import DataConfig
    from swarmcnn.display import RichSearchReporter, stdout
    from swarmcnn.search.evaluate import EvaluationConfig
    from swarmcnn.search.loop import Search, SearchConfig
    from swarmcnn.search.space import SearchSpace

    reporter = None if args.quiet else RichSearchReporter()
    if args.resume:
        given = [
            "DATA" if k == "data" else f"--{k.replace('_', '-')}"
            for k, v in vars(args).items()
            if k not in ("resume", "quiet", "threads", "command", *RUNTIME) and v is not None and v is not False
        ]
        if given:
            raise SwarmCNNError(f"--resume continues with the run's own settings; drop {', '.join(given)}")
        search = Search.resume(args.resume, reporter, threads=args.threads, executor=_executor_factory(args))
    else:
        if not args.data or not args.out:
            raise SwarmCNNError("search needs DATA and --out RUN_DIR (or --resume RUN_DIR)")
        evaluation = {
            "epochs": args.candidate_epochs,
            "train_fraction": args.train_fraction,
            "objective": args.objective,
            "max_params": args.max_params,
            "max_seconds": args.candidate_seconds,
            "seed": args.seed,
            "device": args.device,
            "precision": args.precision,
        }
        config = SearchConfig(
            source=args.data,
            **{
                k: v
                for k in ("strategy", "evaluations", "workers", "seed", "final_epochs", "rungs", "designs", "augment",
                          "flip")
                if (v := getattr(args, k)) is not None
            },
            budget_seconds=args.budget,
            space=SearchSpace.from_toml(args.space) if args.space else SearchSpace(),
            evaluation=EvaluationConfig(**{k: v for k, v in evaluation.items() if v is not None}),
            data=DataConfig(**_given(args, DataConfig)),
        )
        search = Search.start(args.out, config, reporter, threads=args.threads, executor=_executor_factory(args))
    try:
        summary = search.run()
        final = search.journal.get("final")
    finally:
        search.journal.close()  # its write-ahead log goes back into journal.sqlite: the run is one file again
    if final.get("final_not_learning"):
        print(f"swarmcnn: warning: {not_learning_text(final['final_not_learning'])}", file=sys.stderr)
    if final.get("time_bound") and not args.quiet:
        stdout.print(
            "the best design was still learning at the budget's end, so its final training got the time a search "
            "would have taken (a longer --budget leaves time to search)"
        )
    if not args.quiet:
        stdout.print(
            f"best spec [bold]{summary.best_spec}[/]: val accuracy {summary.best_val_accuracy:.4f}, "
            f"test accuracy {summary.test_accuracy:.4f} after {summary.evaluations} evaluations; "
            f"model in {summary.model_dir}"
        )
    return 0


RUNTIME = ("executor", "address", "cpus_per_trial", "gpus_per_trial")  # where it runs, not what: free on resume


def _executor_factory(args: argparse.Namespace):
    """None for the local executors (the search picks one), or one that puts candidates on Ray."""
    if args.executor != "ray":
        given = [f"--{k.replace('_', '-')}" for k in RUNTIME[1:] if getattr(args, k) is not None]
        if given:
            raise SwarmCNNError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for --executor ray")
        return None
    if args.workers is not None:
        raise SwarmCNNError("--workers is for the local executor; Ray trains as many candidates side by side as "
                            "the cluster's CPUs and GPUs hold (see --cpus-per-trial, --gpus-per-trial)")
    cpus = 1 if args.cpus_per_trial is None else args.cpus_per_trial
    gpus = 0 if args.gpus_per_trial is None else args.gpus_per_trial
    if cpus <= 0 or gpus < 0:
        raise SwarmCNNError(f"--cpus-per-trial must be positive and --gpus-per-trial not negative, got {cpus}, {gpus}")
    from swarmcnn.search.ray_executor import ray_executors

    return ray_executors(args.address, cpus, gpus)  # a missing Ray or a wrong address: one line before any work


def run_runs(args: argparse.Namespace) -> int:
    from swarmcnn.display import run_tables, stdout
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
    stdout.print(
        f"{summary['strategy']} on {summary['data']}: {summary['evaluations']} evaluations ({counts}), "
        f"{summary['status']}; best {summary['best_spec']} (val {'-' if val is None else f'{val:.4f}'}), "
        f"test accuracy {'-' if test is None else f'{test:.4f}'}{epochs}"
    )
    return 0


def run_export(args: argparse.Namespace) -> int:
    from swarmcnn.checkpoint import load
    from swarmcnn.export import check_format, check_inputs_for, export_model

    check_format(args.format, args.input_dtype)  # an ONNX export without onnx installed fails before any work
    out = _export_path(args.out, args.force)
    trained = load(args.model)
    inputs, where = check_inputs_for(trained)
    exported = export_model(trained, args.format, out, inputs, where, args.input_dtype)
    if args.json:
        print(strictjson.dumps({**asdict(exported), "path": str(exported.path)}, indent=2))
        return 0
    shape = "×".join(["N", *map(str, exported.input_shape)])
    kind = f"ONNX opset {exported.opset}" if exported.format == "onnx" else "TorchScript"
    runner = "onnxruntime" if exported.format == "onnx" else "torch.jit.load"
    print(
        f"exported {args.model} to {out}: {kind}, input 'pixels' {exported.input_dtype} {shape} -> "
        f"'probabilities' N×{exported.classes}; {runner} agrees with PyTorch within {exported.max_difference:.1e} "
        f"on {exported.checked_on}"
    )
    return 0


def _export_path(path: str, force: bool) -> Path:
    """An --out file an export may write, checked before any work."""
    out = Path(path)
    if out.is_dir():
        raise SwarmCNNError(f"--out '{out}' is a folder; give a file name such as model.onnx")
    if out.exists() and not force:
        raise SwarmCNNError(f"--out '{out}' already exists; pass --force to replace it, or choose a new name")
    _check_writable(out)
    return out


def run_report(args: argparse.Namespace) -> int:
    from swarmcnn.report import write_report

    print(write_report(args.run_dir, args.out))
    return 0


def run_check(args: argparse.Namespace) -> int:
    from swarmcnn.data import DataConfig, load_data
    from swarmcnn.display import check_table, stdout
    from swarmcnn.hardware import resolve
    from swarmcnn.locality import check

    hardware = resolve(args.device, args.precision)
    if args.threads is None:
        from swarmcnn.cores import ThreadGovernor

        ThreadGovernor()  # as for train: on digits with a core taken, 2 threads took 57 s and 1 thread 6 s
    data = load_data(args.data, DataConfig(**_given(args, DataConfig)))
    result = check(data, args.seeds, str(hardware.device), hardware.precision)
    if args.json:
        print(strictjson.dumps({"data": args.data, **result.to_dict()}, indent=2))
    else:
        stdout.print(check_table(result, args.data))
        stdout.print(result.verdict)
    return 0


COMMANDS = {
    "train": run_train,
    "evaluate": run_evaluate,
    "predict": run_predict,
    "explain": run_explain,
    "search": run_search,
    "runs": run_runs,
    "export": run_export,
    "check": run_check,
    "report": run_report,
}


if __name__ == "__main__":
    sys.exit(main())
