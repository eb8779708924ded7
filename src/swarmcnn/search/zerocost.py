"""Scores of an untrained network that are said to predict how well it will train: a pre-filter that costs one
forward (and backward) pass of one batch, instead of a training.

- `naswot`: Mellor et al., "Neural architecture search without training", ICML 2021. The units after each
  activation split a batch of inputs into regions by which of them are active; a network whose regions tell the
  inputs apart (their binary codes differ) scores high: log |det K| with K[i, j] the number of units on which
  inputs i and j agree.
- `synflow`: Tanaka et al., "Pruning neural networks without any data by iteratively conserving synaptic
  flow", NeurIPS 2020, as a zero-cost proxy (Abdelfattah et al., ICLR 2021): the sum over weights of
  |weight x gradient| of the output of the network with every weight made positive, for an input of ones.

Both are known to follow the number of parameters closely (Ning et al. 2021; White et al., "A deeper look at
zero-cost proxies", 2022); benchmarks/ranking.py measures how they rank networks on the data at hand.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

ACTIVATIONS = (nn.ReLU, nn.GELU)


@torch.no_grad()
def naswot(model: nn.Module, inputs: torch.Tensor) -> float:
    """log |det K| of the activation codes of a batch (normalised inputs; 2 to a few hundred of them). Whitening
    layers must have been computed first (`swarmcnn.whitening.fit_whitening`): a zero one codes every input
    alike."""
    codes: list[torch.Tensor] = []

    def record(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        codes.append((output.flatten(1) > 0).double())

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, ACTIVATIONS)]
    was_training = model.training
    model.eval()
    try:
        model(inputs)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    if not codes:
        return 0.0
    binary = torch.cat(codes, dim=1)
    agree = binary @ binary.T + (1 - binary) @ (1 - binary).T
    sign, logdet = torch.linalg.slogdet(agree)
    return float(logdet) if sign > 0 else float("-inf")


def synflow(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """The synaptic flow of a copy of model with |weights|, in float64 (its products overflow float32)."""
    positive = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for parameter in positive.parameters():
            parameter.abs_()
    for parameter in positive.parameters():
        parameter.requires_grad_(True)
    positive.zero_grad()
    positive(torch.ones(1, *input_shape, dtype=torch.float64)).sum().backward()
    with torch.no_grad():
        total = sum((p * p.grad).abs().sum() for p in positive.parameters() if p.grad is not None)
        return float(torch.log(torch.as_tensor(total, dtype=torch.float64).clamp(min=1e-300)))
