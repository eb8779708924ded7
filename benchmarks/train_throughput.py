"""Training images/s of swarmcnn's `fit` against a plain hand-written PyTorch loop, in every precision and layout.

What is measured, for three image networks (LeNet-5 style, a wider conv net with batch norm, and the search's
`vgg-small` design; 28x28 input: mnist-5k when present) and one video network (the 3-D CNN of the video
acceptance check, on built-in moving-digits: clips of 8 frames of 16x16; "images/s" then counts clips):

- plain fp32 / fp32+cl / bf16 / bf16+cl: what a competent PyTorch user writes: the training split
  pre-normalised to float once and kept on the device, `torch.randperm` per epoch, index slices, forward,
  `F.cross_entropy`, `zero_grad(set_to_none=True)`, backward, AdamW step (PyTorch's default implementation);
  bf16: `torch.autocast` around forward and loss (fp32 weights); +cl: channels-last model and batches.
- fit fp32 / fit bf16: `fit(...)` as users call it (no early stopping, no reporter) in that precision, with the
  layout swarmcnn chooses, timed wall-clock around the whole call: per-batch normalisation from uint8, the
  one-cycle schedule, label smoothing, loss/accuracy bookkeeping and one validation pass at the end included;
  ", train pass" rows: the images/s `fit` itself records (`EpochStats.images_per_second`).

Every side gets the same network (built from one spec by `build_seeded` with one seed), the same data, batch
size and thread count. Each side is warmed up with one short epoch, then the sides run in turn (A B C ...
A B C ...) `--repeats` times and the median is reported, so machine noise hits all alike. Achieved GFLOP/s
counts training as 3 x the forward FLOPs of `Spec.flops` per image and is set against a float32 `torch.mm`
measured on the same threads (on a GPU, convolutions run in TF32 and can pass that figure).

    python benchmarks/train_throughput.py [--epochs 2] [--repeats 3] [--threads N] [--device cpu|cuda]
        [--networks lenet5 ...] [--images DIR] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from swarmcnn import cores
from swarmcnn.cores import available_cores
from swarmcnn.data import DataConfig, Dataset, Split, load_data
from swarmcnn.designs import DESIGNS
from swarmcnn.hardware import Hardware, resolve
from swarmcnn.spec import Spec, parse
from swarmcnn.train import Normalization, TrainConfig, build_seeded, default_lr, fit

# real digits when present, beside the project as in a checkout of this workplace (never copied into it)
MNIST = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "mnist-5k"
NETWORKS = {  # name: (spec, data: "images" or "video")
    "lenet5": ("conv6x5 relu maxpool2 conv16x5 relu maxpool2 fc120 relu fc84 relu", "images"),
    "wide": (
        "conv32x3 bn relu conv32x3 bn relu maxpool2 conv64x3 bn relu conv64x3 bn relu maxpool2 fc256 relu",
        "images",
    ),
    "video3d": ("conv16x3 relu maxpool2 conv32x3 relu maxpool2 fc64 relu", "video"),
    "vgg-small": (DESIGNS["vgg-small"], "images"),
}
SEED = 0
BATCH_SIZE = 64  # both sides, fixed: throughput depends on it
WARMUP_IMAGES = 512  # the "one short epoch" each side runs before timing
QUICK_TRAIN, QUICK_VAL = 256, 128


@dataclass(frozen=True)
class Run:
    """One timed training run of one side."""

    seconds: float  # wall clock of the whole run
    images: int  # training images processed (epochs x training split)
    val_accuracy: float
    train_seconds: float | None = None  # fit's own timing of its training passes (swarmcnn only)

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds

    @property
    def train_images_per_second(self) -> float | None:
        return None if self.train_seconds is None else self.images / self.train_seconds


def load(kind: str, quick: bool, images: Path = MNIST) -> tuple[Dataset, str]:
    """Images: the MNIST subset when present, else the built-in shapes at 28x28. Video: built-in moving-digits.

    --quick keeps a few hundred samples.
    """
    if kind == "video":
        data, label = load_data("moving-digits"), "moving-digits (built-in, 8 frames of 16x16)"
    elif images.is_dir():
        data, label = load_data(str(images)), f"{images.name} ({images})"
    else:
        data, label = load_data("shapes", DataConfig(image_size=(28, 28))), "shapes (built-in, 28x28; mnist-5k absent)"
    if quick:
        data = head(data, QUICK_TRAIN, QUICK_VAL)
    return data, f"{label}: {len(data.train)} train / {len(data.val)} val samples, {len(data.class_names)} classes"


def head(data: Dataset, train: int, val: int) -> Dataset:
    """The first images of each split: for the warm-up epoch and --quick (the splits are already shuffled)."""
    return replace(
        data,
        train=Split(data.train.x[:train], data.train.y[:train]),
        val=Split(data.val.x[:val], data.val.y[:val]),
    )


def matmul_peak(seconds: float, n: int = 2048) -> float:
    """Sustained float32 GFLOP/s of a large torch.mm on the current threads: the machine's practical ceiling."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up: thread pool, caches
    calls, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        torch.mm(a, b)
        calls += 1
    return 2 * n**3 * calls / elapsed / 1e9


