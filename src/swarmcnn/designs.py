"""Hand-designed networks by name: the known-good designs every search starts from and is measured against.

- `lenet5`: LeCun et al., "Gradient-based learning applied to document recognition" (1998), in its common
  modern form (ReLU, max pooling).
- `vgg-small`: two VGG-style blocks (Simonyan & Zisserman, 2015) of two 3x3 convolutions with batch norm,
  then a max pool each, and one hidden fully connected layer.

Both fit any input of at least 4x4 (video: 4 frames); `fitting` drops those that do not fit a smaller one.
"""

from __future__ import annotations

from swarmcnn.errors import SpecError, SwarmCNNError, did_you_mean
from swarmcnn.spec import Spec

DESIGNS = {
    "lenet5": "conv6x5 relu maxpool2 conv16x5 relu maxpool2 fc120 relu fc84 relu",
    "vgg-small": "conv32x3 bn relu conv32x3 bn relu maxpool2 conv64x3 bn relu conv64x3 bn relu maxpool2 "
    "fc128 relu dropout0.3",
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
