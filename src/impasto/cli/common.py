"""What every command shares: the one-line-error parser, exit codes, signals, durations.

`Signals` makes SIGTERM and SIGHUP stop a run as Ctrl-C does, with writes finished first, so that
no command loses or half-writes a file.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
from collections.abc import Iterator, Mapping
from typing import Any

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage itself is in --help)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def as_typed(value: Any) -> str:
    """A default as one types it on the command line: {'relu4_2': 1.0} is relu4_2, [40, 30] is 40,30."""
    if isinstance(value, Mapping):
        return ",".join(name if weight == 1 else f"{name}:{weight:g}" for name, weight in value.items())
    if isinstance(value, (list, tuple)):
        return ",".join(map(as_typed, value))
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


class DefaultsFormatter(argparse.HelpFormatter):
    """--help with each option's default as it is typed; none where there is no value to state (None,
    a flag that is off) or where the help states the default in words (it says "default")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text, value = action.help or "", action.default
        nothing = value is None or value is False or value is argparse.SUPPRESS or value in ([], ())
        if not action.option_strings or nothing:
            return action.help
        if "default" in text or action.help is argparse.SUPPRESS:
            return action.help
        return f"{text} (default: {as_typed(value).replace('%', '%%')})".lstrip()


def format_duration(seconds: float) -> str:
    """M:SS, or H:MM:SS from an hour on (a 2048 px run can take longer than that)."""
    minutes, secs = divmod(max(0, round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


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