def train_plain(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, config: TrainConfig, hardware: Hardware
) -> None:
    """The hand-written reference loop; x is already float, normalised and on the device.

    In bf16 it does what the PyTorch recipe says: autocast around the forward pass and the loss, fp32 weights.
    """
    lr = config.lr or default_lr(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator).to(x.device)
        for start in range(0, len(y), config.batch_size):
            index = order[start : start + config.batch_size]
            with hardware.autocast():
                batch = x[index].contiguous(memory_format=hardware.memory_format(x.dim()))
                loss = F.cross_entropy(model(batch), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    hardware.synchronize()


@torch.inference_mode()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Validation accuracy of the plain loop's model, measured after the clock stops."""
    model.eval()
    return (model(x).argmax(1) == y).float().mean().item()


def time_plain(spec: Spec, data: Dataset, normalization: Normalization, config: TrainConfig, hardware) -> Run:
    model = build_seeded(spec, data.input_shape, len(data.class_names), SEED)
    hardware.place(model, data.train.x.dim())
    # pre-normalised once and on the device, as a user would at load time
    x, y = normalization(data.train.x).to(hardware.device), data.train.y.to(hardware.device)
    started = time.perf_counter()
    train_plain(model, x, y, config.epochs, config, hardware)
    seconds = time.perf_counter() - started
    val_x, val_y = normalization(data.val.x).to(hardware.device), data.val.y.to(hardware.device)
    return Run(seconds, config.epochs * len(y), accuracy(model.float(), val_x, val_y))


def time_fit(spec: Spec, data: Dataset, normalization: Normalization, config: TrainConfig, hardware) -> Run:
    model = build_seeded(spec, data.input_shape, len(data.class_names), SEED)
    started = time.perf_counter()
    result = fit(model, data, normalization, config, reporter=None)
    hardware.synchronize()
    seconds = time.perf_counter() - started
    if result.status != "completed":
        raise RuntimeError(f"fit did not run all epochs: {result.status} ({result.reason})")
    n = len(data.train)
    train_seconds = sum(n / stats.images_per_second for stats in result.epochs)
    return Run(seconds, len(result.epochs) * n, result.epochs[-1].val_accuracy, train_seconds)


def sides(device: torch.device) -> dict[str, tuple]:
    """Each timed side: (loop, hardware). The plain loop in every precision and layout; fit in fp32 and bf16,
    with the layout swarmcnn.hardware chooses, and with what --precision auto picks on this device."""
    out = {}
    for precision in ("fp32", "bf16"):
        for channels_last in (False, True):
            hardware = Hardware(device, precision, channels_last)
            out[same_plain(hardware)] = ("plain", hardware)
    for precision in ("fp32", "bf16"):
        out[f"fit {precision}"] = ("fit", resolve(str(device), precision))
    return out


def same_plain(hardware: Hardware) -> str:
    """The plain side that computes as `hardware` does: fit's baseline of equal precision and layout."""
    return f"plain {hardware.precision}{'+cl' if hardware.channels_last else ''}"


def benchmark(name: str, text: str, data: Dataset, data_label: str, args: argparse.Namespace) -> dict:
    """Warm up every side on a short epoch, then run them in turn `repeats` times (A B C ... A B C ...)."""
    spec = parse(text)
    normalization = Normalization.of(data.train.x)
    device = torch.device(args.device)
    config = TrainConfig(epochs=args.epochs, batch_size=BATCH_SIZE, patience=None, seed=SEED, device=args.device)
    timers = {"plain": time_plain, "fit": time_fit}
    runs: dict[str, list[Run]] = {}
    warmup_data = head(data, WARMUP_IMAGES, WARMUP_IMAGES)
    for loop, hardware in sides(device).values():
        warmup_config = replace(config, epochs=1, precision=hardware.precision)
        timers[loop](spec, warmup_data, normalization, warmup_config, hardware)
    for _ in range(args.repeats):
        for side, (loop, hardware) in sides(device).items():
            side_config = replace(config, precision=hardware.precision)
            runs.setdefault(side, []).append(timers[loop](spec, data, normalization, side_config, hardware))
    train_gflop = 3 * spec.flops(data.input_shape, len(data.class_names)) / 1e9
    rates = {side: [r.images_per_second for r in side_runs] for side, side_runs in runs.items()}
    rates.update({f"{side}, train pass": [r.train_images_per_second for r in side_runs]
                  for side, side_runs in runs.items() if side.startswith("fit")})
    baselines = {side: same_plain(hw) for side, (loop, hw) in sides(device).items() if loop == "fit"}
    return {
        "network": name,
        "spec": text,
        "data": data_label,
        "train_gflop_per_image": train_gflop,
        "images_per_second": {side: statistics.median(values) for side, values in rates.items()},
        "images_per_second_runs": rates,
        "val_accuracy": {side: side_runs[-1].val_accuracy for side, side_runs in runs.items()},
        "fit_baseline": baselines,
        "auto_precision": resolve(args.device, "auto").precision,
    }


def summarise(result: dict, peak: float) -> None:
    """Ratios against the plain fp32 loop and against the plain loop of the same precision; GFLOP/s."""
    rates = result["images_per_second"]
    result["ratio_to_plain_fp32"] = {side: rate / rates["plain fp32"] for side, rate in rates.items()}
    result["ratio_to_same_plain"] = {
        side: rate / rates[result["fit_baseline"][side.split(",")[0]]]
        for side, rate in rates.items() if side.startswith("fit")
    }
    result["gflops"] = {side: rate * result["train_gflop_per_image"] for side, rate in rates.items()}
    result["fraction_of_peak"] = {side: value / peak for side, value in result["gflops"].items()}


LEGEND = (
    "plain: hand-written PyTorch loop on pre-normalised floats kept on the device (bf16: autocast around forward "
    "and loss; +cl: channels-last layout). fit: wall clock around swarmcnn's fit in that precision, with the layout "
    "swarmcnn chooses (its validation pass at the end included); ', train pass': the images/s fit records for its "
    "training passes alone. x fp32: against the plain fp32 loop; x same: fit against the plain loop of its own "
    "precision and layout. *: what --precision auto picks here. spread: (max - min) / median over the runs. "
    "val acc: after the last epoch."
)


def spread(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values)


def print_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped into a file or a README: do not wrap at 80 columns
        console.width = 130
    settings = report["settings"]
    for label in dict.fromkeys(result["data"] for result in report["results"]):
        console.print(f"data: {label}")
    console.print(
        f"torch {report['torch']} on {report['machine']}; device {settings['device']}, {settings['threads']} threads, "
        f"batch {settings['batch_size']}, {settings['epochs']} epochs, "
        f"median of {settings['repeats']} runs per side, in turn"
    )
    console.print(f"float32 matmul peak: {report['matmul_peak_gflops']:.1f} GFLOP/s (torch.mm 2048x2048)")
    if (share := report["other_processes_cpu_share"]) is not None:
        console.print(f"CPU used by other processes during the run: {100 * share:.0f}% of the machine's cores")
    table = Table("network", "loop", "samples/s", "spread", "x fp32", "x same", "GFLOP/s", "% of peak", "val acc")
    for result in report["results"]:
        for i, side in enumerate(result["images_per_second"]):
            accuracy = result["val_accuracy"].get(side)
            same = result.get("ratio_to_same_plain", {}).get(side)
            label = side + (" *" if side == f"fit {result['auto_precision']}" else "")
            table.add_row(
                result["network"] if i == 0 else "",
                label,
                f"{result['images_per_second'][side]:.0f}",
                f"{100 * spread(result['images_per_second_runs'][side]):.1f}%",
                f"{result['ratio_to_plain_fp32'][side]:.2f}",
                f"{same:.2f}" if same is not None else "",
                f"{result['gflops'][side]:.1f}",
                f"{100 * result['fraction_of_peak'][side]:.1f}",
                f"{accuracy:.3f}" if accuracy is not None else "",
            )
        table.add_section()
    console.print(table)
    console.print(LEGEND)


def other_share(before: cores.CpuSample) -> float | None:
    """Share of this process's cores that other processes used while it ran: the noise every figure carries."""
    load = cores.other_load(before)
    return None if load is None else load / available_cores()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2, help="training epochs per timed run (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs per side; the median is reported")
    parser.add_argument("--threads", type=int, default=available_cores(), help="torch threads (default: all cores)")
    parser.add_argument("--images", type=Path, default=MNIST, help="image data (default: mnist-5k beside the project)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N")
    parser.add_argument("--networks", nargs="+", choices=list(NETWORKS), help="a part of the networks (default: all)")
    parser.add_argument("--quick", action="store_true", help="a tiny run of a few seconds, for smoke-testing")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()
    if args.epochs < 1 or args.repeats < 1 or args.threads < 1:
        parser.error("--epochs, --repeats and --threads must be at least 1")
    if args.quick:
        args.epochs, args.repeats = 1, 1
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)  # a benchmark process: the thread count is its one global setting
    data = {kind: load(kind, args.quick, args.images) for kind in dict.fromkeys(kind for _, kind in NETWORKS.values())}
    before = cores.sample()
    peak = matmul_peak(seconds=0.2 if args.quick else 1.0)
    chosen = {name: NETWORKS[name] for name in args.networks or NETWORKS}
    results = [benchmark(name, text, *data[kind], args) for name, (text, kind) in chosen.items()]
    for result in results:
        summarise(result, peak)
    report = {
        "benchmark": "train_throughput",
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {available_cores()} CPU cores",
        "settings": {
            "device": args.device, "threads": args.threads, "batch_size": BATCH_SIZE, "epochs": args.epochs,
            "repeats": args.repeats,
        },
        "matmul_peak_gflops": peak,
        "other_processes_cpu_share": other_share(before),
        "results": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
