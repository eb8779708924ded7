"""`swarmcnn predict`: the most probable classes of image or video files."""

from __future__ import annotations

import argparse

from swarmcnn import strictjson
from swarmcnn.cli.options import add_runtime_options, whole
from swarmcnn.errors import SwarmCNNError


def add_parser(commands) -> None:
    predict = commands.add_parser(
        "predict",
        help="classify image, video or signal files with a model",
        description="Print the most probable classes of each file: images for an image model; video files or "
        "folders of frames for a video model (sampled to its frames and resized to its size, as in training); "
        "for a model of signals, each case of .ts, .tsv or .npy files, one row per case (brought to its length, "
        "missing values filled, as in training).",
        epilog="example:\n  swarmcnn predict models/digits a.png b.png --top 3 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_argument("model", metavar="MODEL_DIR", help="a model directory written by train or search")
    predict.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="image files (PNG, JPEG, ...), or for a video model video files (MP4, AVI, MOV, MKV, WebM, ...) "
        "or folders of frames, or for a model of signals files of cases: .ts, UCR .tsv/.txt (labels ignored), "
        ".npy of shape (N, C, L) (or (N, L) for one channel)",
    )
    predict.add_argument(
        "--top", type=whole(1), default=1, metavar="K", help="how many classes to show per file (1)"
    )
    predict.add_argument("--json", action="store_true", help="print a JSON list of {file, label, probability, top} "
                         "(and case, the case's index in its file, for signals)")
    add_runtime_options(predict)


def run(args: argparse.Namespace) -> int:
    import torch

    from swarmcnn.checkpoint import load
    from swarmcnn.data import load_inputs
    from swarmcnn.display import predictions_table, stdout
    from swarmcnn.hardware import resolve

    hardware = resolve(args.device, args.precision)
    trained = load(args.model)
    origins, inputs = load_inputs(args.files, trained.input_shape)
    probabilities = trained.predict_proba(inputs, hardware)
    broken = (~torch.isfinite(probabilities).all(1)).nonzero().flatten().tolist()
    if broken:  # finite weights can still overflow on an extreme input: no answer rather than NaN
        raise SwarmCNNError(f"model '{args.model}' gives no finite scores for '{_shown(origins[broken[0]])}'")
    top = probabilities.topk(min(args.top, probabilities.shape[1]), dim=1)
    rows = []
    for (path, case), values, indices in zip(origins, top.values.tolist(), top.indices.tolist()):
        guesses = [{"label": trained.class_names[i], "probability": p} for p, i in zip(values, indices)]
        rows.append({"file": path, **({"case": case} if case is not None else {}), **guesses[0], "top": guesses})
    if args.json:
        print(strictjson.dumps(rows, indent=2))
    else:
        stdout.print(predictions_table(rows))
    return 0


def _shown(origin: tuple[str, int | None]) -> str:
    """A file, or a case of a file of signals: 'cases.ts[3]'."""
    path, case = origin
    return path if case is None else f"{path}[{case}]"
