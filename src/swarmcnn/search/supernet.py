"""One set of weights shared by every network of the space: candidates scored without training each.

A child is any spec of convolutions, pooling, whitening, batch norm, activations, dropout and fully connected
layers. Its weights are slices of the supernet's banks (single-path one-shot weight sharing: Guo et al., "Single
path one-shot neural architecture search with uniform sampling", ECCV 2020; slicing channels and the centre of
larger kernels as Once-for-All does: Cai et al., ICLR 2020):
- the k-th convolution of a child (counted from the input) uses bank `conv{k}`: its first F features of its
  first C inputs, the centre K x K of its largest kernel;
- the batch norm after a weighted layer uses that layer's `.bn` bank, its first F channels;
- the j-th fully connected layer uses bank `fc{j}` (first N neurons of the first inputs), the classifier bank
  `classifier`; where the maps are flattened into the first of them (no global pool), the bank is keyed by
  the maps' positions too (`fc0@7x7`), since a weight there belongs to a channel at a place;
- whitening layers are computed from the data once (swarmcnn.whitening) and shared.

A child runs as the very module `build_model(spec)` builds, its parameters and buffers replaced by the slices
(`torch.func.functional_call`): the supernet's output for a child is that of the stand-alone network with the
inherited weights (`child`), by construction, and gradients flow into the banks. Batch norm statistics of a
child are recalibrated on a few training batches before it is scored (`recalibrate`), since the banks' running
statistics mix every child trained (Yu et al., "BigNAS", ECCV 2020).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call

from swarmcnn.errors import SwarmCNNError
from swarmcnn.model import build_model
from swarmcnn.spec import FC, BatchNorm, Conv, GlobalPool, Spec, Whiten
from swarmcnn.whitening import whitening_weights


@dataclass(frozen=True)
class Bounds:
    """The largest of each bank: the space's widest layer, largest kernel and most neurons."""

    features: int
    kernel: int
    neurons: int


@dataclass(frozen=True)
class _Slot:
    """Where one tensor of a child lives: bank name, and the slice (a tuple of slices) of it."""

    bank: str
    index: tuple[slice, ...]


