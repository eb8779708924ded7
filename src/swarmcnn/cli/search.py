"""`swarmcnn search`: the architecture search, started or resumed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from swarmcnn.cli.options import (
    FREE_CORES,
    add_data_options,
    add_runtime_options,
    data_path,
    duration,
    given,
    not_learning_text,
    per_core,
    refuse_inside,
)
from swarmcnn.errors import SwarmCNNError


def add_parser(commands) -> None:
    search = commands.add_parser(
        "search",
        help="find the architecture by particle swarm search, then train the best and test it",
        description="Search the space of CNN architectures: each candidate is trained briefly and scored on the "
        "validation split; the best is trained longer on train+val, tested once on the test split and saved in "
        "RUN_DIR/best. Everything is journaled in RUN_DIR/journal.sqlite; a killed search continues with --resume.",
        epilog="examples:\n  swarmcnn search digits --strategy pso --evaluations 40 --out runs/digits\n"
        "  swarmcnn search ../mnist --budget 10m --workers 2 --out runs/mnist\n  swarmcnn search --resume runs/mnist",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    search.add_argument("data", nargs="?", help="the data source (as for train); not with --resume")
    search.add_argument("--resume", metavar="RUN_DIR", help="continue a search that was stopped or killed")
    search.add_argument("--out", metavar="RUN_DIR", help="run directory to create")
    search.add_argument("--strategy", help="pso (default, ours), psocnn (the published method) or random")
    limits = search.add_mutually_exclusive_group()
    limits.add_argument(
        "--budget",
        type=duration,
        metavar="T",
        help="wall-clock limit for search and final training, e.g. 90s, 10m, 1h30m",
    )
    limits.add_argument("--evaluations", type=int, metavar="N", help="number of candidates to train (default 40)")
    search.add_argument("--workers", type=per_core("workers"), help="candidates trained side by side in local "
                        "processes (1)")
    cluster = search.add_argument_group("a Ray cluster (pip install 'swarmcnn[ray]'; also with --resume)")
    cluster.add_argument("--executor", choices=("local", "ray"), help="where candidates train: local (default) or ray")
    cluster.add_argument("--address", help="the Ray cluster to join, e.g. ray://head:10001 or auto (default: start "
                         "a local one on this machine's cores)")
    cluster.add_argument("--cpus-per-trial", type=float, help="CPUs of each candidate's Ray task (1)")
    cluster.add_argument("--gpus-per-trial", type=float, help="GPUs of each candidate's Ray task, "
                         "a fraction packs several on one GPU (0)")
    search.add_argument("--seed", type=int, help="seed of the strategy and of every training (0)")
    search.add_argument("--space", metavar="FILE.toml", help="search space ranges (keys as in swarmcnn.search.space; "
                        "default: its defaults, for signals with feature sizes that suit their length)")
    search.add_argument("--candidate-epochs", type=int, help="training epochs per candidate at the first rung (2)")
    search.add_argument(
        "--train-fraction",
        type=float,
        help="share of the training split per candidate at the first rung (1.0; with --budget at most this, "
        "less where the data is large for the budget)",
    )
    search.add_argument(
        "--final-epochs",
        type=int,
        help="training epochs of the best spec at the end (default: with --budget as many as the time left holds, "
        "else 30)",
    )
    search.add_argument(
        "--rungs",
        type=int,
        metavar="R",
        help="promotion rungs (2): the best third of each rung trains again on 3x the images, up to rung R; the "
        "final spec is the best of the highest rung (0: the best after the first short training)",
    )
    search.add_argument(
        "--fitness",
        choices=("auto", "supernet", "training"),
        help="what scores the swarm's proposals: supernet (a weight-sharing supernet scores hundreds in a fraction "
        "of a second each; the designs and the best then train at equal time), or training (each trains briefly); "
        "auto (default): supernet with --budget, training with --evaluations",
    )
    search.add_argument(
        "--no-designs",
        dest="designs",
        action="store_false",
        default=None,
        help="do not start from the hand-designed networks (LeNet-5 and a VGG-style net)",
    )
    search.add_argument(
        "--augment",
        action="store_true",
        default=None,
        help="random shifts of up to 1/8 of the picture in the final training",
    )
    search.add_argument(
        "--flip",
        action="store_true",
        default=None,
        help="random horizontal flips in the final training (not for digits)",
    )
    search.add_argument(
        "--objective",
        choices=("accuracy", "accuracy-params"),
        help="accuracy, or accuracy minus 0.01 per decade of parameters (accuracy)",
    )
    search.add_argument("--max-params", type=int, help="larger candidates are not trained (2000000)")
    search.add_argument(
        "--candidate-seconds",
        type=float,
        help="time limit per candidate at the first rung, three times more per rung above; a slower candidate's "
        "schedule is compressed into it (default: none; with --budget, four times a typical candidate's time)",
    )
    search.add_argument("--quiet", action="store_true", help="no live display")
    add_data_options(search)
    add_runtime_options(search, f"{FREE_CORES} with --budget, else PyTorch's choice")


def run(args: argparse.Namespace) -> int:
    from swarmcnn.data import DataConfig, load_data
    from swarmcnn.display import RichSearchReporter, stdout
    from swarmcnn.search.evaluate import EvaluationConfig
    from swarmcnn.search.loop import Search, SearchConfig
    from swarmcnn.search.space import SearchSpace

    reporter = None if args.quiet else RichSearchReporter()
    if args.resume:
        settings = [
            "DATA" if k == "data" else f"--{k.replace('_', '-')}"
            for k, v in vars(args).items()
            if k not in ("resume", "quiet", "threads", "command", *RUNTIME) and v is not None and v is not False
        ]
        if settings:
            raise SwarmCNNError(f"--resume continues with the run's own settings; drop {', '.join(settings)}")
        search = Search.resume(args.resume, reporter, threads=args.threads, executor=_executor_factory(args))
    else:
        if not args.data or not args.out:
            raise SwarmCNNError("search needs DATA and --out RUN_DIR (or --resume RUN_DIR)")
        evaluation = {
            "epochs": args.candidate_epochs,
            "train_fraction": args.train_fraction,
            "objective": args.objective,
            "max_params": args.max_params,
            "max_seconds": args.candidate_seconds,
            "seed": args.seed,
            "device": args.device,
            "precision": args.precision,
        }
        config = SearchConfig(
            source=args.data,
            **{
                k: v
                for k in ("strategy", "evaluations", "workers", "seed", "final_epochs", "rungs", "designs", "augment",
                          "flip", "fitness")
                if (v := getattr(args, k)) is not None
            },
            budget_seconds=args.budget,
            space=SearchSpace.from_toml(args.space) if args.space else None,  # None: the data's default (Search.start)
            evaluation=EvaluationConfig(**{k: v for k, v in evaluation.items() if v is not None}),
            data=DataConfig(**given(args, DataConfig)),
        )
        refuse_inside(Path(args.out), {"the data source": data_path(args.data)})  # its folder would be a class
        check_rungs(config)
        executor = _executor_factory(args)
        data = load_data(config.source, config.data)  # loaded once, handed to the search
        search = Search.start(args.out, config, reporter, threads=args.threads, executor=executor, data=data)
    try:
        check_rungs(search.config)  # a resumed run's, as its journal holds them
        summary = search.run()
        final = search.journal.get("final")
    finally:
        search.journal.close()  # its write-ahead log goes back into journal.sqlite: the run is one file again
    _check_final_model(search, summary)
    if final.get("final_retries"):
        print(f"swarmcnn: warning: the final training diverged {final['final_retries']} time(s) and was trained "
              "again (in fp32 after bf16, else at a quarter of its learning rate)", file=sys.stderr)
    if final.get("final_not_learning"):
        print(f"swarmcnn: warning: {not_learning_text(final['final_not_learning'])}", file=sys.stderr)
    if final.get("time_bound") and not args.quiet:
        stdout.print(
            "the best design was still learning at the budget's end, so its final training got the time a search "
            "would have taken (a longer --budget leaves time to search)"
        )
    if not args.quiet:
        from swarmcnn.search.provenance import describe

        test = "-" if summary.test_accuracy is None else f"{summary.test_accuracy:.4f}"
        found = f"; {describe(final['provenance'])}" if final.get("provenance") else ""
        stdout.print(
            f"best spec [bold]{summary.best_spec}[/]{found}: val accuracy {summary.best_val_accuracy:.4f}, "
            f"test accuracy {test} after {summary.evaluations} evaluations; model in {summary.model_dir}"
        )
    return 0


# A promotion rung trains its candidates on ETA times the images of the rung below: the top rung of --rungs R on
# ETA**R times rung 0's. Beyond this many epochs of the whole training split a rung ranks nothing a final training
# (about 40 epochs) would not, and --rungs 50 would never end.
MAX_TOP_RUNG_EPOCHS = 200


def check_rungs(config) -> None:
    """Refuse a number of rungs whose top rung would train each candidate on more than MAX_TOP_RUNG_EPOCHS epochs
    of the training split (rung 0's epochs times its share of the split, times ETA per rung)."""
    from swarmcnn.search.ladder import ETA

    base = config.evaluation.epochs * config.evaluation.train_fraction
    if base * ETA ** config.rungs <= MAX_TOP_RUNG_EPOCHS:
        return
    most = max((r for r in range(config.rungs) if base * ETA**r <= MAX_TOP_RUNG_EPOCHS), default=0)
    raise SwarmCNNError(
        f"--rungs {config.rungs}: the top rung would train each of its candidates for {base * ETA ** config.rungs:.3g} "
        f"epochs of the training split ({ETA}x more per rung), more than the {MAX_TOP_RUNG_EPOCHS} any ranking "
        f"needs; with these candidate epochs and train fraction use at most --rungs {most}"
    )


def _check_final_model(search, summary) -> None:
    """A finished run whose final model is gone or damaged (deleted, a disk that failed) says so, never a path
    that holds nothing: the journal's result stands, and the spec can be trained again."""
    from swarmcnn.checkpoint import load
    from swarmcnn.errors import CheckpointError

    try:
        load(summary.model_dir)
    except CheckpointError as error:
        raise SwarmCNNError(
            f"the search in '{search.run_dir}' has finished, but its final model cannot be read ({error}); "
            f"train its best spec again with: swarmcnn train {search.config.source} --arch '{summary.best_spec}' "
            "--out DIR"
        ) from None


RUNTIME = ("executor", "address", "cpus_per_trial", "gpus_per_trial")  # where it runs, not what: free on resume


def _executor_factory(args: argparse.Namespace):
    """None for the local executors (the search picks one), or one that puts candidates on Ray."""
    if args.executor != "ray":
        given = [f"--{k.replace('_', '-')}" for k in RUNTIME[1:] if getattr(args, k) is not None]
        if given:
            raise SwarmCNNError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for --executor ray")
        return None
    if args.workers is not None:
        raise SwarmCNNError("--workers is for the local executor; Ray trains as many candidates side by side as "
                            "the cluster's CPUs and GPUs hold (see --cpus-per-trial, --gpus-per-trial)")
    cpus = 1 if args.cpus_per_trial is None else args.cpus_per_trial
    gpus = 0 if args.gpus_per_trial is None else args.gpus_per_trial
    if cpus <= 0 or gpus < 0:
        raise SwarmCNNError(f"--cpus-per-trial must be positive and --gpus-per-trial not negative, got {cpus}, {gpus}")
    from swarmcnn.search.ray_executor import ray_executors

    return ray_executors(args.address, cpus, gpus)  # a missing Ray or a wrong address: one line before any work

