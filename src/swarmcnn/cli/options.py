"""What the commands share: argparse types that check a value where it enters, option groups, and the
checks of an --out before any work."""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from dataclasses import fields, replace
from pathlib import Path
from typing import NoReturn

from swarmcnn.errors import SwarmCNNError

ARCH_HELP = (
    "the architecture, e.g. 'conv6x5 relu maxpool2 conv16x5 relu maxpool2 fc120 relu fc84 relu': "
    "conv<N>x<K>[s<S>] (N features of size KxK), maxpool<W>[s<S>], avgpool<W>[s<S>], relu, bn, "
    "dropout<P>, fc<N> (N neurons); the classifier layer is added for you"
)


def image_size(text: str) -> tuple[int, int]:
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


def whole(minimum: int):
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


def number(low: float, high: float = math.inf, low_included: bool = True, high_included: bool = False):
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


def at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def duration(text: str) -> float:
    """'90s', '10m', '1h30m' or plain seconds -> seconds."""

    match = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?", text.strip().lower())
    if not text.strip() or not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"budget '{text}' must look like 90s, 10m or 1h30m")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad option in one line, as every other bad input is reported."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument(
        "--image-size",
        type=image_size,
        metavar="HxW",
        help="resize every image to this size, e.g. 28 or 32x32 (default: keep; sizes must agree)",
    )
    group.add_argument("--val-fraction", type=number(0, 1), help="share held out for validation (0.15)")
    group.add_argument(
        "--test-fraction",
        type=number(0, 1),
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
    group.add_argument(
        "--length",
        type=whole(1),
        metavar="N",
        help="signals: bring every series to N instants by linear interpolation (default: the longest series)",
    )
    group.add_argument(
        "--normalize",
        choices=("channel", "series"),
        help="signals: 'channel' (default) scales each channel by the training split's mean and deviation; "
        "'series' first brings each series to mean 0 and deviation 1 on its own (the UCR baselines' "
        "z-normalisation), for every input, at predict and in exported files too",
    )


def add_model_size_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--image-size",
        type=image_size,
        metavar="HxW",
        help="resize images to this size (default: the model's input size)",
    )


PER_CORE = 4  # threads or worker processes beyond this many per usable core are a typo (100000 crash PyTorch)


def per_core(what: str):
    """An argparse type: a count of `what` (threads, workers) from 1 to PER_CORE times the cores this process may
    use (its affinity: a container's or taskset's share)."""
    from swarmcnn.cores import available_cores  # a light import: no torch

    def parse(text: str) -> int:
        value, usable = whole(1)(text), available_cores()
        if value > PER_CORE * usable:
            raise argparse.ArgumentTypeError(
                f"{value} {what} is more than {PER_CORE} per core this process may use ({usable} "
                f"core{'s' if usable != 1 else ''}: at most {PER_CORE * usable})"
            )
        return value

    return parse


thread_count = per_core("threads")


def add_threads_option(parser: argparse.ArgumentParser, default: str = "PyTorch's choice") -> None:
    parser.add_argument("--threads", type=thread_count, help=f"CPU threads for PyTorch (default: {default})")


FREE_CORES = "the cores other processes leave free"


def add_runtime_options(parser: argparse.ArgumentParser, threads: str = "PyTorch's choice") -> None:
    add_threads_option(parser, threads)
    parser.add_argument("--device", help="auto (default: a CUDA GPU where there is one, else cpu), cpu, cuda, cuda:N")
    parser.add_argument(
        "--precision",
        help="auto (default: bf16 autocast where the device computes it fast, else fp32), fp32 or bf16",
    )


def given(args: argparse.Namespace, config_type) -> dict:
    """The options the user set, so that the defaults live in one place: the config dataclass."""
    names = {f.name for f in fields(config_type)}
    return {name: value for name, value in vars(args).items() if name in names and value is not None}


