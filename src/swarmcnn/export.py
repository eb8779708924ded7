"""A trained model as one file that runs without swarmcnn: ONNX (onnxruntime, in any language) or TorchScript
(libtorch, C++ without Python).

The exported graph takes what swarmcnn stores and `swarmcnn predict` reads, stored pixel values in
channels-first layout, (N, C, H, W) for pictures and (N, C, T, H, W) for clips: uint8 0..255 for a model
trained on uint8 pictures (image files), float32 in the data's own units for one trained on floats (model.json's
`input_dtype`; uint8 would round them and is refused), and float32 in the same units on request; signals
(N, C, L) as float32 values, in an input named 'signals' rather than 'pixels'. The normalisation is folded in
(for signals with `--normalize series`, each series' standardisation too) and the output is class
probabilities (softmax), one column per class name; the batch axis is free. Every
export is run again from the written file (onnxruntime, torch.jit.load) on a few real inputs and compared with
PyTorch's own probabilities; a file that differs by more than TOLERANCE is never left behind.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from swarmcnn.checkpoint import TrainedModel
from swarmcnn.errors import SwarmCNNError, is_disk_full
from swarmcnn.inference import Normalization, standardized_series

FORMATS = ("onnx", "torchscript")
INPUT_DTYPES = ("uint8", "float32")
INPUT_NAME = "pixels"
SIGNAL_INPUT_NAME = "signals"  # the input of a model of signals (N, C, L)
LAYOUTS = {2: "NCL", 3: "NCHW", 4: "NCTHW"}  # by the dimensions of an input without its batch axis
OUTPUT_NAME = "probabilities"
TOLERANCE = 1e-4  # largest difference of a probability allowed between the exported file and PyTorch
CHECK_INPUTS = 32  # real (or random) inputs the exported file is checked on
TORCHSCRIPT_METADATA = "swarmcnn.json"  # the extra file of a TorchScript archive that holds the metadata
INSTALL_HINT = "pip install 'swarmcnn[onnx]'"


class Classifier(nn.Module):
    """The network with its normalisation in front and a softmax behind: stored pixel values in, class
    probabilities out, the same arithmetic as `TrainedModel.predict_proba` (a fused x * scale + shift in fp32)."""

    def __init__(self, module: nn.Module, normalization: Normalization, dims: int) -> None:
        super().__init__()
        self.module = module
        shift, scale = normalization.affine(dims)
        self.register_buffer("shift", shift.clone())
        self.register_buffer("scale", scale.clone())
        self.series = normalization.series  # fixed when traced: the graph holds the branch taken

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = standardized_series(x) if self.series else x.float()
        return torch.softmax(self.module(torch.addcmul(self.shift, values, self.scale)), dim=1)


@dataclass(frozen=True)
class Exported:
    """What was written, and how closely the file, run from disk, agreed with PyTorch."""

    path: Path
    format: str
    input_dtype: str
    input_shape: tuple[int, ...]  # without the batch axis
    classes: int
    checked_inputs: int
    checked_on: str  # where those inputs came from: "the test split of 'digits'" or "random inputs"
    max_difference: float
    opset: int | None = None  # ONNX only
    input_name: str = INPUT_NAME  # 'signals' for a model of signals


def check_format(format: str, input_dtype: str = "uint8") -> None:
    """Refuse an unknown format or input type, and an ONNX export without its packages, before any work."""
    if format not in FORMATS:
        raise SwarmCNNError(f"unknown export format '{format}'; choose one of {', '.join(FORMATS)}")
    if input_dtype not in INPUT_DTYPES:
        raise SwarmCNNError(f"unknown input type '{input_dtype}'; choose one of {', '.join(INPUT_DTYPES)}")
    if format == "onnx":
        _require_onnx()


def export_model(
    trained: TrainedModel,
    format: str,
    out: str | Path,
    inputs: torch.Tensor,
    checked_on: str = "the given inputs",
    input_dtype: str | None = None,
) -> Exported:
    """Write trained as one ONNX or TorchScript file at out, after checking it against PyTorch on inputs.

    The file is written under a temporary name beside out and renamed into place only once it agrees with
    PyTorch within TOLERANCE: a failed export (a full disk too) leaves out as it was. inputs: stored values
    (N, *input_shape), as the training saw them; input_dtype: the file's (default: `default_input_dtype`).
    """
    input_dtype = input_dtype or default_input_dtype(trained)
    check_format(format, input_dtype)
    if len(trained.input_shape) == 2 and input_dtype != "float32":
        raise SwarmCNNError(f"a model of signals takes float32 values, not {input_dtype} (that is for pictures)")
    check_input_dtype(trained, input_dtype)
    out = Path(out)
    trained.check_inputs(inputs)
    inputs = as_input_dtype(inputs, input_dtype)
    wrapper = Classifier(trained.module.cpu().eval(), trained.normalization, len(trained.input_shape) + 1).eval()
    metadata = describe(trained, input_dtype)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.{os.getpid()}.tmp"
    write, run = (_write_onnx, _run_onnx) if format == "onnx" else (_write_torchscript, _run_torchscript)
    try:
        opset = write(wrapper, inputs, metadata, staging)
        difference = _difference(trained, inputs, run(staging, inputs))
        if not difference <= TOLERANCE:
            raise SwarmCNNError(
                f"the exported {format} model differs from PyTorch by {difference:.3g} (more than {TOLERANCE:g}) "
                f"on {checked_on}; '{out}' was not written"
            )
        os.replace(staging, out)
    except Exception as error:
        if is_disk_full(error):
            raise SwarmCNNError(f"cannot write '{out}': no space left on device (the disk is full)") from None
        raise
    finally:
        staging.unlink(missing_ok=True)
    return Exported(
        out, format, input_dtype, tuple(trained.input_shape), len(trained.class_names), len(inputs), checked_on,
        difference, opset, input_name(trained.input_shape),
    )


def input_name(input_shape: tuple[int, ...]) -> str:
    """What the exported file calls its input: 'signals' for (C, L), 'pixels' for pictures and clips."""
    return SIGNAL_INPUT_NAME if len(input_shape) == 2 else INPUT_NAME


def default_input_dtype(trained: TrainedModel) -> str:
    """float32 for a model of signals, whose values are floats; otherwise the type of the stored inputs the model
    was trained on (model.json's input_dtype): uint8 pixel values, or float32 for float data."""
    return "float32" if len(trained.input_shape) == 2 else trained.input_dtype


def check_input_dtype(trained: TrainedModel, input_dtype: str) -> None:
    """Refuse a uint8 input for a model trained on floats: it would round every value the model knows (0..1, or
    beyond 255) to a whole number 0..255, and a self-check on inputs cast alike would agree all the same."""
    if input_dtype == "uint8" and trained.input_dtype != "uint8":
        raise SwarmCNNError(
            f"--input-dtype uint8: the model was trained on {trained.input_dtype} inputs (data "
            f"'{trained.data.get('source', '?')}'), which uint8 would round to whole numbers 0..255; export it with "
            f"--input-dtype {trained.input_dtype}, its default"
        )


def describe(trained: TrainedModel, input_dtype: str) -> dict[str, str]:
    """The metadata an exported file carries (ONNX metadata_props, a TorchScript extra file): texts, JSON inside."""
    from swarmcnn import __version__

    layout = LAYOUTS[len(trained.input_shape)]
    units = (
        "stored signal values as the data source holds them (float32); the normalisation is part of the graph"
        if layout == "NCL" else "stored pixel values, 0..255 for 8-bit pictures (as image files hold them); the "
        "normalisation is part of the graph" if trained.input_dtype == "uint8"
        else "the values of the float data it was trained on, in their own units (float32); the normalisation is "
        "part of the graph"
    )
    return {
        "class_names": json.dumps(list(trained.class_names)),
        "input_shape": json.dumps(list(trained.input_shape)),
        "input_layout": layout,
        "input_dtype": input_dtype,
        "input_units": units,
        "output": "class probabilities (softmax), one column per entry of class_names",
        "spec": str(trained.spec),
        "members": str(trained.members),  # trainings of spec whose probabilities the graph averages
        "normalization": json.dumps({"mean": list(trained.normalization.mean), "std": list(trained.normalization.std),
                                     "series": trained.normalization.series}),
        "swarmcnn_version": __version__,
    }


def as_input_dtype(x: torch.Tensor, input_dtype: str) -> torch.Tensor:
    """Stored inputs as the exported file takes them: float data rounded into 0..255 for a uint8 input."""
    if input_dtype == "float32":
        return x.float()
    return x if x.dtype == torch.uint8 else x.float().round().clamp(0, 255).to(torch.uint8)


def check_inputs_for(
    trained: TrainedModel, count: int = CHECK_INPUTS, seed: int = 0
) -> tuple[torch.Tensor, str]:
    """Inputs to check an export on: the first of the model's own data source where it can be read here (a few
    per class), else random inputs spread as the training data was (its mean and deviation per channel)."""
    from swarmcnn.data import DataConfig, load_data

    source = trained.data.get("source")
    settings = {k: v for k, v in trained.data.items() if k in DataConfig.__dataclass_fields__}
    if isinstance(source, str):  # anything that keeps it from being read here leaves random inputs
        with contextlib.suppress(SwarmCNNError, TypeError, ValueError, OSError, RuntimeError):
            config = replace(DataConfig(**settings), per_class=max(3, math.ceil(count / len(trained.class_names))))
            data = load_data(source, config)
            x = torch.cat([data.test.x, data.val.x, data.train.x])[:count]
            if tuple(data.input_shape) == tuple(trained.input_shape) and data.class_names == trained.class_names:
                return x, f"{len(x)} inputs of '{source}'"
    return _random_inputs(trained, count, seed), f"{count} random inputs"


def _random_inputs(trained: TrainedModel, count: int, seed: int) -> torch.Tensor:
    """Float inputs around the training data's mean, a deviation apart (rounded into 0..255 for a uint8 input)."""
    generator = torch.Generator().manual_seed(seed)
    broadcast = (1, -1) + (1,) * (len(trained.input_shape) - 1)
    mean = torch.tensor(trained.normalization.mean).view(broadcast)
    std = torch.tensor(trained.normalization.std).view(broadcast)
    return mean + std * torch.randn((count, *trained.input_shape), generator=generator)


def _difference(trained: TrainedModel, inputs: torch.Tensor, outputs: tuple[np.ndarray, np.ndarray]) -> float:
    """The largest difference between the file's probabilities (of the batch, and of its first input alone, which
    exercises the free batch axis) and PyTorch's; infinite where a shape disagrees or a value is not finite."""
    expected = trained.predict_proba(inputs).numpy()
    whole, alone = (np.asarray(o, dtype=np.float64) for o in outputs)
    if whole.shape != expected.shape or alone.shape != expected[:1].shape:
        return math.inf
    if not (np.isfinite(whole).all() and np.isfinite(alone).all()):
        return math.inf
    return float(max(np.abs(whole - expected).max(initial=0.0), np.abs(alone - expected[:1]).max(initial=0.0)))


# -- ONNX ------------------------------------------------------------------------------------------------


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise SwarmCNNError(
            f"exporting to ONNX needs onnx, onnxscript and onnxruntime ({error.name} is missing): {INSTALL_HINT}"
        ) from None


def _write_onnx(wrapper: Classifier, inputs: torch.Tensor, metadata: dict[str, str], path: Path) -> int:
    """The dynamo exporter (torch.export), with a free batch axis; the metadata in metadata_props.

    It exports every layer swarmcnn builds, 2-D and 3-D, so the legacy TorchScript-based exporter is used only
    by a PyTorch too old to have this one (before 2.5).
    """
    import onnx

    example = inputs[:2] if len(inputs) >= 2 else inputs.expand(2, *inputs.shape[1:])  # 1 would be specialised
    with _quiet():
        try:
            program = torch.onnx.export(
                wrapper,
                (example,),
                dynamo=True,
                input_names=[input_name(tuple(inputs.shape[1:]))],
                output_names=[OUTPUT_NAME],
                dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
                verbose=False,
            )
            proto = program.model_proto
        except TypeError as error:
            if "dynamo" not in str(error):
                raise
            proto = _legacy_onnx(wrapper, example, input_name(tuple(inputs.shape[1:])))
    onnx.helper.set_model_props(proto, metadata)
    proto.doc_string = f"swarmcnn {metadata['spec']}: {metadata['output']}"
    onnx.save(proto, str(path))
    return max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _legacy_onnx(wrapper: Classifier, example: torch.Tensor, name: str):
    import io

    import onnx

    buffer = io.BytesIO()
    torch.onnx.export(
        wrapper, (example,), buffer, input_names=[name], output_names=[OUTPUT_NAME],
        dynamic_axes={name: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
    )
    return onnx.load_from_string(buffer.getvalue())


def _run_onnx(path: Path, inputs: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The file's probabilities from onnxruntime: the whole batch, and its first input alone (the free batch axis)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x, name = inputs.numpy(), session.get_inputs()[0].name
    return _both(lambda batch: session.run([OUTPUT_NAME], {name: batch})[0], x)


# -- TorchScript -----------------------------------------------------------------------------------------


def _write_torchscript(wrapper: Classifier, inputs: torch.Tensor, metadata: dict[str, str], path: Path) -> None:
    """torch.jit.trace of the wrapper (every network here is a plain Sequential: tracing records it whole), the
    metadata as an extra file of the archive. PyTorch deprecates TorchScript for torch.export, but it is still
    what libtorch loads from C++; its warning is silenced here."""
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(wrapper, (inputs[:2],), check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={TORCHSCRIPT_METADATA: json.dumps(metadata)})


def _run_torchscript(path: Path, inputs: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    with _quiet(), torch.no_grad():
        loaded = torch.jit.load(str(path), map_location="cpu")
        return _both(lambda batch: loaded(torch.from_numpy(batch)).numpy(), inputs.numpy())


def torchscript_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of a TorchScript file written by export_model."""
    extra = {TORCHSCRIPT_METADATA: ""}
    with _quiet():
        torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return json.loads(extra[TORCHSCRIPT_METADATA])


# -- helpers ---------------------------------------------------------------------------------------------


def _both(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """run's outputs for the whole batch and for its first input alone."""
    return np.asarray(run(x)), np.asarray(run(x[:1]))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No warnings or log lines from the exporters (deprecations, torchvision operators it skips): the command's
    own line says what happened."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
