"""The architecture of a CNN as an immutable list of layers, with the text form users type.

Grammar (tokens separated by spaces or '-'):
    conv<N>x<K>[s<S>]            N features of size KxK (K instants for signals, KxKxK for video), stride S
                                 (default 1), same padding
    maxpool<W>[t<U>][s<S>]       max over a WxW window (W instants for signals), stride S (default W); for video
                                 over U frames (default W)
    avgpool<W>[t<U>][s<S>]       the same with the average
    gap | gmp                    global average / max pool: one value per feature map, at any input size
    whiten<K>                    a fixed patch-whitening convolution of size K, computed from the training data
    relu | gelu | bn | dropout<P>  ReLU; GELU; batch normalization; dropout with 0 <= P < 1
    fc<N>                        fully connected, N neurons (the flatten before the first is implicit)
The final classifier (one output per class) is added by `swarmcnn.model.build_model`, not written in the spec.

The same grammar serves every kind of input by its number of dimensions (INPUT_KINDS): signals (C, L) get 1-D
layers, pictures (C, H, W) 2-D ones and clips (C, T, H, W) 3-D ones.

Nothing here imports torch: a spec is checked (shapes, parameters, FLOPs) before anything is built.
"""

from __future__ import annotations

import decimal
import json
import math
import re
from dataclasses import dataclass

from swarmcnn.errors import SpecError, did_you_mean


@dataclass(frozen=True)
class Conv:
    features: int
    size: int
    stride: int = 1

    def __str__(self) -> str:
        return f"conv{self.features}x{self.size}" + (f"s{self.stride}" if self.stride != 1 else "")


@dataclass(frozen=True)
class Pool:
    kind: str  # "max" or "avg"
    window: int
    stride: int | None = None  # None: the window, so windows do not overlap
    time_window: int | None = None  # video only; None: the spatial window

    def __str__(self) -> str:
        text = f"{self.kind}pool{self.window}"
        if self.time_window is not None:
            text += f"t{self.time_window}"
        return text + (f"s{self.stride}" if self.stride is not None else "")

    @property
    def step(self) -> int:
        return self.window if self.stride is None else self.stride


@dataclass(frozen=True)
class GlobalPool:
    """The average (or maximum) of each feature map over all its positions: a head that fits any input size
    (Lin et al., "Network in network", 2014), as in the fully convolutional designs and airbench."""

    kind: str  # "avg" or "max"

    def __str__(self) -> str:
        return "gap" if self.kind == "avg" else "gmp"


@dataclass(frozen=True)
class Whiten:
    """A convolution of size K whose 2 x C x K^d features are fixed, not learned: the eigenvectors of the
    covariance of the training data's K-wide patches, scaled to unit variance, and their negatives (airbench's
    first layer: Jordan, "94% on CIFAR-10 in 3.29 seconds on a single GPU", 2024). No padding: a picture
    loses K-1 rows and columns."""

    size: int

    def __str__(self) -> str:
        return f"whiten{self.size}"

    def features(self, channels: int, dims: int) -> int:
        return 2 * channels * self.size**dims


@dataclass(frozen=True)
class ReLU:
    def __str__(self) -> str:
        return "relu"


@dataclass(frozen=True)
class GELU:
    """The Gaussian error linear unit (Hendrycks & Gimpel, 2016): a smooth ReLU, airbench's activation."""

    def __str__(self) -> str:
        return "gelu"


@dataclass(frozen=True)
class BatchNorm:
    def __str__(self) -> str:
        return "bn"


@dataclass(frozen=True)
class Dropout:
    p: float

    def __str__(self) -> str:
        # positional, never '1e-05': '-' separates tokens; the digits of repr() make the round trip exact
        return f"dropout{decimal.Decimal(repr(self.p)):f}"


@dataclass(frozen=True)
class FC:
    neurons: int

    def __str__(self) -> str:
        return f"fc{self.neurons}"


