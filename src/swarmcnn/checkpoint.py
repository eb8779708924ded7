"""A model directory: model.json (everything needed to rebuild and use the model) + weights.safetensors.

Loading reads JSON and raw tensors only: no pickle, so opening a model someone sent you runs no code.
"""

from __future__ import annotations

import errno
import json
import math
import os
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from swarmcnn import strictjson
from swarmcnn.atomic import replace_folder, restorable
from swarmcnn.ensemble import MAX_MEMBERS, combine, members_of
from swarmcnn.errors import CheckpointError, SpecError, SwarmCNNError, is_disk_full
from swarmcnn.hardware import Hardware
from swarmcnn.inference import Normalization, as_inputs, predict_logits
from swarmcnn.memory import allocating
from swarmcnn.spec import Spec

FORMAT_VERSION = 1
MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"
MAX_DESCRIPTION_BYTES = 16 * 2**20  # a model.json is a few kB: a larger file is not one, and is not read
MAX_INPUT_VALUES = 2**28  # values per input (1 GiB in float32), far beyond any network swarmcnn trains
# what the stored inputs of the training data were: uint8 pixel values, or floats (an .npz of floats, 16-bit data)
INPUT_DTYPES = ("uint8", "float32")


@dataclass
class TrainedModel:
    """A built network with what it needs to classify raw inputs: spec, input shape, class names, normalisation."""

    module: nn.Module
    spec: Spec
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...]
    normalization: Normalization
    metrics: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)  # the data source and split settings it was trained with
    training: dict = field(default_factory=dict)
    input_dtype: str = "uint8"  # of the stored inputs it was trained on (INPUT_DTYPES): an export takes the same

    def predict_proba(self, x, hardware: Hardware | None = None) -> torch.Tensor:
        """Class probabilities for stored inputs of shape (N, *input_shape) (uint8 0..255 or float): a tensor, or a
        NumPy array (or anything np.asarray takes).

        hardware: where and in what precision (swarmcnn.hardware.resolve); None: fp32 where the module is.
        """
        x = as_inputs(x)
        self.check_inputs(x)
        if hardware is not None:
            self.module.to(hardware.device)
        with allocating("predicting", hardware and hardware.device):
            return predict_logits(self.module, x, self.normalization, hardware=hardware).softmax(1).cpu()

    @property
    def members(self) -> int:
        """The trainings whose probabilities the model averages (swarmcnn.ensemble); 1 for a single network."""
        return len(members_of(self.module))

    def check_inputs(self, x: torch.Tensor) -> None:
        """Refuse a batch whose inputs are not of the model's input shape, naming both shapes."""
        if tuple(x.shape[1:]) != tuple(self.input_shape):
            raise SwarmCNNError(f"inputs of shape {tuple(x.shape[1:])} do not match the model's {self.input_shape}")


    def save(self, directory: str | Path, write: Callable[[Path, dict, str], None] | None = None) -> Path:
        """Write the model directory; a model already there is replaced whole, or, should anything fail (a full
        disk: one line that says so), kept. write: writes the files into a folder (`write_model_files`; a seam)."""
        description = strictjson.dumps(self._description(), indent=2) + "\n"
        state = {k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}
        replace_folder(Path(directory), lambda folder: (write or write_model_files)(folder, state, description))
        return Path(directory)

    def to_bytes(self) -> tuple[str, bytes]:
        """model.json's text and weights.safetensors' bytes, for what keeps a model in memory (a pickled
        scikit-learn estimator); `from_bytes` rebuilds it. No pickle of tensors or modules: loading runs no code."""
        from safetensors.torch import save

        state = {k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}
        return strictjson.dumps(self._description(), indent=2) + "\n", save(state)

    def _description(self) -> dict:
        from swarmcnn import __version__

        return {
            "format_version": FORMAT_VERSION,
            "spec": str(self.spec),
            "layers": self.spec.to_list(),
            "input_shape": list(self.input_shape),
            "input_dtype": self.input_dtype,
            "class_names": list(self.class_names),
            "normalization": asdict(self.normalization),
            "members": self.members,
            "parameters": self.members * self.spec.num_params(self.input_shape, len(self.class_names)),
            "flops": self.members * self.spec.flops(self.input_shape, len(self.class_names)),
            "metrics": self.metrics,
            "data": self.data,
            "training": self.training,
            "versions": {
                "swarmcnn": __version__,
                "torch": torch.__version__,
                "python": platform.python_version(),
            },
        }


