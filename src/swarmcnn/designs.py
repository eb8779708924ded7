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

For signals (C, L), networks of one dimension:
- `lenet1d`: LeNet-5's layout (two stages of convolution and pooling, then fully connected layers of 120 and 84)
  with the feature sizes of a signal (7 then 5 instants) and batch norm after each convolution, which the
  short trainings of a search need: the cheap design a signal search starts from.
- `fcn`: the fully convolutional network of Wang, Yan & Oates, "Time series classification from scratch with deep
  neural networks: a strong baseline" (IJCNN 2017): three blocks of convolution, batch norm and ReLU (128, 256
  and 128 features of 8, 5 and 3 instants), global average pooling, the classifier. Its kernel of 8 is even:
  'same' padding then pads one instant more at the end than at the start, as Keras does, which is what the
  paper's code ran.

The paper's ResNet (three residual blocks of the FCN's convolutions) is not a design: its blocks add their input
to their output, and the spec grammar is a chain of layers without skip connections. Adding them would make
every spec a graph (the parser, shapes, FLOPs, the search space, psoCNN's layer lists, export, explain), and
its published figures are within a point of the FCN's on five of the six sets of issue 26 (dl-4-tsc: GunPoint
99.1 against 100, OSULeaf 98.0 against 97.9; SelfRegulationSCP1 76.8-83.6 against 78.2), so the FCN stands for
both.

`lenet5` and `vgg-small` fit any input of at least 4x4 (video: 4 frames), `vgg-3block` one of 8x8 (8 frames);
`fitting` drops those that do not fit a smaller one, and offers picture designs to pictures and clips and signal
designs to signals only. A search starts from LeNet-5 and the deepest VGG-style design that fits (`starting`),
on signals from `lenet1d` and `fcn`.
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
    "lenet1d": "conv16x7 bn relu maxpool2 conv32x5 bn relu maxpool2 fc120 relu fc84 relu",
    "fcn": "conv128x8 bn relu conv256x5 bn relu conv128x3 bn relu gap",
}
SIGNAL_DESIGNS = ("lenet1d", "fcn")  # one-dimensional networks: offered to signals (C, L) only
SIGNAL_DIMENSIONS = 2  # a signal's input shape (C, L) has two numbers, a picture's three, a clip's four


def design(name: str) -> Spec:
    """The spec of a hand-designed network by name."""
    if name not in DESIGNS:
        choices = ", ".join(DESIGNS)
        raise SwarmCNNError(f"unknown design '{name}'; choose one of {choices}" + did_you_mean(name, list(DESIGNS)))
    return Spec.parse(DESIGNS[name])


def fitting(input_shape: tuple[int, ...]) -> dict[str, Spec]:
    """The designs whose layers fit inputs of this shape, by name: the signal designs for signals, the others for
    pictures and clips (a picture design runs on a signal, and the FCN on a picture, but neither was made for it)."""
    signal = len(input_shape) == SIGNAL_DIMENSIONS
    specs = {}
    for name in DESIGNS:
        if (name in SIGNAL_DESIGNS) != signal:
            continue
        try:
            design(name).shapes(input_shape)
        except SpecError:
            continue
        specs[name] = design(name)
    return specs


# The VGG-style designs, deepest first: a search starts from the first that fits its input.
VGG_BY_DEPTH = ("vgg-3block", "vgg-small")


def starting(input_shape: tuple[int, ...]) -> dict[str, Spec]:
    """The designs a search starts from, by name: on signals `lenet1d` and `fcn`; else LeNet-5, the deepest
    VGG-style design that fits and, where it fits, airbench-small (the airbench layout at the widths a CPU budget
    trains; `airbench` itself, 3.6 times its FLOPs, is a point of the space the swarm may reach).

    One VGG-style design, not both: the ladder's short trainings cannot choose between them. On cifar10-dev
    (2,000 photos per class, ten minutes on two cores) the small design led the three-block one after one epoch
    (45.0% against 43.8% on seed 0, behind it on seed 1), where at equal time the three-block design ends ahead
    (82.1% against 79.2% in five minutes, seed 1); and climbing both cost the final training 45 s of its 600."""
    fit = fitting(input_shape)
    if len(input_shape) == SIGNAL_DIMENSIONS:
        return fit  # the cheap LeNet-style design and the strong FCN, both
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
