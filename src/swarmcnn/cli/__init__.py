"""The `swarmcnn` command: one module per command (its options and what it prints), over the option helpers of
`options.py`; the work happens in the modules they call.

Bad input of any kind (spec, data, model directory) ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from swarmcnn.cli.options import Parser, duration
from swarmcnn.errors import SwarmCNNError, os_error_text
from swarmcnn.memory import allocation_failure

EXAMPLES = """examples:
  swarmcnn train digits --arch "conv32x3 bn relu maxpool2 fc64 relu" --epochs 10 --out models/digits
  swarmcnn evaluate models/digits digits --split test
  swarmcnn predict models/digits picture.png --top 3
  swarmcnn explain models/digits --data digits --samples 8 --out why/
  swarmcnn export models/digits --format onnx --out digits.onnx
"""

# command -> its module under swarmcnn.cli, each with add_parser(commands) and run(args); in the order of --help
COMMANDS = ("train", "evaluate", "predict", "explain", "search", "runs", "export", "check", "report")

__all__ = ["COMMANDS", "build_parser", "duration", "main"]


def _command(name: str):
    return importlib.import_module(f"swarmcnn.cli.{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="swarmcnn",
        description="Design, train and explain small convolutional neural networks for images, videos and signals.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from swarmcnn import __version__

    parser.add_argument("--version", action="version", version=f"swarmcnn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        _command(name).add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _set_threads(getattr(args, "threads", None))
        return _command(args.command).run(args)
    except SwarmCNNError as error:
        print(f"swarmcnn: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a folder that cannot be written, a disk that is full
        print(f"swarmcnn: error: {os_error_text(error)}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as error:  # an allocation the memory checks did not foresee
        failure = allocation_failure(error, f"running '{args.command}'")
        if failure is None:
            raise
        print(f"swarmcnn: error: {failure}", file=sys.stderr)
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