def write_model_files(folder: Path, state: dict, description: str) -> None:
    """weights.safetensors and model.json in folder; a full disk is an OSError(ENOSPC) naming the file, whichever
    library noticed it (safetensors says so in its own error's message)."""
    from safetensors.torch import save_file

    weights = folder / WEIGHTS_FILE
    try:
        save_file(state, str(weights))
    except Exception as error:
        if is_disk_full(error) and not isinstance(error, OSError):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(weights)) from None
        raise
    (folder / MODEL_FILE).write_text(description)


def load(directory: str | Path, device: str = "cpu") -> TrainedModel:
    """Rebuild a saved model; on CPU it predicts exactly what the saved one did.

    Every field of model.json is checked before it decides anything, and the weights' shapes are compared with
    the network model.json describes before any tensor is allocated: a damaged or hostile model directory ends
    in a CheckpointError naming the directory and the field, never in a crash or a huge allocation.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    directory = Path(directory)
    if not directory.exists() and restorable(directory) is not None:
        directory = restorable(directory)  # the previous model, whole: a save killed between its renames left it
    description = _read_description(directory)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"model directory '{directory}' has no {WEIGHTS_FILE}")

    def shapes() -> dict[str, tuple[int, ...]]:
        with safe_open(str(weights), framework="pt") as stored:
            return {name: tuple(stored.get_slice(name).get_shape()) for name in stored.keys()}

    stored = _Stored(f"weights '{weights}'", shapes, lambda: load_file(str(weights), device=str(device)))
    return _rebuild(f"model directory '{directory}'", description, stored, device)


def from_bytes(description: str, weights: bytes, origin: str = "model from bytes", device: str = "cpu") -> TrainedModel:
    """Rebuild a model from `TrainedModel.to_bytes`, checked as `load` checks a model directory.

    For what holds models in memory (a pickled scikit-learn estimator): JSON and safetensors, never pickle.
    """
    from safetensors.torch import load as load_weights

    try:
        values = json.loads(description)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, TypeError) as error:
        raise CheckpointError(f"{origin}: its description is not valid JSON: {error}") from None
    if not isinstance(values, dict) or values.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{origin}: its description is not a model description of format {FORMAT_VERSION}")
    tensors: dict = {}

    def shapes() -> dict[str, tuple[int, ...]]:  # the bytes are in memory already: reading them allocates no more
        tensors.update(load_weights(bytes(weights)))
        return {name: tuple(tensor.shape) for name, tensor in tensors.items()}

    stored = _Stored(f"the weights of {origin}", shapes, lambda: {k: v.to(device) for k, v in tensors.items()})
    return _rebuild(origin, values, stored, device)


@dataclass(frozen=True)
class _Stored:
    """Weights where they are kept: their names and shapes, read first, then the tensors."""

    name: str  # for messages: "weights 'm/weights.safetensors'"
    shapes: Callable[[], dict[str, tuple[int, ...]]]
    tensors: Callable[[], dict[str, torch.Tensor]]


def _rebuild(origin: str, description: dict, stored: _Stored, device: str) -> TrainedModel:
    """The model a checked description and its weights make (origin: how messages name where they come from)."""
    spec = _checked_spec(origin, description)
    class_names = _checked_class_names(origin, description)
    input_shape = _checked_input_shape(origin, description, spec)
    normalization = _checked_normalization(origin, description, input_shape[0])
    others = {key: _checked_object(origin, description, key) for key in ("metrics", "data", "training")}
    input_dtype = _checked_input_dtype(origin, description)
    members = _checked_members(origin, description)
    module = _load_module(origin, stored, spec, input_shape, len(class_names), device, members)
    _check_spec_text(origin, description, spec)
    return TrainedModel(module, spec, input_shape, class_names, normalization, **others, input_dtype=input_dtype)


def _read_description(directory: Path) -> dict:
    path = directory / MODEL_FILE
    if not directory.is_dir():
        raise CheckpointError(f"model directory '{directory}' does not exist")
    if not path.is_file():
        raise CheckpointError(f"'{directory}' is not a model directory: it has no {MODEL_FILE}")
    if path.stat().st_size > MAX_DESCRIPTION_BYTES:
        raise CheckpointError(f"'{path}' is {path.stat().st_size:,} bytes: too large to be a model description")
    try:
        description = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise CheckpointError(f"'{path}' is not valid JSON: {error}") from None
    if not isinstance(description, dict):
        raise CheckpointError(f"'{path}' holds a JSON {type(description).__name__}, not a model description")
    version = description.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"'{path}' has format version {version!r}; this swarmcnn reads {FORMAT_VERSION}")
    return description


def _bad(origin: str, key: str, problem: str) -> CheckpointError:
    return CheckpointError(f"{origin}: field '{key}' of {MODEL_FILE} {problem}")


def _field(origin: str, description: dict, key: str, label: str | None = None):
    if key not in description:
        raise _bad(origin, label or key, "is missing")
    return description[key]


def _checked_spec(origin: str, description: dict) -> Spec:
    """The network, from 'layers' (what the weights were saved for)."""
    layers = _field(origin, description, "layers")
    try:
        return Spec.from_list(layers)
    except SpecError as error:
        raise _bad(origin, "layers", f"is not a valid architecture: {error}") from None
    except (TypeError, ValueError, KeyError, ArithmeticError):  # values of a type no layer takes
        raise _bad(origin, "layers", f"is not a valid architecture: {layers!r:.120}") from None


def _check_spec_text(origin: str, description: dict, spec: Spec) -> None:
    """The readable 'spec' beside 'layers', where present, must say the same: an edit of it would change nothing."""
    text = description.get("spec")
    if text is None:
        return
    if not isinstance(text, str):
        raise _bad(origin, "spec", f"must be a text such as 'conv8x3 relu fc32', got {text!r:.80}")
    try:
        parsed = Spec.parse(text)
    except SpecError as error:
        raise _bad(origin, "spec", f"is not a valid architecture: {error}") from None
    if parsed != spec:
        raise _bad(origin, "spec", f"'{text}' does not match field 'layers' ('{spec}')")


def _checked_class_names(origin: str, description: dict) -> tuple[str, ...]:
    names = _field(origin, description, "class_names")
    if not isinstance(names, list) or len(names) < 2 or not all(isinstance(name, str) for name in names):
        raise _bad(origin, "class_names", f"must be a list of at least 2 class names (texts), got {names!r:.80}")
    if len(set(names)) != len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise _bad(origin, "class_names", f"names class '{twice}' twice")
    return tuple(names)


def _checked_input_shape(origin: str, description: dict, spec: Spec) -> tuple[int, ...]:
    shape = _field(origin, description, "input_shape")
    if not (
        isinstance(shape, list)
        and len(shape) in (2, 3, 4)
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape)
    ):
        raise _bad(
            origin,
            "input_shape",
            "must be [channels, instants], [channels, height, width] or [channels, frames, height, width], whole "
            f"numbers >= 1, got {shape!r:.80}",
        )
    values = math.prod(shape)
    if values > MAX_INPUT_VALUES:
        raise _bad(
            origin,
            "input_shape",
            f"{'×'.join(map(str, shape))} is {values:,} values per input, more than the {MAX_INPUT_VALUES:,} "
            "any model of swarmcnn takes",
        )
    try:
        spec.shapes(tuple(shape))
    except SpecError as error:
        raise _bad(origin, "input_shape", f"{shape} does not fit the network: {error}") from None
    return tuple(shape)


def _checked_normalization(origin: str, description: dict, channels: int) -> Normalization:
    """Mean and std per input channel, finite, std positive: anything else makes every prediction NaN."""
    normalization = _field(origin, description, "normalization")
    if not isinstance(normalization, dict):
        raise _bad(origin, "normalization", f"must be an object with 'mean' and 'std', got {normalization!r:.80}")
    values = {}
    for key in ("mean", "std"):
        where = f"normalization.{key}"
        numbers = _field(origin, normalization, key, where)
        if not isinstance(numbers, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers
        ):
            raise _bad(origin, where, f"must be a list of numbers, one per channel, got {numbers!r:.80}")
        if len(numbers) != channels:
            raise _bad(origin, where, f"has {len(numbers)} values but input_shape has {channels} channel(s)")
        if not all(math.isfinite(v) for v in numbers):
            raise _bad(origin, where, f"must be finite numbers, got {numbers}")
        values[key] = tuple(float(v) for v in numbers)
    if min(values["std"]) <= 0:
        raise _bad(origin, "normalization.std", f"must be positive, got {list(values['std'])}")
    series = normalization.get("series", False)  # absent in models saved before signals: per channel only
    if not isinstance(series, bool):
        raise _bad(origin, "normalization.series", f"must be true or false, got {series!r:.80}")
    if series and len(description["input_shape"]) != 2:  # checked before this
        raise _bad(origin, "normalization.series", "is true, but only models of signals (C, L) standardise series")
    return Normalization(values["mean"], values["std"], series)


def _checked_input_dtype(origin: str, description: dict) -> str:
    """The stored inputs' type at training time; a model.json written before it was recorded took uint8."""
    dtype = description.get("input_dtype", "uint8")
    if dtype not in INPUT_DTYPES:
        raise _bad(origin, "input_dtype", f"must be one of {', '.join(INPUT_DTYPES)}, got {dtype!r:.80}")
    return dtype


