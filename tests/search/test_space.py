"""The search space: what pso and random search may propose, read from the unit cube and from TOML files."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from swarmcnn.designs import design
from swarmcnn.errors import SwarmCNNError
from swarmcnn.search.space import SearchSpace
from swarmcnn.spec import FC, GELU, BatchNorm, Conv, Dropout, GlobalPool, Pool, ReLU, Spec, Whiten

FEATURE_GRID = (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)  # the half-octave grid of the default 8..256
NEURON_GRID = (16, 24, 32, 48, 64, 96, 128, 192, 256)
ALMOST_ONE = 1 - 1e-6


def sample(space: SearchSpace, shape: tuple[int, ...], n: int, seed: int = 0) -> list[Spec]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng, shape) for _ in range(n)]


def count(spec: Spec, kind: type) -> int:
    return sum(isinstance(layer, kind) for layer in spec.layers)


def kinds(spec: Spec, kind: type) -> list:
    return [layer for layer in spec.layers if isinstance(layer, kind)]


# --- sampling and decoding ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)], ids=["8x8", "32x32"])
def test_default_space_samples_valid_specs_within_its_ranges(shape):
    space = SearchSpace()
    for spec in sample(space, shape, 200):
        spec.shapes(shape)  # raises if a layer cannot fit
        assert Spec.parse(str(spec)) == spec
        assert isinstance(spec.layers[0], (Conv, Whiten))
        assert 1 <= count(spec, Conv) <= 8  # 1..4 blocks of 1..2 convolutions
        assert 0 <= count(spec, FC) <= 2
        for conv in kinds(spec, Conv):
            assert conv.features in FEATURE_GRID and conv.size in (3, 5) and conv.stride == 1
        for fc in kinds(spec, FC):
            assert fc.neurons in NEURON_GRID
        for pool in kinds(spec, Pool):
            assert pool.kind in ("max", "avg") and pool.window in (2, 3) and pool.step == 2
        for dropout in kinds(spec, Dropout):
            assert 0 < dropout.p <= 0.5 and round(dropout.p * 20) == pytest.approx(dropout.p * 20)
        assert count(spec, Pool) <= 4 and count(spec, GlobalPool) <= 1 and count(spec, Whiten) <= 1
        assert not (count(spec, ReLU) and count(spec, GELU))  # one activation per network
        first_fc = next((i for i, layer in enumerate(spec.layers) if isinstance(layer, FC)), len(spec.layers))
        assert not any(isinstance(layer, (Conv, Pool)) for layer in spec.layers[first_fc:])


def test_the_lowest_corner_of_the_cube_is_the_smallest_network():
    space = SearchSpace()
    spec = space.decode(np.zeros(space.dimensions), (1, 8, 8))
    assert str(spec) == "conv8x3 bn relu maxpool2 dropout0.05"  # flatten head, no stem, relu, pool last


@pytest.mark.parametrize("high", [ALMOST_ONE, 1.0, 7.0], ids=["almost-one", "one", "outside"])
def test_the_highest_corner_of_the_cube_is_the_largest_network(high):
    space = SearchSpace()
    spec = space.decode(np.full(space.dimensions, high), (3, 32, 32))
    assert str(spec) == " ".join(["whiten2 gelu", *["conv256x5 bn gelu"] * 8, "gmp", *["fc256 gelu"] * 2])


def test_points_outside_the_cube_are_clipped_to_it():
    space = SearchSpace()
    assert space.decode(np.full(space.dimensions, -3.0), (1, 8, 8)) == space.decode(
        np.zeros(space.dimensions), (1, 8, 8)
    )


def test_decode_is_deterministic_and_sampling_repeats_with_the_seed():
    space = SearchSpace()
    position = np.random.default_rng(4).random(space.dimensions)
    assert space.decode(position, (1, 28, 28)) == space.decode(position.copy(), (1, 28, 28))
    assert sample(space, (1, 28, 28), 20, seed=4) == sample(space, (1, 28, 28), 20, seed=4)
    assert sample(space, (1, 28, 28), 20, seed=4) != sample(space, (1, 28, 28), 20, seed=5)


def test_sampling_covers_every_value_of_the_space():
    specs = sample(SearchSpace(), (3, 32, 32), 600, seed=1)
    conv_counts = Counter(count(spec, Conv) for spec in specs)
    assert set(conv_counts) == set(range(1, 9))  # 1 conv: one block of one; 8 convs: four blocks of two
    assert {count(spec, FC) for spec in specs} == {0, 1, 2}
    assert {c.size for spec in specs for c in kinds(spec, Conv)} == {3, 5}
    assert {c.features for spec in specs for c in kinds(spec, Conv)} == set(FEATURE_GRID)
    assert {f.neurons for spec in specs for f in kinds(spec, FC)} == set(NEURON_GRID)
    assert {p.kind for spec in specs for p in kinds(spec, Pool)} == {"max", "avg"}
    assert {p.window for spec in specs for p in kinds(spec, Pool)} == {2, 3}
    # features are drawn on a log scale: each grid value about as often as the others
    features = Counter(kinds(spec, Conv)[0].features for spec in specs)
    assert min(features.values()) > 600 / len(FEATURE_GRID) / 2
    assert {type(s.layers[0]) for s in specs} == {Conv, Whiten}
    assert {g.kind for s in specs for g in kinds(s, GlobalPool)} == {"avg", "max"}
    assert any(count(s, GlobalPool) == 0 for s in specs)  # flattened heads too


def test_a_block_pools_after_its_first_convolution_or_after_its_last():
    first = SearchSpace(blocks=(1, 1), convs_per_block=(2, 2), pool_places=("first",), stems=("none",))
    last = SearchSpace(blocks=(1, 1), convs_per_block=(2, 2), pool_places=("last",), stems=("none",))
    position = np.zeros(first.dimensions)
    assert str(first.decode(position, (1, 8, 8))).startswith("conv8x3 maxpool2 bn relu conv8x3 bn relu")
    assert str(last.decode(position, (1, 8, 8))).startswith("conv8x3 bn relu conv8x3 bn relu maxpool2")


@pytest.mark.parametrize("name", ["vgg-3block", "airbench", "airbench-small"])
def test_the_designs_are_points_of_the_default_space(name):
    """Reachable: the design's genes, set one by one, decode to it."""
    space = SearchSpace()
    assert str(space.decode(_genes_of(name, space), (3, 32, 32))) == str(design(name))