Layer = Conv | Pool | GlobalPool | Whiten | ReLU | GELU | BatchNorm | Dropout | FC
LAYER_TYPES = (Conv, Pool, GlobalPool, Whiten, ReLU, GELU, BatchNorm, Dropout, FC)

_INT = r"(\d+)"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"conv{_INT}x{_INT}(?:s{_INT})?"), "conv"),
    (re.compile(rf"(max|avg)pool{_INT}(?:t{_INT})?(?:s{_INT})?"), "pool"),
    (re.compile(r"(gap|gmp)"), "global"),
    (re.compile(rf"whiten{_INT}"), "whiten"),
    (re.compile(r"relu"), "relu"),
    (re.compile(r"gelu"), "gelu"),
    (re.compile(r"bn"), "bn"),
    (re.compile(r"dropout(\d+(?:\.\d*)?|\.\d+)"), "dropout"),
    (re.compile(rf"fc{_INT}"), "fc"),
]
_EXAMPLES = [
    "conv32x3",
    "conv32x3s2",
    "maxpool2",
    "maxpool3s2",
    "avgpool2",
    "gap",
    "gmp",
    "whiten2",
    "relu",
    "gelu",
    "bn",
    "dropout0.3",
    "fc64",
]


def _positive(value: str, what: str, token: str, position: int) -> int:
    if len(value) > 100:  # int() refuses over 4300 digits; far fewer already exceed any memory
        raise SpecError(f"layer '{token[:30]}...' at position {position}: {what} has {len(value)} digits")
    number = int(value)
    if number < 1:
        raise SpecError(f"layer '{token}' at position {position}: {what} must be at least 1, got {number}")
    return number


def _parse_token(token: str, position: int) -> Layer:
    for pattern, kind in _PATTERNS:
        match = pattern.fullmatch(token)
        if not match:
            continue
        g = match.groups()
        if kind == "conv":
            return Conv(
                features=_positive(g[0], "the number of features", token, position),
                size=_positive(g[1], "the feature size", token, position),
                stride=_positive(g[2], "the stride", token, position) if g[2] else 1,
            )
        if kind == "pool":
            return Pool(
                kind=g[0],
                window=_positive(g[1], "the window", token, position),
                time_window=_positive(g[2], "the time window", token, position) if g[2] else None,
                stride=_positive(g[3], "the stride", token, position) if g[3] else None,
            )
        if kind == "global":
            return GlobalPool("avg" if g[0] == "gap" else "max")
        if kind == "whiten":
            return Whiten(_positive(g[0], "the whitening size", token, position))
        if kind == "relu":
            return ReLU()
        if kind == "gelu":
            return GELU()
        if kind == "bn":
            return BatchNorm()
        if kind == "dropout":
            p = float(g[0])
            if not 0 <= p < 1:
                raise SpecError(f"layer '{token}' at position {position}: dropout must be in [0, 1), got {p}")
            return Dropout(p)
        return FC(_positive(g[0], "the number of neurons", token, position))
    hint = did_you_mean(token, _EXAMPLES)
    raise SpecError(
        f"unknown layer '{token}' at position {position}{hint or '; expected e.g. ' + ', '.join(_EXAMPLES)}"
    )


# inputs by their number of dimensions: what they are, and the names of their axes
INPUT_KINDS = {2: "signals", 3: "pictures", 4: "clips"}
INPUT_AXES = {2: "(C, L)", 3: "(C, H, W)", 4: "(C, T, H, W)"}
INPUT_SHAPES = ", ".join(list(INPUT_AXES.values())[:-1]) + " or " + list(INPUT_AXES.values())[-1]


@dataclass(frozen=True)
class Shape:
    """The shape after a layer: channels and spatial sizes, or a flat vector of `channels` values."""

    channels: int
    spatial: tuple[int, ...]  # (L,), (H, W) or (T, H, W); () once flattened

    @property
    def numel(self) -> int:
        return self.channels * math.prod(self.spatial)

    def __str__(self) -> str:
        return "×".join(str(s) for s in (self.channels, *self.spatial))


