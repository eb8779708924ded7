"""Several trainings of one network as one model: the average of their class probabilities.

Why: a training far longer than its network needs does not help it, and one training's test accuracy on a small set
moves by several points with its seed. So a training is split into members where each member still gets the
optimiser steps and epochs measured to make it as good alone as the one long training (`members_for`); where it
would get fewer, one long training is better (benchmarks/members.py; the figures at MEMBER_STEPS).

`Ensemble` is a plain torch.nn.Module of plain members (nn.Sequential): it runs, saves and exports without swarmcnn.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from swarmcnn.errors import SwarmCNNError

# The most members: InceptionTime's five networks (Ismail Fawaz et al. 2020), the ensemble size its paper found
# enough for the UCR archive's variance.
MAX_MEMBERS = 5
# The shortest member: a split is made only where each member trains as long as trainings measured to be as good
# alone as the one training of the whole time, in optimiser steps and in epochs (an epoch of 36 series is 2 steps,
# one of 4,000 pictures 63). Measured one training against three of a third of its time each (benchmarks/members.py,
# 3 seeds where not said; members' steps / epochs): as good alone, and better averaged, at 2,900 / 61 (vgg-3block on
# digits: 99.51 one, 99.75 averaged), 8,400 / 176 (lenet5 on digits: 98.27, 99.14), 11,000 / 5,600 (lenet1d on
# ArrowHead: 80.57, 82.29) and about 2,000 / 220 (lenet1d on SelfRegulationSCP1: 85.9, 88.7); as good at 3,500 / 55
# (airbench-small on mnist-5k, 1 seed: 99.1, 99.2); worse alone at 360 steps (fcn on OSULeaf: 98.21 one, 96.01
# averaged) and at 26 epochs (airbench-small on cifar-500, 1 seed: 74.95 one, members 73.33 alone, 75.95 averaged:
# a gain, but from members each 1.6 points short, which a larger set would not make up). 2,000 is about the
# shortest member measured as good alone on a set below 100%: on this few seeds the rule errs towards one training.
MEMBER_STEPS = 2000
MEMBER_EPOCHS = 50


class Ensemble(nn.Module):
    """Members of one architecture; its output is the log of their mean class probability, so that a softmax of it
    (what every caller applies to a network's scores) is that mean, and a cross-entropy of it is the mean's."""

    def __init__(self, members: Iterable[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        if len(self.members) < 2:
            raise ValueError(f"an ensemble needs two members or more, got {len(self.members)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = []
        for member in self.members:  # a loop, not a comprehension: TorchScript scripts it
            scores.append(member(x).float().log_softmax(1))
        return torch.logsumexp(torch.stack(scores), 0) - math.log(len(scores))


def check_members(members: int, name: str = "--members ") -> None:
    """Refuse a count of members a model cannot hold (model.json allows 1 to MAX_MEMBERS), naming the option."""
    if isinstance(members, bool) or not isinstance(members, int) or not 1 <= members <= MAX_MEMBERS:
        raise SwarmCNNError(f"{name}{members!r:.40}: a model averages a whole number of trainings, 1 to "
                            f"{MAX_MEMBERS}")


def members_of(module: nn.Module) -> list[nn.Module]:
    """The trainings that make up a model: an ensemble's members, or the network itself."""
    return list(module.members) if isinstance(module, Ensemble) else [module]


def first_member(module: nn.Module) -> nn.Module:
    """The network whose layers a layer-by-layer view shows: the first member of an ensemble, or the network."""
    return members_of(module)[0]


def combine(modules: list[nn.Module]) -> nn.Module:
    """One model of the trained modules: the module itself when there is one."""
    return modules[0] if len(modules) == 1 else Ensemble(modules)


def members_for(epochs: int, steps_per_epoch: int) -> int:
    """How many members a training of `epochs` epochs of `steps_per_epoch` optimiser steps each becomes: as many as
    give each member MEMBER_STEPS and MEMBER_EPOCHS, MAX_MEMBERS at most."""
    fitting = min(epochs // MEMBER_EPOCHS, epochs * steps_per_epoch // MEMBER_STEPS)
    return max(1, min(MAX_MEMBERS, fitting))


def member_seed(seed: int, member: int) -> int:
    """Member k's seed: the training's own for the first, so that a model of one member is the plain training."""
    return seed + member
