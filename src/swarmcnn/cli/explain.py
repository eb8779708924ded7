"""`swarmcnn explain`: the features a model learned and where in an input it sees its answer."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from swarmcnn.cli.options import (
    add_model_size_option,
    add_threads_option,
    folder_path,
    load_data_for,
    refuse_existing,
    refuse_inside,
)
from swarmcnn.errors import SwarmCNNError


def add_parser(commands) -> None:
    explain = commands.add_parser(
        "explain",
        help="show what a model learned: its features, and where in an input it sees its answer",
        description="Write pictures to --out: features.png, the first convolution's features (filters), and "
        "for each input the input beside a heat map of the evidence for the predicted class (or --target). "
        "Methods: gradcam (Grad-CAM on the last convolution: coarse, fast), integrated-gradients "
        "(pixel-sharp), occlusion (hides a window walked over the input and measures the drop of the score). "
        "Video models explain clips frame by frame, with each frame's share of the evidence; models of signals "
        "draw each channel as a line with the evidence shaded under it (FILEs of cases: .ts, .tsv, .npy). For the "
        "first input, stack/index.html shows it step by step: the feature maps after every convolution, ReLU and "
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
    explain.add_argument("--force", action="store_true", help="replace the pictures of an earlier explain in --out")
    explain.add_argument("--json", action="store_true", help="print one JSON object: features, explanations, stack")
    explain.add_argument("--feature", type=int, metavar="K", help="the first-layer feature whose match the stack "
                         "view shows (default: the best matching one)")
    add_model_size_option(explain)
    add_threads_option(explain)
    explain.add_argument("--device", help="auto (default: a CUDA GPU where there is one, else cpu), cpu, cuda, cuda:N; "
                         "explaining computes in fp32 (attributions are gradients)")


def run(args: argparse.Namespace) -> int:
    from swarmcnn.checkpoint import load
    from swarmcnn.display import explanations_table, stdout
    from swarmcnn.explain import explain, first_conv_weight
    from swarmcnn.hardware import resolve_device
    from swarmcnn.render import explanation_image, features_image
    from swarmcnn.stack import write_stack

    device = resolve_device(args.device or "auto")  # before any work
    trained = load(args.model)
    names, inputs, truths = _inputs_to_explain(args, trained)
    out = folder_path(args.out)
    refuse_inside(out, {"the model directory": args.model})
    pictures = [out / _picture_name(index, name) for index, name in enumerate(names)]
    refuse_existing([out / "features.png", *pictures, out / "stack"], args.force)  # the files of an earlier one
    out.mkdir(parents=True, exist_ok=True)  # before the work: an --out that cannot be a folder fails at once
    explanations = explain(trained, inputs, args.method, args.target, device)
    weight = first_conv_weight(trained.module)
    features = None if weight is None else out / "features.png"
    if features is not None:
        features_image(weight).save(features)
    rows = []
    for name, x, truth, found, picture in zip(names, inputs, truths, explanations, pictures):
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


def _picture_name(index: int, name: str) -> str:
    return f"{index:03d}-{Path(name).stem.replace(' ', '-').replace('#', '')}.png"


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

    from swarmcnn.data import load_inputs

    if not args.files and args.data is None:
        raise SwarmCNNError("give FILEs to explain, or --data DATA to explain inputs of its test split")
    if args.samples < 1:
        raise SwarmCNNError(f"--samples must be at least 1, got {args.samples}")
    origins, loaded = load_inputs(args.files, trained.input_shape) if args.files else ([], [])
    names = [path if case is None else f"{path}[{case}]" for path, case in origins]  # cases of files of signals
    inputs = list(loaded)
    truths = [None] * len(names)
    if args.data is not None:
        test = load_data_for(trained, args.data, args.image_size, args.model).test
        if len(test) == 0 and not names:
            raise SwarmCNNError(f"the test split of '{args.data}' is empty (the model was trained with "
                                "--test-fraction 0?): give FILEs to explain")
        count = min(args.samples, len(test))
        names += [f"{Path(args.data).name or args.data} test #{i}" for i in range(count)]
        inputs += list(test.x[:count])
        truths += [trained.class_names[int(label)] for label in test.y[:count]]
    return names, torch.stack(inputs), truths

