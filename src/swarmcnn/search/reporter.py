"""What a search tells whoever watches it (the CLI's live display): the loop itself never prints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from swarmcnn.search.journal import EvaluationRecord
from swarmcnn.train import TrainReporter

if TYPE_CHECKING:
    from swarmcnn.search.config import SearchConfig


@dataclass(frozen=True)
class SearchSummary:
    best_spec: str
    best_val_accuracy: float
    test_accuracy: float
    evaluations: int
    seconds: float
    model_dir: str


class SearchReporter:
    """Receives progress; the CLI's live display subclasses it. The loop itself never prints."""

    def start(self, config: SearchConfig, done: int) -> None: ...

    def evaluated(
        self,
        record: EvaluationRecord,
        best: EvaluationRecord | None,
        done: int,
        generation: int,
        seconds_left: float | None,
    ) -> None: ...

    def promoted(self, record: EvaluationRecord, epochs: int) -> None: ...

    def final_training(self, spec: str, epochs: int, seconds: float | None, members: int = 1) -> TrainReporter | None:
        ...

    def stop(self) -> None: ...
