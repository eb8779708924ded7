"""The .ts format of sktime / aeon and the UEA & UCR archives, read by swarmcnn's own parser: headers, channels,
string labels, missing values, unequal lengths, the source's own split, and one error naming the line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from swarmcnn.data import DataConfig, load_data
from swarmcnn.data.ts import read_ts
from swarmcnn.errors import DataError

HEADER = """# a comment before the header
@problemName Tiny
@timeStamps false
@missing {missing}
@univariate {univariate}
@dimensions {dimensions}
@equalLength {equal}
{length}@classLabel true walk run
@data
"""


def write_ts(path: Path, cases: list[str], dimensions: int = 1, equal: bool = True, length: int | None = None,
             missing: bool = False) -> Path:
    header = HEADER.format(missing=str(missing).lower(), univariate=str(dimensions == 1).lower(),
                           dimensions=dimensions, equal=str(equal).lower(),
                           length=f"@seriesLength {length}\n" if length else "")
    path.write_text(header + "\n".join(cases) + "\n")
    return path


def _cases(count: int, channels: int = 1, length: int = 6) -> list[str]:
    """Cases alternating walk / run, each channel's values rising from the case's index."""
    lines = []
    for i in range(count):
        fields = [",".join(str(i + c + t / 10) for t in range(length)) for c in range(channels)]
        lines.append(":".join(fields) + (":walk" if i % 2 == 0 else ":run"))
    return lines


def test_a_multivariate_ts_file_reads_as_channels_first_float32_with_its_string_labels(tmp_path):
    path = write_ts(tmp_path / "tiny.ts", _cases(20, channels=3), dimensions=3, length=6)
    series = read_ts(path)
    assert series.classes == ("walk", "run") and series.labels[:2] == ["walk", "run"]
    assert series.channels == 3 and series.lengths[:3] == [6, 6, 6]
    data = load_data(str(path), DataConfig(val_fraction=0.2, test_fraction=0.2))
    assert data.input_shape == (3, 6) and data.class_names == ("walk", "run")  # @classLabel's order
    assert data.train.x.dtype.is_floating_point and str(data.train.x.dtype) == "torch.float32"
    row = next(i for i in range(len(data.train)) if float(data.train.x[i, 0, 0]) == 4.0)  # the case of index 4
    assert np.allclose(data.train.x[row].numpy(), [[4 + c + t / 10 for t in range(6)] for c in range(3)])
    assert int(data.train.y[row]) == 0  # walk
    assert data.signal.length == 6 and data.signal.resampled == 0 and data.signal.filled == 0


def test_missing_values_are_filled_along_time_and_counted(tmp_path):
    cases = ["1,?,3,4:walk", "?,2,2,2:run", "5,6,7,?:walk", "1,2,NaN,?:run"] * 3
    path = write_ts(tmp_path / "gaps.ts", cases, missing=True)
    data = load_data(str(path), DataConfig(val_fraction=0.25, test_fraction=0.25))
    values = {tuple(np.round(x[0].numpy(), 3)) for x in [*data.train.x, *data.val.x, *data.test.x]}
    assert values == {(1, 2, 3, 4), (2, 2, 2, 2), (5, 6, 7, 7), (1, 2, 2, 2)}  # inside: interpolated; ends: held
    assert data.signal.filled == 5 * 3


def test_unequal_lengths_are_resampled_to_the_longest_or_to_length_and_counted(tmp_path):
    cases = ["0,1,2,3,4:walk", "0,4:run", "0,2,4:walk", "4,3,2,1,0:run"] * 3
    path = write_ts(tmp_path / "ragged.ts", cases, equal=False)
    data = load_data(str(path), DataConfig(val_fraction=0.25, test_fraction=0.25))
    assert data.input_shape == (1, 5)
    values = {tuple(np.round(x[0].numpy(), 3)) for x in [*data.train.x, *data.val.x, *data.test.x]}
    assert values == {(0, 1, 2, 3, 4), (4, 3, 2, 1, 0)}  # 0,4 and 0,2,4 stretched linearly over the same span
    assert data.signal.resampled == 6 and (data.signal.shortest, data.signal.longest) == (2, 5)
    assert "6 of 12 series of 2-5 instants resampled to 5" in data.signal.describe()
    shorter = load_data(str(path), DataConfig(val_fraction=0.25, test_fraction=0.25, length=3))
    assert shorter.input_shape == (1, 3) and shorter.signal.resampled == 9  # all but the 0,2,4 ones


def test_train_and_test_files_keep_their_own_split_and_validation_comes_out_of_train(tmp_path):
    write_ts(tmp_path / "Tiny_TRAIN.ts", _cases(20), length=6)
    write_ts(tmp_path / "Tiny_TEST.ts", _cases(8), length=6)
    for source in (tmp_path, tmp_path / "Tiny_TRAIN.ts"):
        data = load_data(str(source), DataConfig(val_fraction=0.2))
        assert (len(data.train), len(data.val), len(data.test)) == (16, 4, 8)
        assert sorted(float(x[0, 0]) for x in data.test.x) == list(range(8))  # the TEST file, whole
        assert data.signal.series == 28


def test_the_longest_series_of_the_test_file_sets_the_length_too(tmp_path):
    write_ts(tmp_path / "Tiny_TRAIN.ts", ["0,1:walk", "1,0:run"] * 4, equal=False)
    write_ts(tmp_path / "Tiny_TEST.ts", ["0,1,2,3:walk", "1,0:run"], equal=False)
    data = load_data(str(tmp_path))
    assert data.input_shape == (1, 4) and np.allclose(data.test.x[0, 0].numpy(), [0, 1, 2, 3])


def test_a_test_label_the_training_file_lacks_is_refused_naming_the_file_and_line(tmp_path):
    write_ts(tmp_path / "Tiny_TRAIN.ts", ["0,1:walk", "1,0:run"] * 4)
    test = tmp_path / "Tiny_TEST.ts"
    test.write_text("@classLabel true walk run jump\n@data\n0,1:walk\n1,1:jump\n")
    with pytest.raises(DataError, match=r"Tiny_TEST.ts' line 4: class 'jump' is not one of the training classes"):
        load_data(str(tmp_path))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("@classLabel true a b\n@data\n1,2:a\n1,x,3:b\n", ["line 4", "channel 1, value 2", "'x' is not a number"]),
        ("@classLabel true a b\n@data\n1,2:a\n1,2:c\n", ["line 4", "label 'c'", "a, b"]),
        ("@dimensions 2\n@classLabel true a b\n@data\n1,2:3,4:a\n1,2:b\n", ["line 5", "1 channel(s)", "says 2"]),
        ("@classLabel true a b\n@data\n1,2:a\n:b\n", ["line 4", "an empty series"]),
        ("@classLabel true a b\n@data\n1,2:a\n1,,2:b\n", ["line 4", "value 2", "empty value"]),
        ("@classLabel true a b\n@data\n?,?:a\n", ["line 3", "every one of its 2 values is missing"]),
        ("@classLabel true a b\n@data\n1,inf:a\n", ["line 3", "beyond float32"]),
        ("@seriesLength 3\n@classLabel true a b\n@data\n1,2,3:a\n1,2:b\n", ["line 5", "@seriesLength 3"]),
        ("@problemname x\n@classlable true a\n@data\n", ["line 2", "'@classlable'", "did you mean 'classlabel'"]),
        ("@univariate maybe\n", ["line 1", "must be true or false", "'maybe'"]),
        ("@classLabel true a a\n@data\n", ["line 1", "label 'a' twice"]),
        ("@classLabel true a\n", ["no '@data' line"]),
        ("@data\n1,2:a\n", ["no '@classLabel' line"]),
        ("@timeStamps true\n@classLabel true a b\n@data\n", ["line 1", "timestamped"]),
        ("@targetLabel true\n@classLabel false\n@data\n", ["line 1", "regression"]),
        ("@univariate true\n@dimensions 3\n@classLabel true a\n@data\n", ["line 2", "one channel"]),
        ("1,2,3:a\n", ["line 1", "a case before '@data'"]),
        ("@classLabel true a b\n@data\n", ["holds no cases"]),
        ("@classLabel true a b\n@data\n1,2:a\n@missing true\n", ["line 4", "header line after '@data'"]),
    ],
)
def test_a_malformed_ts_file_ends_in_one_error_naming_the_file_and_line(tmp_path, text, words):
    path = tmp_path / "bad.ts"
    path.write_text(text)
    with pytest.raises(DataError) as caught:
        read_ts(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert all(word in message for word in words), message


def test_a_series_length_of_a_billion_is_refused_before_anything_is_allocated(tmp_path):
    path = write_ts(tmp_path / "huge.ts", _cases(40), length=10**9)
    with pytest.raises(DataError, match="1,000,000,000|@seriesLength 1000000000") as caught:
        read_ts(path)
    assert "\n" not in str(caught.value)


def test_cases_without_labels_read_for_predicting_but_cannot_be_trained_on(tmp_path):
    path = tmp_path / "unlabelled.ts"
    path.write_text("@classLabel false\n@data\n1,2,3\n3,2,1\n")
    series = read_ts(path)
    assert series.labels is None and len(series.cases) == 2
    with pytest.raises(DataError, match="no class labels"):
        load_data(str(path))