def _genes_of(name: str, space: SearchSpace) -> np.ndarray:
    """The position of a design, gene by gene (see SearchSpace.decode for their order)."""
    def at(value, choices):  # the middle of the quantile that picks value
        return (list(choices).index(value) + 0.5) / len(choices)

    from swarmcnn.search.space import BLOCK_GENES, FC_GENES, HEAD_GENES, _log_grid

    grid = _log_grid(*space.features)
    u = np.full(space.dimensions, 0.75)  # genes above 0.5: no pool / dropout / bn unless set below
    blocks = {"vgg-3block": (32, 64, 128), "airbench": (64, 256, 256), "airbench-small": (64, 128, 128)}[name]
    airbench = name.startswith("airbench")
    u[0] = at(3, range(space.blocks[0], space.blocks[1] + 1))
    u[1] = at(1 if name == "vgg-3block" else 0, range(space.fc_layers[0], space.fc_layers[1] + 1))
    u[2] = at("gmp" if airbench else "flatten", space.heads)
    u[3] = at("whiten2" if airbench else "none", space.stems)
    u[4] = at("gelu" if airbench else "relu", space.activations)
    for b, features in enumerate(blocks):
        g = HEAD_GENES + BLOCK_GENES * b
        u[g : g + BLOCK_GENES] = [at(features, grid), at(3, space.feature_sizes), at(2, (1, 2)), 0.25,
                                  at("max", space.pool_kinds) / 2, at(2, space.pool_windows), at(2, space.pool_strides),
                                  0.75, at("first" if airbench else "last", space.pool_places)]
    base = HEAD_GENES + BLOCK_GENES * space.max_blocks
    if name == "vgg-3block":  # fc128 relu dropout0.3, no bn
        u[base : base + FC_GENES] = [at(128, _log_grid(*space.neurons)), (0.3 - 0.05) / space.max_dropout / 2,
                                     0.75, 0.5]
    return u


