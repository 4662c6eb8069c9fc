"""The command line's files and signals: outputs checked before the run, the loss trace, SIGTERM/SIGHUP.

Split from cli.py (which parses and reports): everything here is about not losing or clobbering a file.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import signal
from collections.abc import Iterator
from typing import Any

from .errors import ImpastoError
from .imageio import check_writable, output_format, refuse_input_as_output


def _input_paths(args: argparse.Namespace) -> list[str]:
    """Every file the run reads: images, init, masks, coarse style, weights."""
    listed = [*args.images, args.init, args.coarse_style, args.weights]
    listed += [*(args.content_masks or []), *(args.style_masks or [])]
    return [path for path in listed if isinstance(path, str)]


def check_outputs(args: argparse.Namespace) -> None:
    if output_format(args.output) not in ("PNG", "TIFF") and args.bit_depth == 16:
        raise ImpastoError(f"{args.output}: --bit-depth 16 needs a .png or .tif output")
    outputs = [("-o", args.output)] + ([("--loss-trace", args.loss_trace)] if args.loss_trace else [])
    for flag, output in outputs:
        refuse_input_as_output(flag, output, _input_paths(args))
    check_writable(args.output)
    if args.loss_trace:
        if not args.loss_trace.lower().endswith((".json", ".csv")):
            raise ImpastoError(f"{args.loss_trace}: loss trace must end in .json or .csv")
        check_writable(args.loss_trace)
    if args.save_every < 0:
        raise ImpastoError("--save-every must be 0 (off) or a positive number of iterations")


class Signals:
    """SIGTERM and SIGHUP stop a run as Ctrl-C does (the best image is kept); during writes all three wait.

    A handler raises KeyboardInterrupt, which the optimiser turns into an early stop; inside
    `deferred()` it only records the signal, so a file being written is finished (never a temp left).
    """

    HANDLED = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))

    def __init__(self) -> None:
        self.received: int | None = None
        self._defer = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = self.received or signum
        if not self._defer:
            raise KeyboardInterrupt

    def __enter__(self) -> Signals:
        for sig in self.HANDLED:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    @contextlib.contextmanager
    def deferred(self, then_stop: bool = False) -> Iterator[None]:
        """Signals only wait while the block runs; `then_stop`: one that came meanwhile stops the run after it."""
        self._defer, before = True, self.received
        try:
            yield
        finally:
            self._defer = False
        if then_stop and self.received is not None and before is None:
            raise KeyboardInterrupt

    @property
    def name(self) -> str:
        return (
            "interrupted"
            if self.received in (None, signal.SIGINT)
            else f"stopped by {signal.Signals(self.received).name}"
        )

    @property
    def exit_code(self) -> int:
        return 128 + (self.received or signal.SIGINT)


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
