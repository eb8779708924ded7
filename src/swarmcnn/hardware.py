"""Where and how a network computes: the device, the arithmetic precision and the memory layout.

`--device auto` takes a CUDA GPU when there is one; `--precision auto` takes bfloat16 autocast on CPUs with
bf16 units (AVX512-BF16 or AMX) and float32 elsewhere (see `resolve_precision` for the GPU measurement).
Weights and optimizer state stay float32 either way (autocast computes convolutions and matrix products in
bf16 from fp32 weights), so a saved model is float32 and loads anywhere. Batches go channels-last (NHWC,
NDHWC), the layout oneDNN and cuDNN run fastest; benchmarks/README.md has the figures.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from swarmcnn.errors import SwarmCNNError, did_you_mean

PRECISIONS = ("auto", "fp32", "bf16")
DEVICE_KINDS = ("auto", "cpu", "cuda", "mps")
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs whose units compute bf16


@dataclass(frozen=True)
class Hardware:
    """A resolved device and precision, and the memory layout that goes with them."""

    device: torch.device
    precision: str  # "fp32" or "bf16"
    channels_last: bool = True

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context a forward pass runs in: bf16 autocast, or nothing."""
        if self.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def place(self, model: nn.Module, input_dims: int) -> nn.Module:
        """Move the model to the device, its convolution weights in the layout of `inputs`."""
        return model.to(self.device, memory_format=self.memory_format(input_dims))

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """A batch on the device in channels-last layout (NHWC / NDHWC): what oneDNN and cuDNN run fastest.

        Measured (benchmarks/train_throughput.py): 0.92-1.04x on a 2-core CPU and 1.01-1.10x on an H200 against
        the default layout, for the four benchmark nets: never slower outside the noise, so always on.
        """
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=self.memory_format(x.dim()))

    def memory_format(self, dims: int) -> torch.memory_format:
        """Channels-last for a batch of pictures (4 dims) or clips (5 dims) unless switched off."""
        if not self.channels_last:
            return torch.contiguous_format
        return {4: torch.channels_last, 5: torch.channels_last_3d}.get(dims, torch.contiguous_format)

    def holds(self, x: torch.Tensor) -> bool:
        """Whether a data set can live on the device for the whole training: on a GPU, when it takes at most a
        quarter of the free memory (the network, its activations and the optimizer need the rest)."""
        if self.device.type != "cuda":
            return True
        free, _ = torch.cuda.mem_get_info(self.device)
        return x.element_size() * x.nelement() <= free // 4

    def synchronize(self) -> None:
        """Wait for the device's queued work: a GPU runs behind the Python that launches it."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def describe(self) -> dict:
        return {"device": str(self.device), "precision": self.precision}


def resolve(device: str | None = "auto", precision: str | None = "auto") -> Hardware:
    """Check a --device and a --precision as the user gave them and decide what 'auto' means here."""
    where = resolve_device(device or "auto")
    return Hardware(where, resolve_precision(precision or "auto", where))


def resolve_device(name: str) -> torch.device:
    """`auto`, `cpu`, `cuda`, `cuda:N` or `mps`, refused with one line when this machine has no such device."""
    text = str(name).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind, _, index = text.partition(":")
    if kind not in DEVICE_KINDS or (index and not index.isdigit()) or (index and kind != "cuda"):
        raise SwarmCNNError(
            f"unknown device '{name}'; choose auto, cpu, cuda, cuda:N or mps{did_you_mean(kind, list(DEVICE_KINDS))}"
        )
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise SwarmCNNError(f"device '{name}': this machine has no CUDA GPU (this PyTorch: {torch.__version__})")
        if index and int(index) >= count:
            raise SwarmCNNError(f"device '{name}': there is no GPU {index}, this machine has {count} (cuda:0..)")
    if kind == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise SwarmCNNError(f"device '{name}': Apple's MPS is not available on this machine")
    return torch.device(text)


def resolve_precision(name: str, device: torch.device) -> str:
    """`fp32`, `bf16`, or `auto`: bf16 where it trains our networks faster, fp32 elsewhere.

    Measured (benchmarks/train_throughput.py, batch 64, the four benchmark nets): on a 2-core AVX512-BF16 CPU bf16
    autocast trains 1.1-1.7x as fast as fp32 at the same accuracy (benchmarks/train_recipe.py); on an H200 a
    plain loop trains them 0.79-0.89x as fast in bf16, because networks this small leave a GPU waiting on
    kernel launches and autocast adds cast kernels. So `auto` takes bf16 on CPUs with
    bf16 units only. bf16 asked for on a device without bf16 units still runs (autocast emulates it), slower.
    """
    text = str(name).strip().lower()
    if text not in PRECISIONS:
        hint = did_you_mean(text, list(PRECISIONS))
        raise SwarmCNNError(f"unknown precision '{name}'; choose {', '.join(PRECISIONS)}{hint}")
    if text != "auto":
        return text
    return "bf16" if device.type == "cpu" and fast_bf16(device) else "fp32"


def fast_bf16(device: torch.device, cpu_flags: frozenset[str] | None = None) -> bool:
    """Whether the device has bf16 arithmetic units (not emulation); cpu_flags: this CPU's unless given."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8
    if device.type == "cpu":
        flags = _cpu_flags() if cpu_flags is None else cpu_flags
        return any(flag in flags for flag in CPU_BF16_FLAGS)
    return False


@functools.cache
def _cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (Linux); none known elsewhere, so fp32 is chosen there."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()