def test_pools_that_would_shrink_the_picture_below_1x1_are_dropped():
    space = SearchSpace(blocks=(4, 4), pool_windows=(2,))
    every_pool = space.decode(np.zeros(space.dimensions), (1, 8, 8))  # each block asks for a pool
    assert count(every_pool, Pool) == 3  # 8 -> 4 -> 2 -> 1; the fourth is dropped
    assert every_pool.shapes((1, 8, 8))[-1].spatial == (1, 1)
    for spec in sample(space, (1, 8, 8), 200):
        assert count(spec, Conv) >= 4 and count(spec, Pool) <= 3
        assert min(spec.shapes((1, 8, 8))[-1].spatial, default=1) >= 1


def test_video_pools_that_would_shrink_the_frames_below_one_are_dropped():
    space = SearchSpace(blocks=(3, 3))
    spec = space.decode(np.zeros(space.dimensions), (1, 2, 16, 16))  # two frames: one pool of 2 fits
    assert count(spec, Pool) == 1
    assert spec.shapes((1, 2, 16, 16))[-1].spatial == (1, 8, 8)
    for spec in sample(space, (1, 2, 16, 16), 100):
        spec.shapes((1, 2, 16, 16))


def test_without_batchnorm_or_dropout_the_space_proposes_none():
    for spec in sample(SearchSpace(batchnorm=False), (1, 8, 8), 100):
        assert count(spec, BatchNorm) == 0
    for spec in sample(SearchSpace(dropout=False), (1, 8, 8), 100):
        assert count(spec, Dropout) == 0
    specs = sample(SearchSpace(), (1, 8, 8), 100)  # the defaults do propose both
    assert any(count(spec, BatchNorm) for spec in specs) and any(count(spec, Dropout) for spec in specs)


def test_dropout_rates_stay_within_max_dropout():
    for spec in sample(SearchSpace(max_dropout=0.2), (1, 8, 8), 100):
        assert all(0 < d.p <= 0.2 for d in kinds(spec, Dropout))


def test_a_max_dropout_just_below_one_gives_specs_that_survive_the_text_round_trip():
    for spec in sample(SearchSpace(max_dropout=0.99), (1, 8, 8), 100):
        assert Spec.parse(str(spec)) == spec


# --- TOML and dicts -------------------------------------------------------------------------------------


def write(tmp_path, text: str):
    path = tmp_path / "space.toml"
    path.write_text(text)
    return path


def test_from_toml_reads_a_space_table(tmp_path):
    path = write(tmp_path, '[space]\nblocks = [2, 4]\nfeature_sizes = [3]\npool_kinds = ["max"]\nbatchnorm = false\n')
    space = SearchSpace.from_toml(path)
    assert space == SearchSpace(blocks=(2, 4), feature_sizes=(3,), pool_kinds=("max",), batchnorm=False)


def test_from_toml_reads_top_level_keys(tmp_path):
    path = write(tmp_path, "neurons = [32, 64]\nfc_layers = [1, 1]\nmax_dropout = 0.25\n")
    assert SearchSpace.from_toml(str(path)) == SearchSpace(neurons=(32, 64), fc_layers=(1, 1), max_dropout=0.25)


def test_an_unknown_key_is_named_with_the_file(tmp_path):
    path = write(tmp_path, "[space]\nblocks = [1, 2]\nconv_layers = [1, 3]\n")
    with pytest.raises(SwarmCNNError, match="unknown key 'conv_layers'") as error:
        SearchSpace.from_toml(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("blocks = [3, 1]", "blocks"),
        ("features = [0, 8]", "features"),
        ('pool_kinds = ["min"]', "pool_kinds"),
        ("max_dropout = 1.0", "max_dropout"),
        ("fc_layers = [-1, 2]", "fc_layers"),
        ("feature_sizes = []", "feature_sizes"),
        ("pool_windows = [0, 2]", "pool_windows"),
    ],
)
def test_an_invalid_value_is_named_by_its_field(tmp_path, line, field):
    with pytest.raises(SwarmCNNError, match=f"'{field}'"):
        SearchSpace.from_toml(write(tmp_path, f"[space]\n{line}\n"))


