"""`impasto CONTENT STYLE [STYLE...] -o OUT [options]`: one still picture, thin over the Python API.

This module checks the outputs before the run, reports progress and writes the image (and the
loss trace); the options are those of options.py. Bad input is one line (see dispatch.py).
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ImpastoError
from ..writing import atomic_write, check_writable, output_format, refuse_input_as_output, save_image
from .common import Signals, format_duration
from .options import build_parser, check_runtime, config_from_args, snapshot_path


def _inputs(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[Any, list[Any]]:
    if args.demo:
        if args.images:
            parser.error("--demo uses the bundled images; give no IMAGE arguments")
        from ..samples import default_content, default_style

        return default_content(), [default_style()]
    if len(args.images) < 2:
        parser.error("give a CONTENT image and at least one STYLE image (or --demo)")
    return args.images[0], args.images[1:]


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
            with self.signals.deferred():  # a signal now would leave the snapshot's temp file behind
                save_image(progress.image(), snapshot_path(self.output, progress.step))
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
    from ..stylize import run

    parser = build_parser()
    args = parser.parse_args(argv)
    check_runtime(args, parser)
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


def _input_paths(args: argparse.Namespace) -> list[str]:
    """Every file the run reads: images, init, masks, coarse style, weights."""
    listed = [*args.images, args.init, args.coarse_style, args.weights]
    listed += [*(args.content_masks or []), *(args.style_masks or [])]
    return [path for path in listed if isinstance(path, str)]


def _snapshots_there(output: str, every: int) -> list[Path]:
    """The files already beside OUT that a snapshot would replace (its name, a step --save-every writes)."""
    out = Path(output)
    found = []
    for path in sorted(out.parent.glob(f"{glob.escape(out.stem)}_s*{glob.escape(out.suffix)}")):
        digits = re.fullmatch(r"_s(\d+)", path.stem[len(out.stem) :])
        step = int(digits[1]) if digits else 0
        if step > 0 and step % every == 0 and snapshot_path(output, step) == path:
            found.append(path)
    return found


def check_outputs(args: argparse.Namespace) -> None:
    """Before painting: every file the run will write (output, snapshots, loss trace) can be written and
    is none of the files it reads."""
    if output_format(args.output) not in ("PNG", "TIFF") and args.bit_depth == 16:
        raise ImpastoError(f"{args.output}: --bit-depth 16 needs a .png or .tif output")
    if args.save_every < 0:
        raise ImpastoError("--save-every must be 0 (off) or a positive number of iterations")
    outputs = [("-o", args.output)] + ([("--loss-trace", args.loss_trace)] if args.loss_trace else [])
    if args.save_every:
        outputs += [("--save-every snapshot", path) for path in _snapshots_there(args.output, args.save_every)]
    for flag, output in outputs:
        refuse_input_as_output(flag, output, _input_paths(args))
    check_writable(args.output)
    if args.loss_trace:
        if not args.loss_trace.lower().endswith((".json", ".csv")):
            raise ImpastoError(f"{args.loss_trace}: loss trace must end in .json or .csv")
        check_writable(args.loss_trace)


def trace_writer(path: str, trace: list[dict[str, float]]):
    def write(handle) -> None:
        if path.lower().endswith(".csv"):
            text = io.StringIO()
            keys = sorted({k for row in trace for k in row}, key=lambda k: (k not in ("scale", "step"), k))
            writer = csv.DictWriter(text, fieldnames=keys)
            writer.writeheader()
            writer.writerows(trace)
            handle.write(text.getvalue().encode())
        else:
            handle.write(json.dumps(trace, indent=1).encode())

    return write