def conv_padding(size: int, stride: int) -> int | str:
    """'same' where PyTorch supports it (stride 1, even sizes included); (K-1)//2 for strided convolutions."""
    return "same" if stride == 1 else (size - 1) // 2


def _conv_out(n: int, size: int, stride: int) -> int:
    if stride == 1:
        return n
    return (n + 2 * ((size - 1) // 2) - size) // stride + 1


@dataclass(frozen=True)
class Spec:
    """An ordered list of layers; the classifier layer is implicit."""

    layers: tuple[Layer, ...]

    @classmethod
    def parse(cls, text: str) -> Spec:
        """Read the text form; errors name the token and its 1-based position."""
        tokens = [t for t in re.split(r"[\s\-]+", text.strip().lower()) if t]
        if not tokens:
            raise SpecError("empty architecture spec; expected e.g. 'conv32x3 relu maxpool2 fc64 relu'")
        spec = cls(tuple(_parse_token(token, i) for i, token in enumerate(tokens, start=1)))
        spec.check_order()
        return spec

    def __str__(self) -> str:
        return " ".join(str(layer) for layer in self.layers)

    def check_order(self) -> None:
        """Convolution and pooling work on pictures: none may follow a fully connected layer."""
        seen_fc = None
        for i, layer in enumerate(self.layers, start=1):
            if isinstance(layer, FC) and seen_fc is None:
                seen_fc = (i, layer)
            elif isinstance(layer, (Conv, Pool, GlobalPool, Whiten)) and seen_fc is not None:
                raise SpecError(
                    f"layer '{layer}' at position {i} comes after fully connected layer "
                    f"'{seen_fc[1]}' at position {seen_fc[0]}; convolution and pooling must come first"
                )

    def shapes(self, input_shape: tuple[int, ...]) -> list[Shape]:
        """The shape after each layer for an input (C, L), (C, H, W) or (C, T, H, W); raises where a layer cannot
        fit."""
        if len(input_shape) not in INPUT_KINDS or any(int(s) < 1 for s in input_shape):
            raise SpecError(f"input shape {tuple(input_shape)} must be {INPUT_SHAPES}, all >= 1")
        self.check_order()
        shape = Shape(int(input_shape[0]), tuple(int(s) for s in input_shape[1:]))
        out = []
        for i, layer in enumerate(self.layers, start=1):
            shape = _next_shape(layer, shape, i)
            out.append(shape)
        return out

    def feature_size(self, input_shape: tuple[int, ...]) -> int:
        """Inputs of the classifier layer."""
        shapes = self.shapes(input_shape)
        return shapes[-1].numel if shapes else math.prod(input_shape)

    def num_params(self, input_shape: tuple[int, ...], num_classes: int) -> int:
        """Parameters of the built module, classifier included (the fixed whitening weights too: they are
        stored with the others)."""
        total = 0
        previous = Shape(int(input_shape[0]), tuple(input_shape[1:]))
        for layer, shape in zip(self.layers, self.shapes(input_shape)):
            if isinstance(layer, (Conv, Whiten)):  # the fixed whitening weights are stored too
                total += shape.channels * (previous.channels * layer.size ** len(previous.spatial) + 1)
            elif isinstance(layer, FC):
                total += layer.neurons * (previous.numel + 1)
            elif isinstance(layer, BatchNorm):
                total += 2 * shape.channels
            previous = shape
        return total + num_classes * (previous.numel + 1)

    def flops(self, input_shape: tuple[int, ...], num_classes: int) -> int:
        """Forward FLOPs per sample: 2 x multiply-adds of convolutions and fully connected layers.

        The convention of torch.utils.flop_counter and fvcore; bias, pooling, ReLU and batch norm are
        a few percent at most and not counted.
        """
        total = 0
        previous = Shape(int(input_shape[0]), tuple(input_shape[1:]))
        for layer, shape in zip(self.layers, self.shapes(input_shape)):
            if isinstance(layer, (Conv, Whiten)):
                total += 2 * shape.numel * previous.channels * layer.size ** len(previous.spatial)
            elif isinstance(layer, FC):
                total += 2 * previous.numel * layer.neurons
            previous = shape
        return total + 2 * previous.numel * num_classes

    def to_json(self) -> str:
        return json.dumps(self.to_list())

    def to_list(self) -> list[dict]:
        """Plain data for model.json and the search journal."""
        return [{"type": type(layer).__name__, **vars(layer)} for layer in self.layers]

    @classmethod
    def from_list(cls, items: list[dict]) -> Spec:
        """The inverse of to_list; values are checked by the grammar, as if typed."""
        kinds = {k.__name__: k for k in LAYER_TYPES}
        try:
            spec = cls(tuple(kinds[item["type"]](**{k: v for k, v in item.items() if k != "type"}) for item in items))
        except (KeyError, TypeError) as error:
            raise SpecError(f"malformed spec data {items!r}: {error}") from None
        return cls.parse(str(spec))

    @classmethod
    def from_json(cls, text: str) -> Spec:
        return cls.from_list(json.loads(text))


def _next_shape(layer: Layer, shape: Shape, position: int) -> Shape:
    if isinstance(layer, Conv):
        out = Shape(layer.features, tuple(_conv_out(n, layer.size, layer.stride) for n in shape.spatial))
        if min(out.spatial, default=1) < 1:
            raise SpecError(f"layer '{layer}' at position {position} shrinks a {shape} input to {out}; "
                            "use an odd feature size or stride 1")
        return out
    if isinstance(layer, Pool):
        if layer.time_window is not None and len(shape.spatial) != 3:
            along = f"; a signal's window is along time already: '{Pool(layer.kind, layer.window, layer.stride)}'"
            raise SpecError(f"layer '{layer}' at position {position}: a time window needs a video input"
                            + (along if len(shape.spatial) == 1 else ""))
        windows, steps = pool_geometry(layer, len(shape.spatial))
        if any(n < w for n, w in zip(shape.spatial, windows)):
            raise SpecError(
                f"layer '{layer}' at position {position} cannot pool a {shape} input with a "
                f"{'×'.join(map(str, windows))} window: it would shrink below {'×'.join('1' * len(windows))}; "
                "remove a pooling layer or use a larger input"
            )
        return Shape(shape.channels, tuple((n - w) // s + 1 for n, w, s in zip(shape.spatial, windows, steps)))
    if isinstance(layer, GlobalPool):
        if not shape.spatial:
            raise SpecError(f"layer '{layer}' at position {position} pools feature maps, but its input is flat")
        return Shape(shape.channels, (1,) * len(shape.spatial))
    if isinstance(layer, Whiten):
        if any(n < layer.size for n in shape.spatial):
            raise SpecError(f"layer '{layer}' at position {position}: its {layer.size}-wide patches do not fit a "
                            f"{shape} input")
        out = tuple(n - layer.size + 1 for n in shape.spatial)
        return Shape(layer.features(shape.channels, len(shape.spatial)), out)
    if isinstance(layer, FC):
        return Shape(layer.neurons, ())
    return shape


def pool_geometry(pool: Pool, dims: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Window and stride per axis (time first for video); a time window pools frames without overlap. dims: 1 for
    signals, 2 for pictures, 3 for clips."""
    if dims == 3 and pool.time_window is not None:
        return (pool.time_window, pool.window, pool.window), (pool.time_window, pool.step, pool.step)
    return (pool.window,) * dims, (pool.step,) * dims


def parse(text: str) -> Spec:
    """Parse the text form of an architecture (see the module docstring)."""
    return Spec.parse(text)


def format(spec: Spec) -> str:  # noqa: A001 - the grammar's name for the inverse of parse
    """The canonical text form: parse(format(spec)) == spec."""
    return str(spec)
