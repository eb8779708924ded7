"""Fixtures the search tests share."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# one block of one convolution of 8-16 features, at most one fully connected layer: candidates of a second
TINY_SPACE = (
    "[space]\nblocks = [1, 1]\nconvs_per_block = [1, 1]\nfeatures = [8, 16]\nfc_layers = [0, 1]\nneurons = [16, 32]\n"
)


@pytest.fixture(scope="module")
def space(tmp_path_factory) -> Path:
    """A --space file of tiny candidates, for searches that must take seconds."""
    path = tmp_path_factory.mktemp("space") / "space.toml"
    path.write_text(TINY_SPACE)
    return path


def pytest_collection_modifyitems(config, items):
    """The Ray tests count every Ray task on the machine: beside another xdist worker's Ray instance they count its
    tasks too. Under xdist they skip with that reason; .ci/run runs them one file after another (-n 0)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    skip = pytest.mark.skip(reason="Ray tests count the machine's Ray tasks: run them with -n 0 -m ray (.ci/run)")
    for item in items:
        if "ray" in item.keywords:
            item.add_marker(skip)
