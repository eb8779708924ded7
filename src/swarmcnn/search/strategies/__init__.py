"""Search strategies by name: one module each, one registry, so that the CLI, the benchmark and the tests
never list them twice (as timm has `list_models()`)."""

from __future__ import annotations

from swarmcnn.errors import SwarmCNNError, did_you_mean
from swarmcnn.search.strategies.base import WORST, Candidate, Strategy

_MODULES = {
    "pso": "swarmcnn.search.strategies.pso",
    "psocnn": "swarmcnn.search.strategies.psocnn",
    "random": "swarmcnn.search.strategies.random",
    "tpe": "swarmcnn.search.strategies.tpe",  # needs the tpe extra (Optuna)
}

__all__ = ["WORST", "Candidate", "Strategy", "get_strategy", "list_strategies"]


def list_strategies() -> list[str]:
    return list(_MODULES)


def get_strategy(name: str) -> type[Strategy]:
    import importlib

    if name not in _MODULES:
        raise SwarmCNNError(
            f"unknown strategy '{name}'; choose one of {', '.join(_MODULES)}" + did_you_mean(name, list(_MODULES))
        )
    module = importlib.import_module(_MODULES[name])
    return next(
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, Strategy) and getattr(v, "name", None) == name
    )
