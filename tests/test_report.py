"""`swarmcnn report`: one self-contained HTML page, opened in a real browser (headless Chromium)."""

import re
import shutil
import sqlite3
import subprocess

import pytest

from swarmcnn.cli import main

BROWSER = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)),
               None)
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no Chromium here (.ci/run installs Debian's chromium)")
SEARCH = ["--evaluations", "4", "--candidate-epochs", "1", "--final-epochs", "1", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = tmp_path_factory.mktemp("report") / "run"
    # enough candidates for the swarm to move twice (its positions are journaled after each generation)
    assert main(["search", "digits", *SEARCH, "--evaluations", "14", "--out", str(run)]) == 0
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
    for name in ("progress", "status", "rungs", "pareto-params", "pareto-flops", "swarm", "confusion", "features"):
        assert f'id="fig-{name}"' in text
    if BROWSER is None:
        pytest.skip("no Chromium here to open the page")
    boxes, log, shot = _browse(page, tmp_path)
    _no_console_errors(log)
    assert {"progress", "status", "pareto-params", "swarm", "confusion", "features"} <= set(boxes)
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
    assert "pending" in text and 'id="fig-progress"' in text and 'id="fig-confusion"' not in text
    boxes, log, shot = _browse(page, tmp_path)
    _no_console_errors(log)
    assert all(_drawn(shot, box) for box in boxes.values())


@needs_browser
def test_a_video_run(tmp_path, capsys):
    run = tmp_path / "video"
    assert main(["search", "moving-digits", *SEARCH, "--out", str(run)]) == 0
    page = _report(run, tmp_path, capsys)
    boxes, log, shot = _browse(page, tmp_path)
    _no_console_errors(log)
    assert {"progress", "confusion"} <= set(boxes)
    assert all(_drawn(shot, box) for box in boxes.values())


def test_a_folder_that_is_no_run_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
