"""Where the final network came from: a design or a swarm find, and how far from the nearest design."""

import pytest

from swarmcnn.designs import design
from swarmcnn.search.journal import EvaluationRecord
from swarmcnn.search.provenance import describe, layer_distance, nearest_design, provenance
from swarmcnn.spec import parse


def _record(spec: str, generation: int = 3, origin: dict | None = None) -> EvaluationRecord:
    return EvaluationRecord(spec, "ok", "", 0.9, 0.9, 0.3, 1000, 1000, 2, 1.0, generation=generation, origin=origin)


@pytest.mark.parametrize(
    "a, b, distance",
    [
        ("conv8x3 relu", "conv8x3 relu", 0),
        ("conv8x3 relu", "conv16x3 relu", 1),  # one layer changed
        ("conv8x3 relu", "conv8x3 bn relu", 1),  # one inserted
        ("conv8x3 bn relu maxpool2", "conv8x3 relu", 2),  # two removed
        ("conv8x3", "fc4 relu", 2),
    ],
)
def test_the_layer_distance_counts_the_fewest_layer_edits(a, b, distance):
    assert layer_distance(parse(a), parse(b)) == distance == layer_distance(parse(b), parse(a))


def test_a_design_proposed_by_anyone_is_found_by_design():
    designs = {"vgg-3block": design("vgg-3block"), "lenet5": design("lenet5")}
    found = provenance(_record(str(design("lenet5")), origin={"particle": 2}), designs, "pso")
    assert found == {"found_by": "design", "design": "lenet5", "nearest_design": "lenet5", "design_distance": 0}
    assert describe(found) == "the design lenet5"


def test_a_swarm_find_names_its_strategy_generation_particle_and_nearest_design():
    designs = {"vgg-3block": design("vgg-3block"), "lenet5": design("lenet5")}
    near_lenet = str(design("lenet5")).replace("conv16x5", "conv24x5")
    found = provenance(_record(near_lenet, generation=4, origin={"particle": 5, "score": 0.8, "from_rung": 1}), designs,
                       "pso")
    assert found == {"found_by": "swarm", "strategy": "pso", "generation": 4, "origin": {"particle": 5},
                     "nearest_design": "lenet5", "design_distance": 1}
    assert describe(found) == "a find of pso (generation 4, particle 5), 1 layer from lenet5"


def test_without_designs_there_is_no_nearest_one():
    assert nearest_design(parse("conv8x3"), {}) is None
    found = provenance(_record("conv8x3 relu"), {}, "random")
    assert found["found_by"] == "swarm" and "nearest_design" not in found
