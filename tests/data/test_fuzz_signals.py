"""Random bytes, damaged files and headers that claim any size fed to the signal sources (.ts, UCR .tsv and .txt):
a clean one-line SwarmCNNError or a valid data set, as `test_fuzz.py` holds every other source to."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from swarmcnn.data import DataConfig
from swarmcnn.data.signal_files import load_cases
from swarmcnn.errors import SwarmCNNError
from tests.data.test_fuzz import FUZZ, _checked, _mutated

HEADER = "@problemName Fuzz\n@univariate false\n@dimensions 2\n@equalLength true\n@seriesLength 4\n" \
         "@missing true\n@classLabel true a b\n@data\n"
CASES = "".join(f"{i},1.5,?,{i}:0,{i},2,3:{'ab'[i % 2]}\n" for i in range(12))
VALID_TS = (HEADER + CASES).encode()
VALID_TSV = "".join(f"{1 + i % 2}.0000000e+00\t{i}\t1.5\tNaN\t{i}\n" for i in range(12)).encode()
CONFIG = DataConfig(val_fraction=0.2, test_fraction=0.2)


def _load(name: str, blob: bytes) -> None:
    with tempfile.TemporaryDirectory() as root:
        path = Path(root, name)
        path.write_bytes(blob)
        _checked(path, CONFIG)
        try:
            x = load_cases(path, (2, 4) if name.endswith(".ts") else (1, 4))
        except SwarmCNNError as error:
            assert "\n" not in str(error)
            return
        assert x.dtype.kind == "f" and x.shape[1:] == ((2, 4) if name.endswith(".ts") else (1, 4))


@FUZZ
@given(data=st.data())
def test_random_or_damaged_ts_files_load_or_are_refused(data):
    _load("d.ts", _mutated(data, VALID_TS))


@FUZZ
@given(data=st.data(), name=st.sampled_from(["d.tsv", "D_TRAIN", "D_TRAIN.txt"]))
def test_random_or_damaged_ucr_files_load_or_are_refused(data, name):
    blob = _mutated(data, VALID_TSV)
    _load(name, blob if name.endswith(".tsv") else blob.replace(b"\t", b" "))


_NUMBERS = st.integers(-5, 20) | st.integers(0, 10**30) | st.sampled_from(["x", "", "1e9", "-0", "4.0", "true"])


@FUZZ
@given(length=_NUMBERS, dimensions=_NUMBERS, labels=st.lists(st.text("ab?: ,", max_size=3), max_size=4),
       flags=st.lists(st.sampled_from(["true", "false", "TRUE", "maybe", ""]), min_size=3, max_size=3))
def test_ts_headers_claiming_anything_load_or_are_refused(length, dimensions, labels, flags):
    header = (f"@univariate {flags[0]}\n@dimensions {dimensions}\n@equalLength {flags[1]}\n@seriesLength {length}\n"
              f"@missing {flags[2]}\n@classLabel true {' '.join(labels)}\n@data\n")
    _load("d.ts", (header + CASES).encode())
