"""One gene of the search space's unit cube and the value it picks, both ways.

`SearchSpace.decode` reads each coordinate of a particle as a choice by its quantile (`pick` and its kin), so that
every value of a range is equally likely under uniform sampling; `SearchSpace.encode` goes back with the `gene_of`
functions, each giving the middle of the share of [0, 1) that picks a value, so that decoding that gene gives the
value again.
"""

from __future__ import annotations

import functools
import math


def pick(u: float, choices: tuple):
    return choices[min(int(u * len(choices)), len(choices) - 1)]


def pick_int(u: float, bounds: tuple[int, int]) -> int:
    low, high = bounds
    return low + min(int(u * (high - low + 1)), high - low)


def pick_log(u: float, bounds: tuple[int, int]) -> int:
    """A value of the half-octave grid low, 1.5 low, 2 low, 3 low ... (8..128: 8, 12, 16, 24, ..., 128).

    A grid rather than every integer: conv37 and conv38 are the same network for the search's purpose,
    and identical specs are trained once.
    """
    return pick(u, log_grid(*bounds))


@functools.cache
def log_grid(low: int, high: int) -> tuple[int, ...]:
    grid, k = [], 0
    while (value := round(low * 2 ** (k // 2) * (1.5 if k % 2 else 1))) < high:
        grid.append(value)
        k += 1
    return tuple(dict.fromkeys([*grid, high]))


def pick_dropout(u: float, maximum: float) -> float:
    """Dropout rates on a 0.05 grid, so that the swarm does not invent endless near-identical specs."""
    return min(round((0.05 + u * maximum) * 20), math.floor(maximum * 20)) / 20


def gene_of_index(index: int, count: int) -> float:
    """The middle of the index-th of count equal shares of [0, 1): the gene that `pick` reads as index."""
    return (index + 0.5) / count


def gene_of_int(value: int, bounds: tuple[int, int]) -> float:
    """The gene `pick_int` reads as value, or as the nearest end of its bounds."""
    low, high = bounds
    return gene_of_index(min(max(value, low), high) - low, high - low + 1)


def gene_of_choice(value: str, choices: tuple[str, ...]) -> float:
    """The gene `pick` reads as value, or as the first choice where value is not one."""
    return gene_of_index(choices.index(value) if value in choices else 0, len(choices))


def gene_of_nearest(value: int, choices: tuple[int, ...]) -> float:
    """The gene of the choice nearest to value on a log scale (features, sizes and windows are ratios)."""
    nearest = min(range(len(choices)), key=lambda k: abs(math.log(choices[k] / value)))
    return gene_of_index(nearest, len(choices))


def gene_of_dropout(rate: float, maximum: float) -> float:
    """The gene `pick_dropout` reads as rate (or as the nearest rate up to maximum), in [0, 1)."""
    return float(min(max((rate - 0.05) / maximum, 0.0), 1.0 - 1e-9)) if maximum else 0.0
