"""Command-line options for the perceptual controls (colour, blends, masks, scale), wired in by options.py.

Defaults come from StyleConfig; semantics are those of impasto.guided (see docs/controls.md).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..color import PRESERVE_COLOR
from ..config import default
from ..errors import ImpastoError
from ..guided import check_count

NONE = "none"
"""In --style-masks: this style image is used whole."""


def add_control_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("perceptual controls (docs/controls.md)")
    g.add_argument(
        "--preserve-color",
        choices=PRESERVE_COLOR,
        default=default("preserve_color"),
        help="keep the content's colours: style on luminance only, or recolour the style first",
    )
    g.add_argument(
        "--style-weights",
        metavar="W,W,...",
        default=None,
        help="blend of the style images, e.g. 0.7,0.3 (normalised; default equal)",
    )
    g.add_argument(
        "--style-scales", metavar="S,S,...", default=None, help="per style image, a factor on --style-scale, e.g. 1,2"
    )
    g.add_argument(
        "--content-masks",
        nargs="+",
        metavar="PATH",
        default=default("content_masks"),
        help="one label image (N colours, or N+1 where the lowest RGB, e.g. black, gets no style), "
        "or one grey mask per style image: region k takes style k",
    )
    g.add_argument(
        "--style-masks",
        nargs="+",
        metavar="PATH",
        default=default("style_masks"),
        help=f"per style image, a mask of the part to take the style from ('{NONE}': all of it)",
    )
    g.add_argument(
        "--coarse-style",
        metavar="PATH",
        default=default("coarse_style"),
        help="image whose style drives the coarse layers; the style images keep the fine ones",
    )
    g.add_argument(
        "--coarse-from", metavar="LAYER", default=default("coarse_from"), help="first layer driven by --coarse-style"
    )


def _numbers(flag: str, text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise ImpastoError(f"{flag} must be comma-separated numbers such as 0.7,0.3, got {text!r}") from None
    if any(v < 0 or v != v for v in values):
        raise ImpastoError(f"{flag} must not be negative, got {text!r}")
    return values


def control_options(args: argparse.Namespace) -> dict[str, Any]:
    """StyleConfig keyword arguments from the parsed flags; counts checked when the style images are known."""
    masks = args.content_masks
    options: dict[str, Any] = {
        "preserve_color": args.preserve_color,
        "style_blend": _numbers("--style-weights", args.style_weights),
        "style_scales": _numbers("--style-scales", args.style_scales),
        # One path is a label image; several are one mask per style image.
        "content_masks": None if masks is None else (masks[0] if len(masks) == 1 else list(masks)),
        "style_masks": None
        if args.style_masks is None
        else [None if m.lower() == NONE else m for m in args.style_masks],
        "coarse_style": args.coarse_style,
        "coarse_from": args.coarse_from,
    }
    images = getattr(args, "images", None) or []
    if len(images) >= 2:
        styles = len(images) - 1
        for flag, key in (
            ("style weights", "style_blend"),
            ("style scales", "style_scales"),
            ("style masks", "style_masks"),
        ):
            if options[key] is not None:
                check_count(flag, len(options[key]), styles)
        if masks is not None and len(masks) > 1:
            check_count("content masks", len(masks), styles)
    return options
