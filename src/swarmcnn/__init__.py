"""swarmcnn: design, train and explain small convolutional neural networks by particle swarm search.

Public API (imported lazily, so that `swarmcnn --help` answers without loading torch):
    parse, Spec                      the architecture spec and its text grammar
    load_data, DataConfig, Dataset   data sources -> in-memory train/val/test splits
    TrainConfig, fit, evaluate       the training loop
    TrainedModel, load               model directories (model.json + weights.safetensors)
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "parse": "swarmcnn.spec",
    "Spec": "swarmcnn.spec",
    "load_data": "swarmcnn.data",
    "DataConfig": "swarmcnn.data",
    "Dataset": "swarmcnn.data",
    "TrainConfig": "swarmcnn.train",
    "fit": "swarmcnn.train",
    "evaluate": "swarmcnn.train",
    "TrainedModel": "swarmcnn.checkpoint",
    "load": "swarmcnn.checkpoint",
    "SwarmCNNError": "swarmcnn.errors",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'swarmcnn' has no attribute {name!r}")