def test_an_invalid_value_in_a_file_names_the_file(tmp_path):
    path = write(tmp_path, "[space]\nblocks = [3, 1]\n")
    with pytest.raises(SwarmCNNError, match="'blocks'") as error:
        SearchSpace.from_toml(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("line", ["blocks = 3", "blocks = [1, 2, 3]", "feature_sizes = 3"])
def test_a_malformed_value_is_named_by_its_field(tmp_path, line):
    field = line.split()[0]
    with pytest.raises(SwarmCNNError, match=f"'{field}'"):
        SearchSpace.from_toml(write(tmp_path, f"[space]\n{line}\n"))


def test_a_fractional_count_is_rejected_when_read(tmp_path):
    with pytest.raises(SwarmCNNError, match="'blocks'"):
        SearchSpace.from_toml(write(tmp_path, "[space]\nblocks = [1.5, 2]\n"))


def test_a_missing_file_is_named(tmp_path):
    path = tmp_path / "nowhere.toml"
    with pytest.raises(SwarmCNNError, match="does not exist") as error:
        SearchSpace.from_toml(path)
    assert str(path) in str(error.value)


def test_invalid_toml_is_named(tmp_path):
    path = write(tmp_path, "[space\nblocks = [1, 2]\n")
    with pytest.raises(SwarmCNNError, match="not valid TOML") as error:
        SearchSpace.from_toml(path)
    assert str(path) in str(error.value)


def test_a_directory_instead_of_a_file_is_named(tmp_path):
    with pytest.raises(SwarmCNNError, match=re.escape(str(tmp_path))):
        SearchSpace.from_toml(tmp_path)


@pytest.mark.parametrize(
    "space",
    [
        SearchSpace(),
        SearchSpace(blocks=(2, 5), feature_sizes=(3,), pool_kinds=("avg",), dropout=False, max_dropout=0.3),
    ],
    ids=["defaults", "custom"],
)
def test_to_dict_and_from_dict_round_trip(space):
    assert SearchSpace.from_dict(space.to_dict()) == space


# --- signals --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "sizes"),
    [(8, (3,)), (20, (3, 5)), (29, (3, 5, 7)), (150, (3, 5, 7, 9, 15, 25)), (1000, (3, 5, 7, 9, 15, 25, 41))],
)
def test_the_space_for_a_signal_proposes_odd_feature_sizes_up_to_a_quarter_of_its_length(length, sizes):
    space = SearchSpace.default_for((1, length))
    assert space.feature_sizes == sizes
    proposed = {c.size for spec in sample(space, (1, length), 300, seed=2) for c in kinds(spec, Conv)}
    assert proposed == set(sizes)  # every one of them, the cap included


@pytest.mark.parametrize("shape", [(1, 8), (3, 9), (12, 29), (1, 150), (6, 896), (2, 1000)],
                         ids=lambda s: "x".join(map(str, s)))
def test_the_space_for_a_signal_samples_valid_specs_for_lengths_from_8_to_1000(shape):
    space = SearchSpace.default_for(shape)
    specs = sample(space, shape, 150)
    for spec in specs:
        shapes = spec.shapes(shape)  # raises if a layer cannot fit
        assert all(len(s.spatial) == 1 and s.spatial[0] >= 1 for s in shapes if s.spatial)
        assert Spec.parse(str(spec)) == spec
        assert all(conv.size % 2 == 1 and conv.size <= max(3, shape[1] // 4) for conv in kinds(spec, Conv))
    assert any(kinds(spec, Pool) for spec in specs)  # pools that fit are proposed


def test_the_default_space_for_pictures_and_clips_is_the_default_space():
    assert SearchSpace.default_for((3, 32, 32)) == SearchSpace() == SearchSpace.default_for((1, 8, 16, 16))


def test_the_space_for_a_signal_round_trips_through_its_dict():
    space = SearchSpace.default_for((6, 896))
    assert SearchSpace.from_dict(space.to_dict()) == space
