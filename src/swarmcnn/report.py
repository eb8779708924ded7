"""One self-contained HTML page of a search: how it went, what it found, and what the final network learned.

Everything comes from the run folder: the journal (every candidate, promotion and swarm state) and, once the
search has finished, the final model in RUN_DIR/best, tested again on its test split. Figures are matplotlib's
SVG, written into the page, and pictures are PNG data URIs: the file opens anywhere, offline, with nothing
fetched from elsewhere. A run still in progress gives the page of what is journaled so far.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import platform
import sqlite3
import time
from pathlib import Path

import numpy as np

from swarmcnn.errors import SwarmCNNError
from swarmcnn.search.journal import EvaluationRecord, Journal
from swarmcnn.search.loop import SearchConfig
from swarmcnn.search.runs import describe_run, pareto_front

STATUS_COLOURS = {"ok": "#3b7dd8", "time-limit": "#e0a030", "too-slow": "#c05050", "too-large": "#9060b0",
                  "failed": "#404040"}


def write_report(run_dir: str | Path, out: str | Path) -> Path:
    """Write the page of the run in run_dir to out (an .html file)."""
    out = Path(out)
    if out.is_dir():
        raise SwarmCNNError(f"--out '{out}' is a folder; give a file name such as report.html")
    page = report_html(Path(run_dir))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def report_html(run_dir: Path) -> str:
    summary = describe_run(run_dir, top=10**9)
    journal = Journal.open(run_dir)
    try:
        settings = SearchConfig.from_journal(journal)
        records, promotions = journal.evaluations(), journal.evaluations("promotions")
        states = _states(journal)
        started = journal.get("started")
    finally:
        journal.close()
    sections = [
        _section("search", "The search over time", _search_figures(records, promotions)),
        _section("candidates", "Every candidate", _candidate_figures(records, summary)),
        _section("swarm", "How the swarm moved", _swarm_figure(states)),
        _section("architecture", "The best architecture", _architecture(summary, run_dir)),
        _section("final", "The final model", _final_model(run_dir, settings)),
        _section("settings", "Settings, data and versions", _settings(summary, settings, started) + _check(run_dir)),
    ]
    title = f"swarmcnn search of {settings.source}"
    return PAGE.format(title=html.escape(title), status=html.escape(summary["status"]), body="\n".join(sections))


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 1em auto; color: #222 }}
figure.figure {{ display: inline-block; margin: 0.5em; vertical-align: top; min-width: 200px; min-height: 120px }}
figure.figure svg, figure.figure img {{ max-width: 100%; height: auto }}
table {{ border-collapse: collapse; margin: 0.5em 0 }} td, th {{ border: 1px solid #ccc; padding: 2px 6px }}
img.pixels {{ image-rendering: pixelated }}
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


def _figure(name: str, content: str, caption: str) -> str:
    return f'<figure class="figure" id="fig-{name}">{content}<figcaption>{html.escape(caption)}</figcaption></figure>'


def _svg(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _png(picture) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img class="pixels" alt="" src="data:image/png;base64,{data}">'


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _search_figures(records: list[EvaluationRecord], promotions: list[EvaluationRecord]) -> str:
    if not records:
        return '<p class="pending">No candidate is journaled yet.</p>'
    plt = _pyplot()
    generations = sorted({r.generation for r in records})
    best, mean, so_far = [], [], -math.inf
    for g in generations:
        scores = [r.val_accuracy for r in records if r.generation == g and r.ok and r.val_accuracy is not None]
        so_far = max([so_far, *scores])
        best.append(so_far if so_far > -math.inf else math.nan)
        mean.append(float(np.mean(scores)) if scores else math.nan)
    figure, axes = plt.subplots(figsize=(5, 3))
    axes.plot(generations, best, marker="o", label="best so far")
    axes.plot(generations, mean, marker=".", label="mean of the generation")
    axes.set(xlabel="generation", ylabel="validation accuracy")
    axes.legend()
    progress = _figure("progress", _svg(figure), "Validation accuracy per generation (rung 0).")
    statuses = {}
    for r in records:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    figure, axes = plt.subplots(figsize=(4, 3))
    axes.bar(list(statuses), list(statuses.values()), color=[STATUS_COLOURS.get(s, "#888") for s in statuses])
    axes.set(ylabel="candidates")
    status = _figure("status", _svg(figure), "Candidates by status.")
    reached = {}
    for r in records:
        reached[r.spec] = max(reached.get(r.spec, 0), r.rung)
    for r in promotions:
        reached[r.spec] = max(reached.get(r.spec, 0), r.rung)
    rungs = sorted(set(reached.values()))
    figure, axes = plt.subplots(figsize=(4, 3))
    axes.bar([str(k) for k in rungs], [sum(v == k for v in reached.values()) for k in rungs], color="#3b7dd8")
    axes.set(xlabel="highest rung reached", ylabel="candidates")
    ladder = _figure("rungs", _svg(figure), "The fidelity rung each candidate reached (more images each rung).")
    return progress + status + ladder


def _candidate_figures(records: list[EvaluationRecord], summary: dict) -> str:
    trained = [r for r in records if r.ok and r.val_accuracy is not None and r.params]
    if not trained:
        return '<p class="pending">No candidate has been trained yet.</p>'
    plt = _pyplot()
    front = {r.spec for r in pareto_front(trained)}
    chosen = summary.get("best_spec")
    parts = []
    for key, label in (("params", "parameters"), ("flops", "FLOPs per input")):
        points = [r for r in trained if getattr(r, key)]
        figure, axes = plt.subplots(figsize=(5, 3.2))
        axes.scatter([getattr(r, key) for r in points], [r.val_accuracy for r in points], s=12, c="#9ab",
                     label="candidate")
        on_front = sorted((r for r in points if r.spec in front), key=lambda r: getattr(r, key))
        axes.plot([getattr(r, key) for r in on_front], [r.val_accuracy for r in on_front], "-o", color="#d04",
                  markersize=4, label="Pareto front")
        best = [r for r in points if r.spec == chosen]
        if best:
            axes.scatter([getattr(best[0], key)], [best[0].val_accuracy], s=120, marker="*", c="gold",
                         edgecolors="black", zorder=5, label="chosen")
        axes.set(xscale="log", xlabel=label, ylabel="validation accuracy")
        axes.legend(fontsize=7)
        parts.append(_figure(f"pareto-{key}", _svg(figure), f"Validation accuracy against {label}."))
    return "".join(parts)


def _states(journal: Journal) -> list[tuple[int, dict]]:
    try:
        rows = journal.db.execute("SELECT generation, state FROM swarm_state ORDER BY generation").fetchall()
    except sqlite3.DatabaseError as error:
        raise journal.damaged(f"its swarm states cannot be read ({error})") from error
    return [(generation, json.loads(state)) for generation, state in rows]


def _swarm_figure(states: list[tuple[int, dict]]) -> str:
    moves = [(g, np.asarray(s["position"], dtype=float), s.get("best_scores")) for g, s in states if "position" in s]
    if not moves:
        return "<p>No particle positions are journaled: only the swarms keep them, after their first generation.</p>"
    plt = _pyplot()
    everything = np.concatenate([p for _, p, _ in moves])
    centre = everything.mean(0)
    _, _, axes_of = np.linalg.svd(everything - centre, full_matrices=False)
    figure, axes = plt.subplots(figsize=(5.5, 4))
    previous = None
    for generation, positions, scores in moves:
        flat = (positions - centre) @ axes_of[:2].T
        values = [s if isinstance(s, (int, float)) and math.isfinite(s) else np.nan for s in (scores or [])]
        colours = values if len(values) == len(flat) else None
        shown = axes.scatter(flat[:, 0], flat[:, 1], c=colours, cmap="viridis", s=14 + 2 * generation, vmin=0, vmax=1)
        if previous is not None and len(previous) == len(flat):
            for a, b in zip(previous, flat):
                axes.plot([a[0], b[0]], [a[1], b[1]], color="#ccc", linewidth=0.5, zorder=0)
        previous = flat
    figure.colorbar(shown, ax=axes, label="particle's best score")
    axes.set(xlabel="first principal axis", ylabel="second principal axis")
    caption = f"Particles' positions, {len(moves)} generations, projected to 2-D (PCA); lines follow each particle."
    return _figure("swarm", _svg(figure), caption)


def _architecture(summary: dict, run_dir: Path) -> str:
    from swarmcnn.spec import Spec

    text = summary.get("best_spec")
    if not text:
        return '<p class="pending">No architecture has been scored yet.</p>'
    spec = Spec.parse(text)
    model_file = run_dir / "best" / "model.json"
    if not model_file.is_file():
        return f"<p>Best so far: <code>{html.escape(text)}</code> (the final model is pending).</p>"
    described = json.loads(model_file.read_text())
    shape = tuple(described["input_shape"])
    classes = len(described["class_names"])
    own = [_weights(Spec(spec.layers[:i]), shape, classes) for i in range(len(spec.layers) + 1)]
    rows = [f"<tr><td>input</td><td>{'×'.join(map(str, shape))}</td><td></td></tr>"]
    for i, (layer, after) in enumerate(zip(spec.layers, spec.shapes(shape))):
        rows.append(f"<tr><td>{html.escape(str(layer))}</td><td>{html.escape(str(after))}</td>"
                    f"<td>{own[i + 1] - own[i]:,}</td></tr>")
    total = spec.num_params(shape, classes)
    table = "<table><tr><th>layer</th><th>output</th><th>parameters</th></tr>" + "".join(rows) + "</table>"
    return f"<p><code>{html.escape(text)}</code>: {total:,} parameters in all (class layer included).</p>{table}"


def _weights(spec, shape: tuple[int, ...], classes: int) -> int:
    """The parameters of spec's own layers: its count without the class layer it ends with."""
    return spec.num_params(shape, classes) - classes * (spec.feature_size(shape) + 1)