def folder_path(path: str) -> Path:
    """An --out that is a folder or can become one."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise SwarmCNNError(f"--out '{out}' exists and is not a folder")
    return out


def output_dir(path: str, force: bool = False, reads: dict | None = None) -> Path:
    """An --out a model can be written to, checked before any work: not inside what the command reads, not a
    folder of other files, not a model unless `force` (nor one that a killed save left beside it, which the next
    save puts back), and in a folder that can be written."""
    from swarmcnn.checkpoint import MODEL_FILE, WEIGHTS_FILE, restorable

    out = folder_path(path)
    refuse_inside(out, reads or {})
    names = {p.name for p in out.iterdir()} if out.is_dir() else set()
    if names - {MODEL_FILE, WEIGHTS_FILE}:
        raise SwarmCNNError(f"--out '{out}' is a folder with other files in it; choose a new or empty folder")
    if names and not force:
        raise SwarmCNNError(f"--out '{out}' already holds a model; pass --force to replace it, or choose a new folder")
    left = None if names else restorable(out)
    if left is not None and not force:
        raise SwarmCNNError(
            f"--out '{out}' holds a model: a save of it was killed between its two renames and left it in '{left}', "
            "which the next save puts back; pass --force to replace it, or choose a new folder"
        )
    check_writable(out)
    return out


def refuse_inside(out: Path, reads: dict) -> None:
    """Refuse an --out that is, or is inside, what the command reads (reads: what -> path; None skipped): it
    would overwrite its own input, or add files to it (a run's journal, a model's weights, a class folder)."""
    target = Path(os.path.realpath(out))
    for what, path in reads.items():
        if path is None:
            continue
        source = Path(os.path.realpath(path))
        if target == source or source in target.parents:
            raise SwarmCNNError(f"--out '{out}' is inside {what} '{path}' that it reads; choose a path outside it")


def data_path(source: str) -> str | None:
    """The file or folder a data source reads, None for a built-in set (a folder of its name is not read)."""
    from swarmcnn.data import BUILTIN

    return None if source in BUILTIN or not Path(source).expanduser().exists() else str(Path(source).expanduser())


def check_writable(out: Path) -> None:
    """The model is written beside --out and then renamed into place: the folder that holds --out, or its first
    existing ancestor, must be a folder this process can write."""
    folder = Path(os.path.abspath(out)).parent
    while not folder.exists() and not folder.is_symlink():
        folder = folder.parent
    if not folder.is_dir():
        raise SwarmCNNError(f"--out '{out}' cannot be created: '{folder}' is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SwarmCNNError(f"--out '{out}' cannot be written: no permission to write in '{folder}'")


def output_file(path: str, force: bool, reads: dict | None = None, example: str = "model.onnx") -> Path:
    """An --out file a command may write, checked before any work, alike for every command: not inside what it
    reads (reads: what -> path), not a folder, an existing file replaced only with `force`, in a writable folder."""
    out = Path(path)
    refuse_inside(out, reads or {})
    if out.is_dir():
        raise SwarmCNNError(f"--out '{out}' is a folder; give a file name such as {example}")
    if (out.exists() or out.is_symlink()) and not force:
        raise SwarmCNNError(f"--out '{out}' already exists; pass --force to replace it, or choose a new name")
    check_writable(out)
    return out


def refuse_existing(paths: list[Path], force: bool) -> None:
    """Files a command would write into an --out folder: one that exists already is replaced only with `force`."""
    existing = next((path for path in paths if path.exists() or path.is_symlink()), None)
    if existing is not None and not force:
        raise SwarmCNNError(f"'{existing}' already exists; pass --force to replace it, or choose another --out")


def load_data_for(trained, source: str, image_size: tuple[int, int] | None, model_dir: str | None = None):
    """The data source split as at training time, at the model's input size; a warning where it is not the data
    the model was trained on (its fingerprint, in model.json or the journal of the run model_dir is the best of)."""
    from swarmcnn.data import DataConfig, load_data

    settings = {k: v for k, v in trained.data.items() if k in DataConfig.__dataclass_fields__}
    try:  # what model.json stored, checked as the user's own options would be
        config = DataConfig(**settings)
    except (SwarmCNNError, TypeError, ValueError, ArithmeticError) as error:
        raise SwarmCNNError(f"the data settings stored with the model (field 'data' of model.json): {error}") from None
    if image_size is not None:
        config = replace(config, image_size=image_size)
    if len(trained.input_shape) == 2:  # signals of any length are brought to the model's, as at training time
        config = replace(config, length=trained.input_shape[-1])
    data = load_data(source, config)
    if tuple(data.input_shape) != tuple(trained.input_shape):
        hint = (f"pass --image-size {trained.input_shape[-2]}x{trained.input_shape[-1]}" if len(data.input_shape) > 2
                else "a model of signals takes the channels it was trained on")
        raise SwarmCNNError(
            f"data '{source}' gives inputs {'×'.join(map(str, data.input_shape))} but the model expects "
            f"{'×'.join(map(str, trained.input_shape))}; {hint}"
        )
    if tuple(data.class_names) != tuple(trained.class_names):
        raise SwarmCNNError(
            f"data '{source}' has classes {list(data.class_names)} but the model was trained on "
            f"{list(trained.class_names)}"
        )
    recorded = recorded_fingerprint(trained, model_dir)
    if recorded is not None and recorded != data.fingerprint:
        print(
            f"swarmcnn: warning: data '{source}' is not the data the model was trained on (its images, labels or "
            "splits have changed since): its splits may hold what the model learned from",
            file=sys.stderr,
        )
    return data


def recorded_fingerprint(trained, model_dir: str | None = None) -> str | None:
    """The fingerprint of the data a model was trained on: model.json's, or for RUN/best of a search written
    before models recorded it, the run journal's; None where neither is known."""
    value = trained.data.get("fingerprint")
    if isinstance(value, str):
        return value
    if model_dir is None or Path(model_dir).name != "best":
        return None
    from swarmcnn.search.journal import JOURNAL_FILE, Journal

    run = Path(model_dir).parent
    if not (run / JOURNAL_FILE).is_file():
        return None
    try:
        journal = Journal.open(run)
    except SwarmCNNError:
        return None
    try:
        return journal.get("data_fingerprint")
    except SwarmCNNError:
        return None
    finally:
        journal.close()


def not_learning_text(epoch: int, chance: float | None = None) -> str:
    """The one line that tells a user the network learned nothing, with the remedies."""
    level = "" if chance is None else f" ({chance:.3f})"
    return (
        f"the training loss stayed at the chance level{level} up to epoch {epoch}: the network is not learning; "
        "try a lower --lr (a third of it, say) or 'bn' after each convolution"
    )