def _checked_members(origin: str, description: dict) -> int:
    """The trainings the model averages: 1 where model.json does not say (a model of one network)."""
    members = description.get("members", 1)
    if isinstance(members, bool) or not isinstance(members, int) or not 1 <= members <= MAX_MEMBERS:
        raise _bad(origin, "members", f"must be a whole number from 1 to {MAX_MEMBERS}, got {members!r:.80}")
    return members


def _checked_object(origin: str, description: dict, key: str) -> dict:
    value = description.get(key, {})
    if not isinstance(value, dict):
        raise _bad(origin, key, f"must be a JSON object, got {value!r:.80}")
    return value


def _load_module(
    origin: str, stored: _Stored, spec: Spec, input_shape: tuple[int, ...], classes: int, device: str,
    members: int = 1,
) -> nn.Module:
    """The network with the stored weights, once their names and shapes agree with the description.

    The weights' shapes are read first (from a file's header), the network's count of parameters computed from the
    description, and the network then built on PyTorch's meta device (shapes, no memory): a description that
    disagrees with the weights (an edited input_shape, one class more) is refused before anything is allocated.
    """
    from safetensors import SafetensorError

    from swarmcnn.model import build_model

    weights = stored.name
    try:
        found = stored.shapes()
        needed = members * spec.num_params(input_shape, classes)
        held = sum(math.prod(shape) for shape in found.values())
        if needed > held:
            raise CheckpointError(
                f"cannot load {weights}: layers, members, input_shape and class_names of {MODEL_FILE} make "
                f"{needed:,} parameters, the weights hold {held:,} values"
            )
        with torch.device("meta"):
            module = combine([build_model(spec, input_shape, classes) for _ in range(members)])
        expected = {name: tuple(tensor.shape) for name, tensor in module.state_dict().items()}
        if found != expected:
            raise CheckpointError(
                f"cannot load {weights}: they do not match {MODEL_FILE}: {_difference(expected, found)}"
            )
        tensors = stored.tensors()
    except SpecError as error:  # the network it describes is too large for this machine's memory
        raise _bad(origin, "layers", f"describe a network that cannot be built here: {error}") from None
    except (SafetensorError, OSError, RuntimeError, ValueError, TypeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"cannot load {weights}: {first_line[:200]}") from None
    broken = next((n for n, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()), None)
    if broken is not None:
        raise CheckpointError(f"{weights} hold values that are not finite (NaN or infinity) in '{broken}'")
    module = module.to_empty(device=device)
    module.load_state_dict(tensors)
    return module.eval()


def _difference(expected: dict, found: dict) -> str:
    """The first disagreement between the tensors the description implies and those stored."""
    missing = [name for name in expected if name not in found]
    if missing:
        return f"tensor '{missing[0]}' is missing"
    extra = [name for name in found if name not in expected]
    if extra:
        return f"tensor '{extra[0]}' is not part of the network"
    name = next(name for name in expected if expected[name] != found[name])
    return (
        f"tensor '{name}' has shape {list(found[name])} where layers, input_shape and class_names imply "
        f"{list(expected[name])}"
    )
