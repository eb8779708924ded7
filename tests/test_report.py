"""`swarmcnn report`: one self-contained HTML page, opened in a real browser (headless Chromium)."""

import re
import shutil
import sqlite3
import subprocess

import numpy as np
import pytest

from swarmcnn.cli import main
from swarmcnn.report_figures import _particle_scores, status_of, swarm_figure
from swarmcnn.search.journal import EvaluationRecord

BROWSER = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)),
               None)
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no Chromium here (.ci/run installs Debian's chromium)")
SEARCH = ["--evaluations", "4", "--candidate-epochs", "1", "--final-epochs", "1", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = tmp_path_factory.mktemp("report") / "run"
    # two designs and two generations of 8 particles: the swarm's positions are journaled after each generation
    assert main(["search", "digits", *SEARCH, "--evaluations", "18", "--out", str(run)]) == 0
    return run


def _report(run, tmp_path, capsys) -> str:
    out = tmp_path / "report.html"
    assert main(["report", str(run), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    return out


def _browse(page, tmp_path) -> tuple[dict[str, tuple[int, ...]], str]:
    """The figures' boxes as the page lays them out, and what the browser logged (console errors included)."""
    common = [BROWSER, "--headless=new", "--no-sandbox", "--disable-gpu", "--force-device-scale-factor=1",
              "--window-size=1200,5000", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    shot = tmp_path / "shot.png"
    subprocess.run([*common, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True)
    boxes = {name: tuple(map(int, box.split(","))) for name, box in
             re.findall(r'id="fig-([\w-]+)" data-box="([\d,]+)"', dom.stdout)}
    return boxes, dom.stderr, shot


def _drawn(shot, box) -> bool:
    from PIL import Image, ImageStat

    left, top, width, height = box
    with Image.open(shot) as picture:
        region = picture.convert("L").crop((left, top, left + width, top + height))
        return width > 50 and height > 50 and ImageStat.Stat(region).stddev[0] > 5  # not one flat colour


def _no_console_errors(log: str) -> None:
    """The page writes nothing to the console: any console line (an error, an uncaught exception) fails."""
    assert "CONSOLE" not in log and "Uncaught" not in log, log


def test_a_finished_run_has_every_figure_drawn(finished, tmp_path, capsys):
    assert main(["check", "digits", "--seeds", "1", "--json"]) == 0
    (finished / "check.json").write_text(capsys.readouterr().out)  # as the report's page tells users to
    page = _report(finished, tmp_path, capsys)
    text = page.read_text()
    assert "Is a CNN the right tool?" in text and "a CNN is " in text
    assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing fetched from elsewhere (namespaces aside)
    for name in ("progress", "status", "rungs", "pareto-params", "pareto-flops", "swarm", "curve", "confusion",
                 "features"):
        assert f'id="fig-{name}"' in text
    assert "positions in 2 generations" in text and 'class="pending"' not in text
    if BROWSER is None:
        pytest.skip("no Chromium here to open the page")
    boxes, log, shot = _browse(page, tmp_path)
    _no_console_errors(log)
    assert {"progress", "status", "rungs", "pareto-params", "pareto-flops", "swarm", "curve", "confusion",
            "features"} <= set(boxes)
    for name, box in boxes.items():
        assert _drawn(shot, box), f"figure {name} is blank in the screenshot"


@needs_browser
def test_a_run_in_progress_shows_what_is_journaled(finished, tmp_path, capsys):
    run = tmp_path / "running"
    shutil.copytree(finished, run)
    shutil.rmtree(run / "best")
    with sqlite3.connect(run / "journal.sqlite") as db:  # as it was before its final training
        db.execute("DELETE FROM run WHERE key = 'final'")
    page = _report(run, tmp_path, capsys)
    text = page.read_text()
    assert "The final training has not finished yet" in text and "best so far (the final choice is pending)" in text
    assert 'id="fig-confusion"' not in text and 'id="fig-curve"' not in text
    boxes, log, shot = _browse(page, tmp_path)
    _no_console_errors(log)
    assert {"progress", "status", "rungs", "pareto-params", "pareto-flops", "swarm"} <= set(boxes)
    assert all(_drawn(shot, box) for box in boxes.values())


def test_a_run_with_nothing_journaled_yet_says_so(finished, tmp_path, capsys):
    run = tmp_path / "started"
    run.mkdir()
    shutil.copy(finished / "journal.sqlite", run)
    with sqlite3.connect(run / "journal.sqlite") as db:  # as it is the moment the search has written its settings
        for table in ("evaluations", "promotions", "swarm_state"):
            db.execute(f"DELETE FROM {table}")
        db.execute("DELETE FROM run WHERE key IN ('final', 'search_seconds')")
    text = _report(run, tmp_path, capsys).read_text()
    assert "No candidate is journaled yet" in text and "No architecture has been scored yet" in text
    assert '<figure class="figure"' not in text


@needs_browser
def test_a_video_run(tmp_path, capsys):
    run = tmp_path / "video"
    # no promotions (--rungs 0): the best's trainings on 3 and 9 times the clips were most of the search's time,
    # and the rungs' figure is the digits run's to check
    assert main(["search", "moving-digits", *SEARCH, "--rungs", "0", "--out", str(run)]) == 0
    page = _report(run, tmp_path, capsys)
    text = page.read_text()
    assert "(channels, frames, height, width)" in text and "time slices side by side" in text
    assert 'id="fig-misclassified"' not in text or "middle frame)" in text
    boxes, log, shot = _browse(page, tmp_path)
    _no_console_errors(log)
    assert {"progress", "curve", "confusion", "features"} <= set(boxes)
    assert all(_drawn(shot, box) for box in boxes.values())


def test_a_folder_that_is_no_run_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def _record(generation: int, particle: int, status: str = "ok", accuracy: float | None = 0.5, images: int = 100):
    return EvaluationRecord(f"conv{generation}x3 fc{particle + 1}", status, "", 0.0, accuracy, 0.1, 10, 10, 1, 1.0,
                            generation=generation, origin={"particle": particle}, images=images, planned_images=100)


def test_a_candidate_its_time_limit_cut_short_is_counted_as_time_limit():
    assert [status_of(_record(0, 0, images=40)), status_of(_record(0, 1)), status_of(_record(0, 2, "too-slow"))] \
        == ["time-limit", "ok", "too-slow"]


def test_each_particle_is_coloured_by_what_it_proposed_in_that_generation():
    records = [_record(0, 1, accuracy=0.9), _record(1, 1, accuracy=0.3), _record(1, 0, "too-large", None)]
    assert _particle_scores(records, 1, 3).tolist()[1] == 0.3
    assert np.isnan(_particle_scores(records, 1, 3)[[0, 2]]).all()  # refused untrained, and no candidate


def test_a_search_without_particles_says_why_there_is_no_swarm_picture():
    assert "particles are architectures, not points" in swarm_figure([], [], "psocnn")
    assert "first generation is not finished" in swarm_figure([(0, {"generation": 0})], [], "pso")