class Supernet(nn.Module):
    """The banks of weights every child slices (see the module docstring). `forward(x, spec)` runs a child."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, bounds: Bounds, seed: int = 0) -> None:
        super().__init__()
        self.input_shape, self.num_classes, self.bounds = tuple(input_shape), num_classes, bounds
        self.dims = len(self.input_shape) - 1
        self.banks = nn.ParameterDict()
        self.stats = nn.ParameterDict()  # batch norm running statistics (not trained: requires_grad False)
        self.generator = torch.Generator().manual_seed(seed)
        self._modules_by_spec: dict[str, tuple[nn.Module, dict[str, _Slot]]] = {}
        self.new_banks: list[nn.Parameter] = []  # created since the last `take_new_banks`: for the optimizer

    # -- children -----------------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, spec: Spec) -> torch.Tensor:
        module, slots = self._child_module(spec)
        module.train(self.training)  # the cached structures are not submodules: train() does not reach them
        return functional_call(module, self._tensors(slots), (x,))

    def child(self, spec: Spec) -> nn.Sequential:
        """The stand-alone network of spec with the weights it inherits (copies): a final training starts here."""
        module = build_model(spec, self.input_shape, self.num_classes)
        _, slots = self._child_module(spec)
        with torch.no_grad():
            state = {name: tensor.detach().clone() for name, tensor in self._tensors(slots).items()}
        module.load_state_dict(state)
        return module

    @torch.no_grad()
    def recalibrate(self, spec: Spec, batches: Iterable[torch.Tensor]) -> None:
        """Batch norm statistics of spec's own, from normalised training batches: a cumulative average over
        them, as BigNAS recalibrates each child before it is measured."""
        module, slots = self._child_module(spec)
        tensors = self._tensors(slots)
        norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        for name, tensor in tensors.items():
            if name.endswith("running_mean") or name.endswith("num_batches_tracked"):
                tensor.zero_()
            elif name.endswith("running_var"):
                tensor.fill_(1)
        for norm in norms:
            norm.momentum = None  # a cumulative average of the batches
        module.train()
        try:
            for batch in batches:
                functional_call(module, tensors, (batch,))
        finally:
            for norm in norms:
                norm.momentum = 0.1
            module.eval()

    def save(self, path: Path) -> None:
        """Every bank to a safetensors file (no pickle: loading runs no code), written whole or not at all."""
        from safetensors.torch import save_file

        tensors = {f"{kind}.{name}": value.detach().contiguous() for kind, store in (("banks", self.banks),
                   ("stats", self.stats)) for name, value in store.items()}
        partial = path.with_name(path.name + ".partial")
        save_file(tensors, str(partial))
        partial.replace(path)

    def load(self, path: Path) -> None:
        """The banks of `save`, made again as they were (trainable or not); the supernet starts empty."""
        from safetensors.torch import load_file

        for key, value in load_file(str(path)).items():
            kind, name = key.split(".", 1)
            store = self.banks if kind == "banks" else self.stats
            store[name] = nn.Parameter(value, requires_grad=kind == "banks")

    def take_new_banks(self) -> list[nn.Parameter]:
        """The trainable banks created since the last call: an optimizer adds them as a parameter group."""
        new, self.new_banks = self.new_banks, []
        return [bank for bank in new if bank.requires_grad]

    # -- banks --------------------------------------------------------------------------------------------

    def fit_whitening(self, inputs: torch.Tensor, spec: Spec) -> None:
        """Compute the whitening bank of spec's stem from normalised training inputs, once per size: a whitening
        layer is shared only as a child's first layer, where every child sees the same inputs."""
        first = spec.layers[0] if spec.layers else None
        if isinstance(first, Whiten) and f"whiten{first.size}__weight" not in self.stats:
            weight = whitening_weights(inputs.double(), (first.size,) * self.dims).float()
            self._bank(f"whiten{first.size}.weight", tuple(weight.shape), trainable=False).copy_(weight)
            self._bank(f"whiten{first.size}.bias", (weight.shape[0],), trainable=False)

    def _child_module(self, spec: Spec) -> tuple[nn.Module, dict[str, _Slot]]:
        key = str(spec)
        if key not in self._modules_by_spec:
            with torch.device("meta"):
                module = build_model(spec, self.input_shape, self.num_classes)
            self._modules_by_spec[key] = (module, self._slots(spec, module))
            if len(self._modules_by_spec) > 4096:  # a long search: forget the oldest structures
                self._modules_by_spec.pop(next(iter(self._modules_by_spec)))
        return self._modules_by_spec[key]

    def _slots(self, spec: Spec, module: nn.Module) -> dict[str, _Slot]:
        """The bank slice of every parameter and buffer of the child, walking its layers with the module's."""
        built = [m for m in module if not isinstance(m, nn.Flatten)]
        layers = [*spec.layers, FC(self.num_classes)]  # the classifier closes every child
        shapes = [s for s in spec.shapes(self.input_shape)]
        channels, spatial = self.input_shape[0], tuple(self.input_shape[1:])
        slots: dict[str, _Slot] = {}
        convs = fcs = 0
        owner = "input"  # the bank of the last weighted layer: the batch norm after it belongs to it
        names = {id(m): name for name, m in module.named_children()}
        for position, (layer, child) in enumerate(zip(layers, built)):
            prefix = names[id(child)]
            last = position == len(layers) - 1
            if isinstance(layer, Conv):
                owner = f"conv{convs}"
                convs += 1
                slots.update(self._conv_slots(prefix, owner, child))
            elif isinstance(layer, Whiten):
                if position > 0:
                    raise SwarmCNNError(f"'{spec}': the supernet shares a whitening layer only as the first layer")
                owner = f"whiten{layer.size}"
                slots[f"{prefix}.weight"] = _Slot(f"{owner}.weight", _full(child.weight.shape))
                slots[f"{prefix}.bias"] = _Slot(f"{owner}.bias", _full(child.bias.shape))
            elif isinstance(layer, FC):
                owner = "classifier" if last else f"fc{fcs}"
                if fcs == 0 and spatial:  # flattened maps: the bank of this grid of positions
                    owner += "@" + "x".join(map(str, spatial))
                fcs += 0 if last else 1
                slots.update(self._fc_slots(prefix, owner, child, channels, spatial))
            elif isinstance(layer, BatchNorm):
                slots.update(self._norm_slots(prefix, f"{owner}.bn", child))
            if not last:
                shape = shapes[position]
                channels, spatial = shape.channels, tuple(shape.spatial)
                if isinstance(layer, GlobalPool):
                    spatial = ()  # one value per map: the head sees channels only
        return slots

    def _conv_slots(self, prefix: str, bank: str, conv: nn.Module) -> dict[str, _Slot]:
        out, inputs, *kernel = conv.weight.shape
        biggest = max(self.bounds.kernel, *kernel)
        widest = max(self.bounds.features, out)
        stem = 2 * self.input_shape[0] * 3**self.dims  # what a whitening stem of size up to 3 makes
        fan = max(self.bounds.features, inputs) if bank != "conv0" else max(stem, self.input_shape[0], inputs)
        self._bank(f"{bank}.weight", (widest, fan, *(biggest,) * self.dims), init=("conv", inputs))
        self._bank(f"{bank}.bias", (widest,), init=("zero",))
        offsets = tuple(slice((biggest - k) // 2, (biggest - k) // 2 + k) for k in kernel)
        return {
            f"{prefix}.weight": _Slot(f"{bank}.weight", (slice(0, out), slice(0, inputs), *offsets)),
            f"{prefix}.bias": _Slot(f"{bank}.bias", (slice(0, out),)),
        }

    def _fc_slots(self, prefix: str, bank: str, fc: nn.Module, channels: int, spatial: tuple) -> dict[str, _Slot]:
        out, inputs = fc.weight.shape
        positions = math.prod(spatial) if spatial else 1
        rows = max(self.num_classes if bank.startswith("classifier") else self.bounds.neurons, out)
        wide = max(self.bounds.features, self.bounds.neurons, channels)
        self._bank(f"{bank}.weight", (rows, wide, positions), init=("fc", inputs))
        self._bank(f"{bank}.bias", (rows,), init=("zero",))
        return {
            f"{prefix}.weight": _Slot(f"{bank}.weight", (slice(0, out), slice(0, inputs // positions), slice(None))),
            f"{prefix}.bias": _Slot(f"{bank}.bias", (slice(0, out),)),
        }

    def _norm_slots(self, prefix: str, bank: str, norm: nn.Module) -> dict[str, _Slot]:
        width = max(self.bounds.features, self.bounds.neurons, norm.num_features)
        index = (slice(0, norm.num_features),)
        self._bank(f"{bank}.weight", (width,), init=("one",))
        self._bank(f"{bank}.bias", (width,), init=("zero",))
        self._bank(f"{bank}.running_mean", (width,), init=("zero",), trainable=False)
        self._bank(f"{bank}.running_var", (width,), init=("one",), trainable=False)
        self._bank(f"{bank}.num_batches_tracked", (), init=("zero",), trainable=False, dtype=torch.long)
        return {
            f"{prefix}.weight": _Slot(f"{bank}.weight", index),
            f"{prefix}.bias": _Slot(f"{bank}.bias", index),
            f"{prefix}.running_mean": _Slot(f"{bank}.running_mean", index),
            f"{prefix}.running_var": _Slot(f"{bank}.running_var", index),
            f"{prefix}.num_batches_tracked": _Slot(f"{bank}.num_batches_tracked", ()),
        }

    def _bank(self, name: str, shape: tuple[int, ...], init: tuple = ("zero",), trainable: bool = True,
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The bank called name, made on first use (PyTorch's default initialisation for its fan-in)."""
        store = self.banks if trainable else self.stats
        key = name.replace(".", "__")
        if key in store:
            return store[key]
        value = torch.zeros(shape, dtype=dtype)
        if init[0] == "one":
            value.fill_(1)
        elif init[0] in ("conv", "fc"):
            # a child's fan-in varies; the bound of kaiming_uniform(a=sqrt(5)) for the bank's largest one would
            # start a narrow child far too small, so the bound is that of the fan-in of the child that made it
            fan_in = init[1] * (math.prod(shape[2:]) if init[0] == "conv" else 1)
            bound = 1 / math.sqrt(max(fan_in, 1))
            value.uniform_(-bound, bound, generator=self.generator)
        parameter = nn.Parameter(value, requires_grad=trainable and dtype.is_floating_point)
        store[key] = parameter
        self.new_banks.append(parameter)
        return parameter

    def _tensors(self, slots: dict[str, _Slot]) -> dict[str, torch.Tensor]:
        tensors = {}
        for name, slot in slots.items():
            key = slot.bank.replace(".", "__")
            bank = self.banks[key] if key in self.banks else self.stats[key]
            if any(s.stop is not None and s.stop > n for s, n in zip(slot.index, bank.shape)):
                raise SwarmCNNError(f"a child's layer needs more of bank '{slot.bank}' {tuple(bank.shape)} than it "
                                    f"holds ({slot.index}): the child is wider than the supernet's space")
            tensor = bank[slot.index]
            if slot.bank.endswith(".weight") and bank.dim() == 3 and not slot.bank.startswith(("conv", "whiten")):
                tensor = tensor.reshape(tensor.shape[0], -1)  # an fc bank: (neurons, channels, positions)
            tensors[name] = tensor
        return tensors


def _full(shape: torch.Size) -> tuple[slice, ...]:
    return tuple(slice(0, n) for n in shape)
