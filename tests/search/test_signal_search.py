"""The search on signals: it starts from the signal designs, explores feature sizes that suit the length, and ends
with a model directory that `predict` takes series files for."""

from __future__ import annotations

import json

import numpy as np

from swarmcnn.checkpoint import load
from swarmcnn.cli import main
from swarmcnn.search.journal import Journal
from tests.test_signals import LENGTH, recordings, write_ts

SEARCH = ["--evaluations", "3", "--candidate-epochs", "1", "--final-epochs", "2", "--rungs", "0", "--threads", "1",
          "--quiet"]


def test_a_signal_search_starts_from_the_signal_designs_and_saves_a_model_that_predict_uses(tmp_path, capsys):
    folder = tmp_path / "bump"
    folder.mkdir()
    write_ts(folder / "Bump_TRAIN.ts", *recordings(80, seed=1)[:2])
    write_ts(folder / "Bump_TEST.ts", *recordings(20, seed=2)[:2])
    run = tmp_path / "run"
    assert main(["search", str(folder), *SEARCH, "--out", str(run)]) == 0
    journal = Journal.open(run)
    records, settings = journal.evaluations(), journal.get("settings")
    journal.close()
    assert [r.origin.get("design") for r in records[:2]] == ["lenet1d", "fcn"]
    assert settings["space"]["feature_sizes"] == [3, 5, 7, 9]  # odd, up to a quarter of the 40 instants
    assert load(run / "best").input_shape == (2, LENGTH)
    np.save(tmp_path / "cases.npy", recordings(3, seed=5)[0].astype(np.float32))
    capsys.readouterr()
    assert main(["predict", str(run / "best"), str(tmp_path / "cases.npy"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["case"] for row in rows] == [0, 1, 2] and {row["label"] for row in rows} <= {"flat", "bump"}


def test_a_space_file_given_to_a_signal_search_is_the_space_it_searches(tmp_path):
    folder = tmp_path / "bump"
    folder.mkdir()
    write_ts(folder / "Bump_TRAIN.ts", *recordings(60, seed=1)[:2])
    write_ts(folder / "Bump_TEST.ts", *recordings(20, seed=2)[:2])
    space = tmp_path / "space.toml"
    space.write_text("[space]\nblocks = [1, 1]\nconvs_per_block = [1, 1]\nfeatures = [8, 8]\nfeature_sizes = [3]\n")
    run = tmp_path / "run"
    assert main(["search", str(folder), *SEARCH, "--no-designs", "--space", str(space), "--out", str(run)]) == 0
    journal = Journal.open(run)
    settings, specs = journal.get("settings"), [r.spec for r in journal.evaluations()]
    journal.close()
    assert settings["space"]["feature_sizes"] == [3]
    assert specs and all("conv8x3" in spec for spec in specs)
