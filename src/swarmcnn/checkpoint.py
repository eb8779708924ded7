"""A model directory: model.json (everything needed to rebuild and use the model) + weights.safetensors.

Loading reads JSON and raw tensors only: no pickle, so opening a model someone sent you runs no code.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from swarmcnn.errors import CheckpointError, SwarmCNNError
from swarmcnn.spec import Spec
from swarmcnn.train import Normalization, predict_logits

FORMAT_VERSION = 1
MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"


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

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities for stored inputs of shape (N, *input_shape) (uint8 0..255 or float)."""
        self.check_inputs(x)
        return predict_logits(self.module, x, self.normalization).softmax(1)

    def check_inputs(self, x: torch.Tensor) -> None:
        """Refuse a batch whose inputs are not of the model's input shape, naming both shapes."""
        if tuple(x.shape[1:]) != tuple(self.input_shape):
            raise SwarmCNNError(f"inputs of shape {tuple(x.shape[1:])} do not match the model's {self.input_shape}")

    def save(self, directory: str | Path) -> Path:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE))
        (directory / MODEL_FILE).write_text(json.dumps(self._description(), indent=2) + "\n")
        return directory

    def _description(self) -> dict:
        from swarmcnn import __version__

        return {
            "format_version": FORMAT_VERSION,
            "spec": str(self.spec),
            "layers": self.spec.to_list(),
            "input_shape": list(self.input_shape),
            "class_names": list(self.class_names),
            "normalization": asdict(self.normalization),
            "parameters": self.spec.num_params(self.input_shape, len(self.class_names)),
            "flops": self.spec.flops(self.input_shape, len(self.class_names)),
            "metrics": self.metrics,
            "data": self.data,
            "training": self.training,
            "versions": {
                "swarmcnn": __version__,
                "torch": torch.__version__,
                "python": platform.python_version(),
            },
        }


def load(directory: str | Path, device: str = "cpu") -> TrainedModel:
    """Rebuild a saved model; on CPU it predicts exactly what the saved one did."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    description = _read_description(directory)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"model directory '{directory}' has no {WEIGHTS_FILE}")
    try:
        spec = Spec.from_list(description["layers"])
        input_shape = tuple(description["input_shape"])
        class_names = tuple(description["class_names"])
        normalization = Normalization(**{k: tuple(v) for k, v in description["normalization"].items()})
    except (KeyError, TypeError) as error:
        raise CheckpointError(f"'{directory / MODEL_FILE}' lacks or garbles field {error}") from None
    module = spec.build(input_shape, len(class_names))
    try:
        module.load_state_dict(load_file(str(weights), device=device))
    except (SafetensorError, RuntimeError, OSError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise CheckpointError(f"cannot load weights '{weights}': {first_line}") from None
    module.to(device).eval()
    return TrainedModel(
        module,
        spec,
        input_shape,
        class_names,
        normalization,
        metrics=description.get("metrics", {}),
        data=description.get("data", {}),
        training=description.get("training", {}),
    )


def _read_description(directory: Path) -> dict:
    path = directory / MODEL_FILE
    if not directory.is_dir():
        raise CheckpointError(f"model directory '{directory}' does not exist")
    if not path.is_file():
        raise CheckpointError(f"'{directory}' is not a model directory: it has no {MODEL_FILE}")
    try:
        description = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"'{path}' is not valid JSON: {error}") from None
    version = description.get("format_version") if isinstance(description, dict) else None
    if version != FORMAT_VERSION:
        raise CheckpointError(f"'{path}' has format version {version!r}; this swarmcnn reads {FORMAT_VERSION}")
    return description
