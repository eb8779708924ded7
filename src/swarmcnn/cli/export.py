"""`swarmcnn export`: a model as one ONNX or TorchScript file."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from swarmcnn import strictjson
from swarmcnn.cli.options import add_threads_option, output_file


def add_parser(commands) -> None:
    export = commands.add_parser(
        "export",
        help="write a model as one ONNX or TorchScript file that runs without swarmcnn",
        description="Write a model directory as one file: ONNX (for onnxruntime, in any language; needs "
        "pip install 'swarmcnn[onnx]') or TorchScript (for libtorch). The file takes stored pixel values, "
        "(N, C, H, W) or for video (N, C, T, H, W), or float32 signals (N, C, L), normalises them itself and "
        "returns class probabilities; "
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
        help="the input's type (default: the type the model was trained on): uint8 pixel values 0..255, as image "
        "files hold them, or float32 in the training data's units (a model trained on float data, such as an .npz "
        "of floats, takes only float32; a uint8 model takes it too; signals take only float32)",
    )
    export.add_argument("--force", action="store_true", help="replace the file already at --out")
    export.add_argument("--json", action="store_true", help="print one JSON object describing the file")
    add_threads_option(export)


def run(args: argparse.Namespace) -> int:
    from swarmcnn.checkpoint import load
    from swarmcnn.export import check_format, check_input_dtype, check_inputs_for, default_input_dtype, export_model

    check_format(args.format, args.input_dtype or "uint8")  # an ONNX export without onnx fails before any work
    out = output_file(args.out, args.force, reads={"the model directory": args.model})
    trained = load(args.model)
    dtype = args.input_dtype or default_input_dtype(trained)
    check_input_dtype(trained, dtype)  # before any work: uint8 for a model trained on floats is refused
    inputs, where = check_inputs_for(trained)
    exported = export_model(trained, args.format, out, inputs, where, dtype)
    if args.json:
        print(strictjson.dumps({**asdict(exported), "path": str(exported.path)}, indent=2))
        return 0
    shape = "×".join(["N", *map(str, exported.input_shape)])
    kind = f"ONNX opset {exported.opset}" if exported.format == "onnx" else "TorchScript"
    runner = "onnxruntime" if exported.format == "onnx" else "torch.jit.load"
    print(
        f"exported {args.model} to {out}: {kind}, input '{exported.input_name}' {exported.input_dtype} {shape} -> "
        f"'probabilities' N×{exported.classes}; {runner} agrees with PyTorch within {exported.max_difference:.1e} "
        f"on {exported.checked_on}"
    )
    return 0

