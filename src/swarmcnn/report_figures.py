"""The figures of swarmcnn's report, as HTML: matplotlib's SVG written into the page, pictures as PNG data URIs.

Each takes what the journal or the test gives and returns one `<figure class="figure" id="fig-NAME">` (or a
sentence where there is nothing to draw yet), so that the page, and the browser test, find every figure by id.
"""

from __future__ import annotations

import base64
import html
import io
import math

import numpy as np

from swarmcnn.search.journal import EvaluationRecord
from swarmcnn.search.runs import pareto_front

# the kinds of candidate the page tells apart, in the order of its legends; any other status is grey
STATUS_COLOURS = {"ok": "#3b7dd8", "time-limit": "#e0a030", "too-slow": "#c05050", "too-large": "#9060b0",
                  "diverged": "#70a040", "out-of-memory": "#d080c0", "failed": "#404040"}


def figure_html(name: str, content: str, caption: str) -> str:
    return f'<figure class="figure" id="fig-{name}">{content}<figcaption>{html.escape(caption)}</figcaption></figure>'


def svg(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def png(picture) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img class="pixels" alt="" src="data:image/png;base64,{data}">'


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def search_figures(records: list[EvaluationRecord], promotions: list[EvaluationRecord]) -> str:
    if not records:
        return '<p class="pending">No candidate is journaled yet.</p>'
    plt = pyplot()
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
    axes.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    axes.legend()
    progress = figure_html("progress", svg(figure), "Validation accuracy per generation (rung 0).")
    return progress + _status_figure(plt, records, generations) + _rung_figure(plt, records, promotions)


def status_of(record: EvaluationRecord) -> str:
    """The page's kind of a candidate: one its time limit cut short is 'time-limit' rather than 'ok'."""
    return "time-limit" if record.compressed else record.status


def _status_figure(plt, records: list[EvaluationRecord], generations: list[int]) -> str:
    kinds = [k for k in STATUS_COLOURS if any(status_of(r) == k for r in records)]
    kinds += sorted({status_of(r) for r in records} - set(kinds))
    figure, axes = plt.subplots(figsize=(5, 3))
    below = np.zeros(len(generations))
    for kind in kinds:
        counts = np.array([sum(r.generation == g and status_of(r) == kind for r in records) for g in generations])
        axes.bar(generations, counts, bottom=below, color=STATUS_COLOURS.get(kind, "#888"),
                 label=f"{kind} ({counts.sum()})")
        below += counts
    axes.set(xlabel="generation", ylabel="candidates")
    axes.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    axes.legend(fontsize=7)
    return figure_html("status", svg(figure), "Candidates of each generation by status (time-limit: trained, but its "
                   "time limit ended its schedule early).")


def _rung_figure(plt, records: list[EvaluationRecord], promotions: list[EvaluationRecord]) -> str:
    scores: dict[str, dict[int, float | None]] = {}
    for r in [*records, *promotions]:
        scores.setdefault(r.spec, {})[r.rung] = r.val_accuracy
    reached = {spec: max(by_rung) for spec, by_rung in scores.items()}
    rungs = sorted(set(reached.values()))
    figure, axes = plt.subplots(figsize=(4, 3))
    axes.bar([str(k) for k in rungs], [sum(v == k for v in reached.values()) for k in rungs], color="#3b7dd8")
    axes.set(xlabel="highest rung reached", ylabel="candidates")
    ladder = figure_html("rungs", svg(figure), "The fidelity rung each candidate reached (more images each rung).")
    promoted = sorted((spec for spec in scores if reached[spec] > 0), key=lambda spec: -reached[spec])
    if not promoted:
        return ladder + "<p>No candidate has been promoted to a higher rung yet.</p>"
    head = "".join(f"<th>rung {k}</th>" for k in range(max(rungs) + 1))
    rows = "".join(f"<tr><td><code>{html.escape(spec)}</code></td>"
                   + "".join(f"<td>{accuracy_text(scores[spec].get(k))}</td>" for k in range(max(rungs) + 1)) + "</tr>"
                   for spec in promoted)
    return ladder + f"<table><tr><th>promoted candidate: validation accuracy at</th>{head}</tr>{rows}</table>"


def accuracy_text(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def candidate_figures(records: list[EvaluationRecord], summary: dict) -> str:
    trained = [r for r in records if r.ok and r.val_accuracy is not None and r.params]
    if not trained:
        return '<p class="pending">No candidate has been trained yet.</p>'
    plt = pyplot()
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
        parts.append(figure_html(f"pareto-{key}", svg(figure), f"Validation accuracy against {label}."))
    return "".join(parts)


SWARM_PANELS = 8  # generations drawn at most (the first, the last and evenly between)


def swarm_figure(states: list[tuple[int, dict]], records: list[EvaluationRecord], strategy: str) -> str:
    """Each generation's particles in one 2-D plane (the first two principal axes of all positions journaled),
    coloured by the validation accuracy of the candidate each particle proposed there."""
    # the state journaled after telling generation g holds the positions generation g - 1 was proposed from
    moves = [(told - 1, np.asarray(state["position"], dtype=float))
             for told, state in states if "position" in state]
    if not moves:
        why = {"pso": "its first generation is not finished yet",
               "psocnn": "psocnn's particles are architectures, not points of a space"}
        because = why.get(strategy, f"the {strategy} strategy has no particles")
        return f"<p>No particle positions are journaled: {html.escape(because)}.</p>"
    import matplotlib

    plt = pyplot()
    everything = np.concatenate([p for _, p in moves])
    centre = everything.mean(0)
    _, _, principal = np.linalg.svd(everything - centre, full_matrices=False)
    flat_all = (everything - centre) @ principal[:2].T
    shown = [moves[round(i)] for i in np.linspace(0, len(moves) - 1, min(SWARM_PANELS, len(moves)))]
    columns = min(4, len(shown))
    rows = math.ceil(len(shown) / columns)
    figure, grid = plt.subplots(rows, columns, figsize=(2.6 * columns + 0.8, 2.5 * rows), squeeze=False,
                                sharex=True, sharey=True)
    for axes in grid.flat[len(shown):]:
        axes.set_visible(False)
    scale, colours = None, matplotlib.colormaps["viridis"].with_extremes(bad="#aaa")
    for axes, (generation, positions) in zip(grid.flat, shown):
        flat = (positions - centre) @ principal[:2].T
        scores = _particle_scores(records, generation, len(positions))
        axes.scatter(flat_all[:, 0], flat_all[:, 1], s=4, c="#ddd", zorder=0)
        scale = axes.scatter(flat[:, 0], flat[:, 1], c=scores, cmap=colours, vmin=0, vmax=1, s=30,
                             edgecolors="black", linewidths=0.4, plotnonfinite=True)
        axes.set_title(f"generation {generation}", fontsize=8)
        axes.tick_params(labelsize=6)
    figure.colorbar(scale, ax=grid, label="validation accuracy (grey: none)")
    caption = (f"Particles' positions in {len(moves)} generations ({len(shown)} drawn), projected to the first two "
               "principal axes of every position (PCA); faint: all the others.")
    return figure_html("swarm", svg(figure), caption)


def _particle_scores(records: list[EvaluationRecord], generation: int, particles: int) -> np.ndarray:
    """The validation accuracy of what each particle proposed in generation (NaN: untrained, or not its own)."""
    scores = np.full(particles, np.nan)
    for r in records:
        particle = (r.origin or {}).get("particle")
        if r.generation == generation and isinstance(particle, int) and 0 <= particle < particles:
            scores[particle] = np.nan if r.val_accuracy is None or not r.ok else r.val_accuracy
    return scores


def curve_figure(metrics: dict) -> str:
    """The final training's loss and accuracy per epoch (on train+val: it has no validation split)."""
    epochs = metrics.get("curve")
    if not epochs:
        return "<p>Its training curve is not recorded (the model was saved by a swarmcnn that did not keep it).</p>"
    plt = pyplot()
    figure, loss_axes = plt.subplots(figsize=(5, 3))
    numbers = [e["epoch"] for e in epochs]
    loss_axes.plot(numbers, [e["train_loss"] for e in epochs], marker="o", color="#c05050", label="loss")
    loss_axes.set(xlabel="epoch", ylabel="training loss")
    loss_axes.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    accuracy_axes = loss_axes.twinx()
    accuracy_axes.plot(numbers, [e["train_accuracy"] for e in epochs], marker="s", color="#3b7dd8",
                       label="accuracy")
    accuracy_axes.set(ylabel="training accuracy")
    figure.legend(loc="upper center", ncols=2, fontsize=7)
    return figure_html("curve", svg(figure), "The final training, epoch by epoch (on train+validation).")


def confusion_figure(confusion: np.ndarray, names) -> str:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(4.5, 4))
    axes.imshow(confusion, cmap="Blues")
    axes.set(xticks=range(len(names)), yticks=range(len(names)), xlabel="predicted", ylabel="true")
    axes.set_xticklabels(names, rotation=90, fontsize=7)
    axes.set_yticklabels(names, fontsize=7)
    for (i, j), count in np.ndenumerate(confusion):
        if count:
            axes.text(j, i, str(count), ha="center", va="center", fontsize=6)
    return figure_html("confusion", svg(figure), "Confusion on the test split (rows: the true class).")


MISCLASSIFIED_SHOWN = 24


def misclassified_figure(test, guesses, names) -> str:
    import torch

    from swarmcnn.render import input_image

    wrong = torch.nonzero(guesses != test.y).flatten()
    if len(wrong) == 0:
        return "<p>No test example is misclassified.</p>"
    if test.x.dim() == 3:  # signals (N, C, L): lines, not pictures
        return _misclassified_signals(test, guesses, names, wrong)
    video = test.x.dim() == 5  # (N, C, T, H, W): a clip is shown by its middle frame
    cells = []
    for i in wrong[:MISCLASSIFIED_SHOWN].tolist():
        x = test.x[i][:, test.x.shape[2] // 2] if video else test.x[i]
        cells.append(f"<div class='example'>{png(input_image(x))}<br>true {html.escape(names[int(test.y[i])])}"
                     f"<br>said {html.escape(names[int(guesses[i])])}</div>")
    frame = " (each clip's middle frame)" if video else ""
    caption = f"Misclassified test examples: {min(len(wrong), MISCLASSIFIED_SHOWN)} of {len(wrong)}{frame}."
    return figure_html("misclassified", "".join(cells), caption)


def _misclassified_signals(test, guesses, names, wrong) -> str:
    """The misclassified series as small line plots, every channel a colour, titled with the true and said class."""
    plt = pyplot()
    shown = wrong[:MISCLASSIFIED_SHOWN].tolist()
    columns = min(4, len(shown))
    rows = math.ceil(len(shown) / columns)
    figure, grid = plt.subplots(rows, columns, figsize=(2.4 * columns, 1.5 * rows), squeeze=False)
    for axes in grid.flat[len(shown):]:
        axes.set_visible(False)
    for axes, i in zip(grid.flat, shown):
        for line in test.x[i][:6].numpy():  # at most six channels, for legibility
            axes.plot(line, linewidth=0.7)
        axes.set_title(f"true {names[int(test.y[i])]}, said {names[int(guesses[i])]}", fontsize=7)
        axes.tick_params(labelsize=5)
        axes.margins(x=0)
    figure.tight_layout()
    channels = test.x.shape[1]
    which = "its channels" if channels <= 6 else f"its first 6 of {channels} channels"
    caption = (f"Misclassified test examples: {len(shown)} of {len(wrong)}, each series drawn over time ({which}, "
               "one colour each).")
    return figure_html("misclassified", svg(figure), caption)
