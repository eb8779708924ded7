"""One self-contained HTML page of a search: how it went, what it found, and what the final network learned.

Everything comes from the run folder: the journal (every candidate, promotion and swarm state) and, once the
search has finished, the final model in RUN_DIR/best, tested again on its test split. Figures are matplotlib's
SVG, written into the page, and pictures are PNG data URIs: the file opens anywhere, offline, with nothing
fetched from elsewhere. A run still in progress gives the page of what is journaled so far.
"""

from __future__ import annotations

import html
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swarmcnn.errors import SwarmCNNError, is_disk_full
from swarmcnn.report_figures import (
    accuracy_text,
    candidate_figures,
    confusion_figure,
    curve_figure,
    figure_html,
    misclassified_figure,
    png,
    search_figures,
    swarm_figure,
)
from swarmcnn.search.journal import EvaluationRecord, Journal
from swarmcnn.search.loop import SearchConfig
from swarmcnn.search.runs import describe_run


def write_report(run_dir: str | Path, out: str | Path) -> Path:
    """Write the page of the run in run_dir to out (an .html file), whole or not at all: written beside it and
    renamed into place, so that a full disk leaves a report already there as it was."""
    out = Path(out)
    if out.is_dir():
        raise SwarmCNNError(f"--out '{out}' is a folder; give a file name such as report.html")
    page = report_html(Path(run_dir))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.{os.getpid()}.tmp"
    try:
        staging.write_text(page, encoding="utf-8")
        os.replace(staging, out)
    except OSError as error:
        if is_disk_full(error):
            raise SwarmCNNError(f"cannot write '{out}': no space left on device (the disk is full)") from None
        raise
    finally:
        staging.unlink(missing_ok=True)
    return out


def report_html(run_dir: Path) -> str:
    """The page, from what run_dir holds now: a run in progress gives what is journaled, and says what is pending."""
    run = read_run(run_dir)
    data, data_problem = _data(run)
    sections = [
        _section("search", "The search over time", search_figures(run.records, run.promotions)),
        _section("candidates", "Every candidate", candidate_figures(run.records, run.summary)),
        _section("swarm", "How the swarm moved", swarm_figure(run.states, run.records, run.settings.strategy)),
        _section("architecture", "The best architecture", _architecture(run.summary, data)),
        _section("final", "The final model", _final_model(run.path, data, data_problem)),
        _section("settings", "Settings, data and versions", _settings(run, data, data_problem) + _check(run.path)),
    ]
    title = f"swarmcnn search of {run.settings.source}"
    return PAGE.format(title=html.escape(title), status=html.escape(run.summary["status"]), body="\n".join(sections))


@dataclass(frozen=True)
class RunRecord:
    """What the journal holds of a run, read once."""

    path: Path
    summary: dict  # describe_run's
    settings: SearchConfig
    records: list[EvaluationRecord]
    promotions: list[EvaluationRecord]
    states: list[tuple[int, dict]]  # (generations told, the strategy's state then)
    values: dict  # started, search_seconds, data_fingerprint


def read_run(run_dir: Path) -> RunRecord:
    """Everything the page shows of run_dir's journal (a search may still be writing it: WAL lets us read)."""
    summary = describe_run(run_dir, top=10**9)
    journal = Journal.open(run_dir)
    try:
        values = {key: journal.get(key) for key in ("started", "search_seconds", "data_fingerprint")}
        return RunRecord(run_dir, summary, SearchConfig.from_journal(journal), journal.evaluations(),
                         journal.evaluations("promotions"), journal.states(), values)
    finally:
        journal.close()


