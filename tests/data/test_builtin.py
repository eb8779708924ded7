"""Built-in data sets, the DataConfig checks and how load_data dispatches on the source."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from swarmcnn.data import BUILTIN, DataConfig, Dataset, load_data
from swarmcnn.data.builtin import digits
from swarmcnn.data.splits import split_indices
from swarmcnn.errors import DataError

LOADABLE = ("digits", "shapes")


@pytest.fixture(scope="module", params=LOADABLE)
def dataset(request) -> Dataset:
    return load_data(request.param)


def test_builtin_names_are_published():
    assert BUILTIN == ("digits", "shapes", "moving-digits", "bumps")


def test_digits_are_1797_uint8_8x8_pictures_of_ten_classes():
    data = load_data("digits")
    assert data.input_shape == (1, 8, 8)
    assert data.class_names == tuple("0123456789")
    assert len(data.train) + len(data.val) + len(data.test) == 1797
    assert data.train.x.dtype == torch.uint8 and data.train.y.dtype == torch.int64
    assert data.source == "digits"


def test_digits_values_are_sixteenths_scaled_to_bytes():
    values = set(np.unique(digits().x).tolist())
    assert values <= {round(v * 255 / 16) for v in range(17)}
    assert {0, 255} <= values


def test_shapes_are_1200_balanced_16x16_pictures_of_o_and_x():
    data = load_data("shapes")
    assert data.input_shape == (1, 16, 16)
    assert data.class_names == ("O", "X")
    y = torch.cat([data.train.y, data.val.y, data.test.y])
    assert y.bincount().tolist() == [600, 600]


def test_shapes_are_drawn_at_the_configured_image_size():
    data = load_data("shapes", DataConfig(image_size=(24, 20)))
    assert data.input_shape == (1, 24, 20)
    assert data.train.x.shape[1:] == (1, 24, 20)


def test_shapes_smaller_than_8_pixels_are_refused():
    with pytest.raises(DataError, match="at least 8x8, got 4x4"):
        load_data("shapes", DataConfig(image_size=(4, 4)))


def test_digits_are_resized_when_an_image_size_is_given():
    data = load_data("digits", DataConfig(image_size=(16, 16)))
    assert data.input_shape == (1, 16, 16)
    assert data.train.x.dtype == torch.uint8


def test_splits_are_contiguous_uint8_and_int64(dataset):
    for split in (dataset.train, dataset.val, dataset.test):
        assert split.x.dtype == torch.uint8 and split.x.is_contiguous()
        assert split.y.dtype == torch.int64 and split.y.shape == (len(split),)
        assert split.x.shape == (len(split), *dataset.input_shape)


@pytest.mark.parametrize("name", LOADABLE)
def test_two_loads_are_equal(name):
    first, second = load_data(name), load_data(name)
    for a, b in zip((first.train, first.val, first.test), (second.train, second.val, second.test), strict=True):
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


def test_split_seed_changes_the_split_but_not_the_pictures():
    first, second = load_data("shapes"), load_data("shapes", DataConfig(split_seed=1))
    assert not torch.equal(first.test.x, second.test.x)
    everything = [torch.cat([d.train.x, d.val.x, d.test.x]).flatten(1) for d in (first, second)]
    assert torch.equal(everything[0].unique(dim=0), everything[1].unique(dim=0))


def test_every_class_is_in_every_split(dataset):
    classes = len(dataset.class_names)
    for split in (dataset.train, dataset.val, dataset.test):
        assert (split.y.bincount(minlength=classes) > 0).all()


def test_split_sizes_follow_the_fractions(dataset):
    total = len(dataset.train) + len(dataset.val) + len(dataset.test)
    assert abs(len(dataset.test) - 0.15 * total) <= len(dataset.class_names)
    assert abs(len(dataset.val) - 0.15 * total) <= len(dataset.class_names)


def test_splits_of_digits_do_not_overlap_and_cover_everything():
    y = digits().y
    train, val, test = split_indices(y, tuple("0123456789"), 0.15, 0.15, 0, "digits")
    together = np.concatenate([train, val, test])
    assert len(together) == len(y) and set(together.tolist()) == set(range(len(y)))


def test_unknown_source_lists_the_builtins_and_suggests_a_close_one():
    with pytest.raises(DataError) as caught:
        load_data("digit")
    message = str(caught.value)
    assert "'digit'" in message and "digits, shapes, moving-digits" in message
    assert "did you mean 'digits'?" in message


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"test_fraction": -0.1}, "test_fraction"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "val_fraction + test_fraction"),
        ({"image_size": (0, 28)}, "image_size"),
        ({"image_size": (28,)}, "image_size"),
        ({"split_seed": -1}, "split_seed"),
    ],
)
def test_bad_config_values_name_the_field(settings, field):
    with pytest.raises(DataError, match=field.replace("+", r"\+")):
        DataConfig(**settings)


def test_image_size_read_back_from_json_as_a_list_becomes_a_tuple():
    assert DataConfig(image_size=[28, 32]).image_size == (28, 32)


def test_zero_test_fraction_gives_an_empty_test_split():
    data = load_data("shapes", DataConfig(test_fraction=0.0))
    assert len(data.test) == 0 and data.test.x.shape == (0, 1, 16, 16)
    assert len(data.train) + len(data.val) == 1200
