"""swarmcnn: design, train and explain small convolutional neural networks by particle swarm search.

Public API (imported lazily, so that `swarmcnn --help` answers without loading torch):
    parse, Spec                      the architecture spec and its text grammar
    load_data, DataConfig, Dataset   data sources -> in-memory train/val/test splits
    from_arrays                      pictures, clips or signals in memory (NumPy arrays) -> the same splits
    create_model                     a design name ('lenet5', 'vgg-small') or spec text -> a torch.nn.Module
    TrainConfig, fit, evaluate       the training loop
    train_model                      train a spec on a data set and package it as a TrainedModel
    TrainedModel, load               model directories (model.json + weights.safetensors)
    SwarmCNNClassifier               a scikit-learn classifier of pictures, clips and signals
    check                            is a CNN the right tool for a data set? (CheckResult)
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
    "from_arrays": "swarmcnn.data",
    "create_model": "swarmcnn.model",
    "train_model": "swarmcnn.package",
    "TrainConfig": "swarmcnn.train",
    "fit": "swarmcnn.train",
    "evaluate": "swarmcnn.train",
    "TrainedModel": "swarmcnn.checkpoint",
    "load": "swarmcnn.checkpoint",
    "SwarmCNNClassifier": "swarmcnn.estimator",
    "SwarmCNNError": "swarmcnn.errors",
    "check": "swarmcnn.locality",  # not a module named check: importing it would replace the function
    "CheckResult": "swarmcnn.locality",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'swarmcnn' has no attribute {name!r}")
