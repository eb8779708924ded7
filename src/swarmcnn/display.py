"""What the CLI shows a person: a rich progress bar for training and tables for results.

Progress goes to stderr so that `--json` output on stdout stays machine-readable.
"""

from __future__ import annotations

import math
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from swarmcnn.search.loop import SearchReporter
from swarmcnn.train import EpochStats, TrainReporter

stderr = Console(stderr=True)
stdout = Console()


class RichTrainReporter(TrainReporter):
    """Epoch bar with the last loss, validation accuracy and training images/s."""

    validates = True  # it shows the validation accuracy of every epoch

    def __init__(self, console: Console = stderr) -> None:
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  val acc {task.fields[val_acc]}  {task.fields[speed]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task = None

    def start(self, epochs: int, batches_per_epoch: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task(
            "train",
            total=epochs * batches_per_epoch,
            epoch=1,
            epochs=epochs,
            loss=float("nan"),
            val_acc="-",
            speed="",
        )
        self.batches = batches_per_epoch

    def batch(self, epoch: int, batch: int, loss: float) -> None:
        self.progress.update(self.task, completed=(epoch - 1) * self.batches + batch + 1, epoch=epoch, loss=loss)

    def epoch_end(self, stats: EpochStats) -> None:
        self.progress.update(
            self.task,
            completed=stats.epoch * self.batches,
            loss=stats.train_loss,
            val_acc=accuracy_text(stats.val_accuracy),
            speed=f"{stats.images_per_second:,.0f} img/s",
        )

    def stop(self) -> None:
        self.progress.stop()


def evaluation_tables(result: dict, title: str) -> list[Table]:
    """Per-class accuracy and the confusion matrix as rich tables."""
    names = result["class_names"]
    per_class = Table(title=f"{title}: accuracy {result['accuracy']:.4f} (loss {result['loss']:.4f})")
    per_class.add_column("class")
    per_class.add_column("accuracy", justify="right")
    per_class.add_column("images", justify="right")
    for name, row in zip(names, result["confusion_matrix"]):
        accuracy = result["per_class_accuracy"][name]
        per_class.add_row(name, "no images" if accuracy is None else f"{accuracy:.4f}", str(sum(row)))
    confusion = Table(title="confusion matrix (rows: true class, columns: predicted)")
    confusion.add_column("")
    for name in names:
        confusion.add_column(name, justify="right")
    for i, (name, row) in enumerate(zip(names, result["confusion_matrix"])):
        confusion.add_row(name, *(f"[bold]{v}[/]" if i == j else str(v) for j, v in enumerate(row)))
    return [per_class, confusion]


def accuracy_text(value: float | None) -> str:
    """An accuracy to four places, or '-' where there is none (a failed candidate, no validation split)."""
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


def check_table(result, source: str) -> Table:
    """`swarmcnn check`: each probe's test accuracy, mean ± std over the seeds, and its drop from the original."""
    table = Table(title=f"is a CNN the right tool for {source}? ({result.test_samples} test samples)")
    for column in ("network", "data", "test accuracy", "seeds", "drop"):
        table.add_column(column, justify="left" if column in ("network", "data") else "right")
    original = result.to_dict()["original"]["mean"]
    rows = [
        (f"CNN {result.cnn_spec}", "as it is", result.accuracy_original),
        ("the same CNN", "time steps shuffled" if result.signals else "pixel positions scrambled",
         result.accuracy_permuted),
        (f"fully connected {result.mlp_spec}", "as it is", result.accuracy_mlp),
    ]
    if result.accuracy_frames_shuffled is not None:
        rows.append(("the same CNN", "frames of each clip shuffled", result.accuracy_frames_shuffled))
    for network, data, runs in rows:
        mean = sum(runs) / len(runs)
        spread = (sum((r - mean) ** 2 for r in runs) / max(len(runs) - 1, 1)) ** 0.5
        drop = "" if data == "as it is" and network.startswith("CNN") else f"{100 * (original - mean):+.1f}"
        table.add_row(network, data, f"{100 * mean:.1f}% ± {100 * spread:.1f}", str(len(runs)), drop)
    table.caption = f"noise (2 standard errors of a paired drop): {100 * result.noise('permuted'):.1f} points"
    return table


def predictions_table(rows: list[dict]) -> Table:
    table = Table(title="predictions")
    table.add_column("file")
    table.add_column("class")
    table.add_column("probability", justify="right")
    for row in rows:
        for rank, guess in enumerate(row["top"]):
            name = row["file"] + (f"[{row['case']}]" if "case" in row else "")  # a case of a file of signals
            table.add_row(name if rank == 0 else "", guess["label"], f"{guess['probability']:.4f}")
    return table


def explanations_table(rows: list[dict], method: str) -> Table:
    table = Table(title=f"explanations ({method})")
    with_truth = any("true" in row for row in rows)  # inputs from --data know their class
    table.add_column("input")
    if with_truth:
        table.add_column("true")
    table.add_column("class")
    table.add_column("probability", justify="right")
    table.add_column("evidence for")
    table.add_column("strongest at")
    for row in rows:
        where = {1: "instant {}", 2: "row {}, column {}", 3: "frame {}, row {}, column {}"}[len(row["peak"])]
        true = [row.get("true", "")] if with_truth else []
        table.add_row(row["file"], *true, row["label"], f"{row['probability']:.4f}", row["target"],
                      where.format(*row["peak"]))
    return table


class RichSearchReporter(SearchReporter):
    """A live panel: generation, evaluations, best validation accuracy and its spec, speed, time left."""

    def __init__(self, console: Console = stderr) -> None:
        self.console = console
        self.live = None

    def start(self, config, done: int) -> None:
        from rich.live import Live

        self.config, self.started, self.done_at_start = config, time.perf_counter(), done
        self.live = Live(self._panel(done, 0, None, None), console=self.console, refresh_per_second=4)
        self.live.start()

    def evaluated(self, record, best, done: int, generation: int, seconds_left) -> None:
        self.live.update(self._panel(done, generation, best, seconds_left, record))

    def _panel(self, done, generation, best, seconds_left, last=None):
        from rich.panel import Panel

        minutes = (time.perf_counter() - self.started) / 60
        rate = (done - self.done_at_start) / minutes if minutes > 0 else 0.0
        total = self.config.evaluations
        grid = Table.grid(padding=(0, 2))
        grid.add_row("generation", str(generation))
        grid.add_row("evaluations", f"{done}" + (f" / {total}" if total else "") + f"  ({rate:.1f}/min)")
        if seconds_left is not None:
            grid.add_row("time left", f"{max(0, seconds_left):.0f}s (before the final training)")
        if best is not None:
            grid.add_row("best val accuracy", f"[bold]{best.val_accuracy:.4f}[/]  ({best.params:,} parameters)")
            grid.add_row("best spec", best.spec)
        if last is not None:
            grid.add_row("last", f"{last.status} {last.val_accuracy or 0:.4f} in {last.seconds:.1f}s: {last.spec}")
        return Panel(grid, title=f"swarmcnn search: {self.config.strategy} on {self.config.source}")

    def promoted(self, record, epochs: int) -> None:
        accuracy = accuracy_text(record.val_accuracy)
        self.console.print(
            f"rung {record.rung}: {record.spec}: {record.status}, val accuracy {accuracy} after "
            f"{record.images:,} images ({epochs} epochs)"
        )

    def final_training(self, spec: str, epochs: int, seconds: float | None, members: int = 1):
        within = "" if seconds is None else f" within {seconds:.0f}s"
        trainings = f"{epochs} epochs" if members == 1 else f"{members} trainings of {epochs} epochs, averaged,"
        self.console.print(f"final training of [bold]{spec}[/] for {trainings} on train+val{within}")
        return RichTrainReporter(self.console)

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def run_tables(summary: dict) -> list[Table]:
    """The leaderboard, the promoted finalists and the Pareto front of a run."""
    tables = []
    titles = {
        "leaderboard": "leaderboard (validation)",
        "promotions": "promoted: the best of each rung trained again on 3x the images (validation)",
        "pareto_front": "Pareto front: accuracy vs size",
    }
    for key, title in titles.items():
        if not summary[key]:
            continue
        table = Table(title=title)
        for column in ("#", "rung", "val accuracy", "parameters", "seconds", "spec"):
            table.add_column(column, justify="right" if column != "spec" else "left")
        for i, row in enumerate(summary[key], start=1):
            table.add_row(
                str(i),
                str(row["rung"]),
                accuracy_text(row["val_accuracy"]),
                f"{row['params']:,}",
                f"{row['seconds']:.1f}",
                row["spec"],
            )
        tables.append(table)
    return tables
