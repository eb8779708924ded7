"""Where the final network came from: a starting design, or a find of the swarm (which strategy, generation and
particle), and how far it is from the nearest design, in layers.

A search whose final network is always the design it started from has found nothing; this is what says so,
in the journal, `runs show`, the report and the model's model.json.
"""

from __future__ import annotations

from collections.abc import Mapping

from swarmcnn.search.journal import EvaluationRecord
from swarmcnn.spec import Spec

DESIGN = "design"
SWARM = "swarm"


def layer_distance(a: Spec, b: Spec) -> int:
    """The fewest layers to insert, remove or change to turn one spec into the other (Levenshtein's distance over
    the layer tokens): 0 for the same network, 1 for one layer of other features."""
    first, second = [str(layer) for layer in a.layers], [str(layer) for layer in b.layers]
    previous = list(range(len(second) + 1))
    for i, token in enumerate(first, start=1):
        current = [i]
        for j, other in enumerate(second, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (token != other)))
        previous = current
    return previous[-1]


def nearest_design(spec: Spec, designs: Mapping[str, Spec]) -> tuple[str, int] | None:
    """The design closest to spec, by `layer_distance`, with the distance (the first such by name on a tie)."""
    distances = sorted((layer_distance(spec, design), name) for name, design in designs.items())
    return (distances[0][1], distances[0][0]) if distances else None


def provenance(record: EvaluationRecord, designs: Mapping[str, Spec], strategy: str) -> dict:
    """JSON for the journal and model.json: found_by ('design' or 'swarm'), the design's name or the strategy,
    generation and origin (particle, trial ...) of the proposal, and the nearest design with its distance."""
    spec = Spec.parse(record.spec)
    nearest = nearest_design(spec, designs)
    found = {"nearest_design": nearest[0], "design_distance": nearest[1]} if nearest else {}
    origin = dict(record.origin or {})
    origin.pop("score", None)
    origin.pop("from_rung", None)
    if nearest is not None and nearest[1] == 0:
        return {"found_by": DESIGN, "design": nearest[0], **found}
    return {"found_by": SWARM, "strategy": strategy, "generation": record.generation, "origin": origin, **found}


def describe(found: Mapping) -> str:
    """One line for people: 'the design airbench-small', 'a find of pso (generation 3, particle 5), 2 layers from
    airbench-small'."""
    if found.get("found_by") == DESIGN:
        return f"the design {found.get('design')}"
    where = ", ".join(f"{key} {value}" for key, value in (found.get("origin") or {}).items())
    text = f"a find of {found.get('strategy')} (generation {found.get('generation')}{', ' + where if where else ''})"
    if found.get("nearest_design") is not None:
        layers = found["design_distance"]
        text += f", {layers} layer{'s' if layers != 1 else ''} from {found['nearest_design']}"
    return text
