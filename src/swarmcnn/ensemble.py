"""Several trainings of one network as one model: the average of their class probabilities.

Why: a training far longer than a small data set needs does not help it, and one training's test accuracy on such
a set moves by several points with its seed. Measured on ucr-dev (lenet1d, 3 seeds, equal time): on ArrowHead one
training of 60 s (about 7,500 epochs of its 36 series) tested at 76.0%, three of 20 s averaged at 80.0; where the
time holds only a few hundred epochs, one long training is better (fcn on OSULeaf: 98.9 against 96.3 for three
of 20 s, 230 epochs against 75). So a training is split into members only where each member still gets as many
epochs as the published deep networks for such sets were trained for (`members_for`).

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
# The fewest epochs a member trains: the length of the trainings behind the UCR baselines (hfawaz/dl-4-tsc: ResNet
# 1,500 epochs, FCN 2,000): a time that holds several of them spends them on more members rather than on one.
MEMBER_EPOCHS = 1500


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


def members_for(epochs: int) -> int:
    """How many members a training of `epochs` epochs becomes: one per MEMBER_EPOCHS, MAX_MEMBERS at most."""
    return max(1, min(MAX_MEMBERS, epochs // MEMBER_EPOCHS))


def member_seed(seed: int, member: int) -> int:
    """Member k's seed: the training's own for the first, so that a model of one member is the plain training."""
    return seed + member