def _final_model(run_dir: Path, settings: SearchConfig) -> str:
    if not (run_dir / "best" / "model.json").is_file():
        return '<p class="pending">The final training has not finished yet: its model, test and features follow.</p>'
    import torch

    from swarmcnn.checkpoint import load
    from swarmcnn.data import load_data
    from swarmcnn.explain import first_conv_weight
    from swarmcnn.render import features_image, input_image
    from swarmcnn.train import evaluate, predict_logits

    trained = load(run_dir / "best")
    metrics = trained.metrics
    parts = [f"<p>{html.escape(str(metrics.get('status')))}: {html.escape(str(metrics.get('reason')))}; "
             "the training curve of the final model is not journaled.</p>"]
    try:
        test = load_data(settings.source, settings.data).test
    except SwarmCNNError as error:
        return "".join(parts) + f"<p>Its data could not be read again: {html.escape(str(error))}</p>"
    result = evaluate(trained.module, test, trained.normalization)
    shape = "×".join(map(str, trained.input_shape))
    parts.append(f"<p>Data: {html.escape(settings.source)}, inputs {shape}, {len(trained.class_names)} classes; "
                 f"the final model trained on train+validation and was tested on {len(test)} test samples.</p>")
    plt = _pyplot()
    confusion = np.asarray(result.confusion)
    figure, axes = plt.subplots(figsize=(4.5, 4))
    axes.imshow(confusion, cmap="Blues")
    names = trained.class_names
    axes.set(xticks=range(len(names)), yticks=range(len(names)), xlabel="predicted", ylabel="true")
    axes.set_xticklabels(names, rotation=90, fontsize=7)
    axes.set_yticklabels(names, fontsize=7)
    for (i, j), count in np.ndenumerate(confusion):
        if count:
            axes.text(j, i, str(count), ha="center", va="center", fontsize=6)
    parts.append(_figure("confusion", _svg(figure), f"Confusion on the test split: accuracy {result.accuracy:.4f}."))
    per_class = zip(names, result.per_class_accuracy)
    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{a:.3f}</td></tr>" for n, a in per_class)
    parts.append(f"<table><tr><th>class</th><th>test accuracy</th></tr>{rows}</table>")
    guesses = predict_logits(trained.module, test.x, trained.normalization).argmax(1)
    wrong = torch.nonzero(guesses != test.y).flatten()[:16].tolist()
    if wrong:
        cells = "".join(
            f"<div style='display:inline-block;margin:4px;text-align:center'>{_png(input_image(test.x[i]))}<br>"
            f"true {html.escape(names[int(test.y[i])])}, said {html.escape(names[int(guesses[i])])}</div>"
            for i in wrong
        )
        parts.append(_figure("misclassified", cells, f"Misclassified test examples ({len(wrong)} shown)."))
    else:
        parts.append("<p>No test example is misclassified.</p>")
    weight = first_conv_weight(trained.module)
    if weight is not None:
        parts.append(_figure("features", _png(features_image(weight)), "The features the first convolution learned."))
    return "".join(parts)


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


def _settings(summary: dict, settings: SearchConfig, started) -> str:
    import torch

    from swarmcnn import __version__

    facts = {
        "data": settings.source,
        "strategy": settings.strategy,
        "seed": settings.seed,
        "budget": settings.budget_seconds,
        "evaluations": summary["evaluations"],
        "search seconds (candidates and promotions)": round(summary["search_seconds"], 1),
        "final": summary.get("final"),
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, float) else None,
        "versions": {"swarmcnn": __version__, "torch": torch.__version__, "python": platform.python_version()},
    }
    text = json.dumps(facts, indent=2, default=str)
    config = json.dumps(settings.to_dict(), indent=2, default=str)
    every = f"<details><summary>all settings</summary><pre>{html.escape(config)}</pre></details>"
    return f"<pre>{html.escape(text)}</pre>{every}"