def _data(run: RunRecord):
    """The run's data set split as the search split it, or None and why it could not be read again."""
    from swarmcnn.data import load_data

    try:
        data = load_data(run.settings.source, run.settings.data)
    except SwarmCNNError as error:
        return None, f"its data could not be read again: {error}"
    recorded = run.values["data_fingerprint"]
    if recorded is not None and recorded != data.fingerprint:
        return None, f"'{run.settings.source}' has changed since the search (its fingerprint differs)"
    return data, None


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 1em auto; color: #222 }}
figure.figure {{ display: inline-block; margin: 0.5em; vertical-align: top; min-width: 200px; min-height: 120px }}
figure.figure svg, figure.figure img {{ max-width: 100%; height: auto }}
table {{ border-collapse: collapse; margin: 0.5em 0 }} td, th {{ border: 1px solid #ccc; padding: 2px 6px }}
table.facts th {{ text-align: left; font-weight: normal; color: #555 }}
img.pixels {{ image-rendering: pixelated }}
div.example {{ display: inline-block; margin: 4px; text-align: center; font-size: 0.8em }}
p.pending {{ color: #a05000 }}
</style></head>
<body><h1>{title}</h1><p>Status: {status}</p>
{body}
<script>
// the boxes of the figures, for tests that look at a screenshot (nothing is fetched, nothing else runs)
document.querySelectorAll("figure.figure").forEach(function (f) {{
  var r = f.getBoundingClientRect();
  f.setAttribute("data-box", [r.left, r.top + window.scrollY, r.width, r.height].map(Math.round).join(","));
}});
</script>
</body></html>
"""


def _section(anchor: str, heading: str, content: str) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(heading)}</h2>\n{content}\n</section>'


def _architecture(summary: dict, data) -> str:
    from swarmcnn.spec import Spec

    text = summary.get("best_spec")
    if not text:
        return '<p class="pending">No architecture has been scored yet.</p>'
    chosen = "chosen" if summary.get("final") else "best so far (the final choice is pending)"
    if summary.get("found_by"):
        from swarmcnn.search.provenance import describe

        chosen += f" network, {html.escape(describe(summary['found_by']))}"
    if data is None:
        return f"<p>The {chosen}: <code>{html.escape(text)}</code> (its data is needed for its shapes).</p>"
    spec, shape, classes = Spec.parse(text), tuple(data.input_shape), len(data.class_names)
    own = [_weights(Spec(spec.layers[:i]), shape, classes) for i in range(len(spec.layers) + 1)]
    rows = [f"<tr><td>input</td><td>{'×'.join(map(str, shape))}</td><td></td></tr>"]
    for i, (layer, after) in enumerate(zip(spec.layers, spec.shapes(shape))):
        rows.append(f"<tr><td>{html.escape(str(layer))}</td><td>{after}</td>"
                    f"<td>{own[i + 1] - own[i]:,}</td></tr>")
    total = spec.num_params(shape, classes)
    rows.append(f"<tr><td>class layer</td><td>{classes}</td><td>{total - own[-1]:,}</td></tr>")
    table = "<table><tr><th>layer</th><th>output</th><th>parameters</th></tr>" + "".join(rows) + "</table>"
    return f"<p>The {chosen}: <code>{html.escape(text)}</code>, {total:,} parameters in all.</p>{table}"


def _weights(spec, shape: tuple[int, ...], classes: int) -> int:
    """The parameters of spec's own layers: its count without the class layer it ends with."""
    return spec.num_params(shape, classes) - classes * (spec.feature_size(shape) + 1)


def _final_model(run_dir: Path, data, data_problem: str | None) -> str:
    """The final model's training curve, then its test again: confusion, per class, mistakes, features."""
    if not (run_dir / "best" / "model.json").is_file():
        return '<p class="pending">The final training has not finished yet: its model, test and features follow.</p>'
    from swarmcnn.checkpoint import load
    from swarmcnn.explain import first_conv_weight
    from swarmcnn.render import features_image

    trained = load(run_dir / "best")
    metrics = trained.metrics
    parts = [f"<p>Its training: {html.escape(str(metrics.get('status')))} ({html.escape(str(metrics.get('reason')))})"
             f", {metrics.get('epochs')} epochs in {metrics.get('train_seconds', 0):.1f} s.</p>", curve_figure(metrics)]
    expected = (tuple(trained.input_shape), tuple(trained.class_names))
    if data is None or (tuple(data.input_shape), tuple(data.class_names)) != expected:
        why = data_problem or "its data no longer gives the model's inputs and classes"
        parts.append(f"<p>Its test cannot be repeated: {html.escape(why)}.</p>")
    else:
        parts.append(_test(trained, data.test))
    weight = first_conv_weight(trained.module)
    if weight is not None:
        caption = "The features the first convolution learned" + (" (time slices side by side)" if weight.dim() == 5
                                                                    else "")
        caption += f", in the first of the {trained.members} trainings it averages." if trained.members > 1 else "."
        parts.append(figure_html("features", png(features_image(weight)), caption))
    return "".join(parts)


def _test(trained, test) -> str:
    from swarmcnn.train import evaluate, predict_logits

    if len(test) == 0:
        return "<p>Its data has no test split: nothing to test it on.</p>"
    result = evaluate(trained.module, test, trained.normalization)
    guesses = predict_logits(trained.module, test.x, trained.normalization).argmax(1)
    names = trained.class_names
    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{f'{a:.3f}' if sum(row) else 'no images'}</td></tr>"
                   for n, a, row in zip(names, result.per_class_accuracy, result.confusion))
    return (f"<p>Tested again on the {len(test)} samples of its test split: accuracy {result.accuracy:.4f}.</p>"
            + confusion_figure(np.asarray(result.confusion), names)
            + f"<table><tr><th>class</th><th>test accuracy</th></tr>{rows}</table>"
            + misclassified_figure(test, guesses, names))


CHECK_FILE = "check.json"  # `swarmcnn check DATA --json > RUN_DIR/check.json`: its verdict joins the report


def _check(run_dir: Path) -> str:
    path = run_dir / CHECK_FILE
    if not path.is_file():
        return (f"<p>No <code>check</code> verdict: <code>swarmcnn check DATA --json &gt; {html.escape(str(path))}"
                "</code> adds one.</p>")
    try:
        verdict = json.loads(path.read_text())["verdict"]
    except (ValueError, KeyError, TypeError) as error:
        return f"<p>{html.escape(str(path))} holds no check verdict ({html.escape(str(error))}).</p>"
    return f"<p>Is a CNN the right tool? <code>swarmcnn check</code>: {html.escape(str(verdict))}.</p>"


def _settings(run: RunRecord, data, data_problem: str | None) -> str:
    settings, summary, final = run.settings, run.summary, run.summary.get("final") or {}
    started = run.values["started"]
    facts = {
        "data": settings.source,
        "strategy": settings.strategy,
        "seed": settings.seed,
        "budget": f"{settings.budget_seconds:.0f} s" if settings.budget_seconds else "none (a number of candidates)",
        "candidates": f"{summary['evaluations']} ({', '.join(f'{k} {v}' for k, v in summary['candidates'].items())})",
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started else None,
        "search (seconds, wall clock)": _rounded(run.values["search_seconds"]),
        "candidates' and promotions' training (seconds, summed)": _rounded(summary["search_seconds"]),
        "final training (seconds)": _rounded(final.get("final_seconds")) if final else "pending",
        "final model": _trainings(final.get("final_members", 1)) if final else "pending",
        "test accuracy of the final model": accuracy_text(final.get("test_accuracy")) if final else "pending",
    }
    every = json.dumps(settings.to_dict(), indent=2, default=str)
    return (_facts("The run", facts) + _data_summary(data, data_problem) + _facts("Versions", _versions())
            + f"<details><summary>all settings</summary><pre>{html.escape(every)}</pre></details>")


def _trainings(members: int) -> str:
    return "one training" if members == 1 else f"{members} trainings of the network, their probabilities averaged"


def _data_summary(data, data_problem: str | None) -> str:
    if data is None:
        return f"<p>The data set: {html.escape(data_problem or 'not read')}.</p>"
    counts = np.bincount(data.test.y.numpy(), minlength=len(data.class_names)) if len(data.test) else []
    return _facts("The data set", {
        "inputs": "×".join(map(str, data.input_shape)) + {2: " (channels, instants)",
                                                          4: " (channels, frames, height, width)"}.get(
                                                              len(data.input_shape), ""),
        **({"signals": data.signal.describe()} if getattr(data, "signal", None) is not None else {}),
        "classes": f"{len(data.class_names)}: {', '.join(data.class_names[:20])}"
                   + (" ..." if len(data.class_names) > 20 else ""),
        "samples": f"train {len(data.train)}, validation {len(data.val)}, test {len(data.test)}",
        "test samples per class": ", ".join(map(str, counts)),
        "fingerprint": data.fingerprint,
    })


def _versions() -> dict:
    """The libraries that write this page (the journal does not record those the search ran with)."""
    import matplotlib
    import torch

    from swarmcnn import __version__

    return {"swarmcnn": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "matplotlib": matplotlib.__version__, "python": platform.python_version(), "platform": platform.platform()}


def _facts(heading: str, facts: dict) -> str:
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts.items())
    return f"<h3>{html.escape(heading)}</h3><table class='facts'>{rows}</table>"


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)
