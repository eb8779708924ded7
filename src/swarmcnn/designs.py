"""Hand-designed networks by name: the known-good designs every search starts from and is measured against.

- `lenet5`: LeCun et al., "Gradient-based learning applied to document recognition" (1998), in its common
  modern form (ReLU, max pooling).
- `vgg-small`: two VGG-style blocks (Simonyan & Zisserman, 2015) of two 3x3 convolutions with batch norm,
  then a max pool each, and one hidden fully connected layer.
- `vgg-3block`: the same with a third block of 128 features: on photos, where the small VGG design's 8x8 maps
  after two pools still hold parts of objects, the third block sees whole ones. On cifar10-dev (2,000 photos per
  class, five minutes on two cores, one seed, side by side) it reached 82.1% test accuracy in 17 epochs where
  `vgg-small` reached 79.2% in 22; it costs about 1.5 times the small design's time per image.

- `airbench`: the network of airbench94 (Jordan, "94% on CIFAR-10 in 3.29 seconds on a single GPU", 2024) in the
  spec grammar: a fixed 2x2 patch-whitening layer, three blocks of `conv pool bn gelu conv bn gelu` (64, 256 and
  256 features; pooling right after a block's first convolution, so that its second runs on quarter-size maps),
  a global max pool and the classifier. airbench's own training tweaks outside the grammar (batch norm without
  a learned scale, identity-initialised convolutions, a scaled-down classifier) are left out: it is trained by
  swarmcnn's recipe, as every other network is.
- `airbench-small`: the same with 64, 128 and 128 features, the widths of airbench93 (about a quarter of the
  FLOPs of airbench94 on CIFAR-10).

`lenet5` and `vgg-small` fit any input of at least 4x4 (video: 4 frames), `vgg-3block` one of 8x8 (8 frames);
`fitting` drops those that do not fit a smaller one. A search starts from LeNet-5 and the deepest VGG-style design
that fits (`starting`).
"""

from __future__ import annotations

from swarmcnn.errors import SpecError, SwarmCNNError, did_you_mean
from swarmcnn.spec import Spec

DESIGNS = {
    "lenet5": "conv6x5 relu maxpool2 conv16x5 relu maxpool2 fc120 relu fc84 relu",
    "vgg-small": "conv32x3 bn relu conv32x3 bn relu maxpool2 conv64x3 bn relu conv64x3 bn relu maxpool2 "
    "fc128 relu dropout0.3",
    "vgg-3block": "conv32x3 bn relu conv32x3 bn relu maxpool2 conv64x3 bn relu conv64x3 bn relu maxpool2 "
    "conv128x3 bn relu conv128x3 bn relu maxpool2 fc128 relu dropout0.3",
    "airbench": "whiten2 gelu conv64x3 maxpool2 bn gelu conv64x3 bn gelu conv256x3 maxpool2 bn gelu conv256x3 bn gelu "
    "conv256x3 maxpool2 bn gelu conv256x3 bn gelu gmp",
    "airbench-small": "whiten2 gelu conv64x3 maxpool2 bn gelu conv64x3 bn gelu conv128x3 maxpool2 bn gelu conv128x3 bn "
    "gelu conv128x3 maxpool2 bn gelu conv128x3 bn gelu gmp",
}


def design(name: str) -> Spec:
    """The spec of a hand-designed network by name."""
    if name not in DESIGNS:
        choices = ", ".join(DESIGNS)
        raise SwarmCNNError(f"unknown design '{name}'; choose one of {choices}" + did_you_mean(name, list(DESIGNS)))
    return Spec.parse(DESIGNS[name])


def fitting(input_shape: tuple[int, ...]) -> dict[str, Spec]:
    """The designs whose layers fit inputs of this shape, by name."""
    specs = {}
    for name in DESIGNS:
        try:
            design(name).shapes(input_shape)
        except SpecError:
            continue
        specs[name] = design(name)
    return specs


# The VGG-style designs, deepest first: a search starts from the first that fits its input.
VGG_BY_DEPTH = ("vgg-3block", "vgg-small")


def starting(input_shape: tuple[int, ...]) -> dict[str, Spec]:
    """The designs a search starts from: LeNet-5, the deepest VGG-style design that fits and, where it fits,
    airbench-small (the airbench layout at the widths a CPU budget trains; `airbench` itself, 3.6 times its
    FLOPs, is a point of the space the swarm may reach), by name.

    One VGG-style design, not both: the ladder's short trainings cannot choose between them. On cifar10-dev
    (2,000 photos per class, ten minutes on two cores) the small design led the three-block one after one epoch
    (45.0% against 43.8% on seed 0, behind it on seed 1), where at equal time the three-block design ends ahead
    (82.1% against 79.2% in five minutes, seed 1); and climbing both cost the final training 45 s of its 600."""
    fit = fitting(input_shape)
    vgg = next((name for name in VGG_BY_DEPTH if name in fit), None)
    chosen = ("lenet5", vgg, "airbench-small")
    return {name: spec for name, spec in fit.items() if name in chosen}


def spec_of(arch: str | Spec) -> Spec:
    """A spec from a design name ('lenet5', 'vgg-small') or spec text: wherever a user names a network."""
    if isinstance(arch, Spec):
        return arch
    if not isinstance(arch, str):
        raise SpecError(f"an architecture is a design name ({', '.join(DESIGNS)}) or a spec text, got {arch!r:.80}")
    if arch.strip() in DESIGNS:
        return design(arch.strip())
    try:
        return Spec.parse(arch)
    except SpecError:
        if len(arch.split()) == 1 and (hint := did_you_mean(arch.strip(), list(DESIGNS))):
            raise SpecError(f"'{arch}' is neither a spec nor a design name{hint}") from None
        raise
